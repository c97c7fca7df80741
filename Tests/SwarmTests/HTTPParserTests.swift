import Testing
@testable import SwarmHTTP

/// The request parser alone: bytes in, requests or refusals out, at the edges of `HTTPLimits`.
@Suite struct HTTPParserTests {
    static func parse(_ text: String, limits: HTTPLimits = HTTPLimits()) -> HTTPRequestParser.Outcome {
        parse(Array(text.utf8), limits: limits)
    }

    static func parse(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) -> HTTPRequestParser.Outcome {
        let parser = HTTPRequestParser(limits: limits)
        return bytes.withUnsafeBytes { parser.parse($0) }
    }

    static func status(_ outcome: HTTPRequestParser.Outcome) -> Int? {
        if case .refused(let status, _) = outcome { return status.code }
        return nil
    }

    static func request(_ outcome: HTTPRequestParser.Outcome) -> HTTPRequest? {
        if case .request(let request, _) = outcome { return request }
        return nil
    }

    @Test func aGetWithHeadersIsParsed() throws {
        let request = try #require(Self.request(Self.parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n\r\n")))
        #expect(request.method == "GET")
        #expect(request.target == "/metrics?x=1")
        #expect(request.path == "/metrics")
        #expect(request.header("host") == "a")
        #expect(request.header("ACCEPT") == "text/plain")
        #expect(request.keepAlive)
        #expect(request.body.isEmpty)
    }

    @Test func keepAliveFollowsTheVersionAndConnectionHeader() {
        #expect(Self.request(Self.parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))?.keepAlive == false)
        #expect(Self.request(Self.parse("GET / HTTP/1.0\r\n\r\n"))?.keepAlive == false)
        #expect(Self.request(Self.parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))?.keepAlive == true)
    }

    @Test func dripFedOneByteAtATimeGivesTheSameRequest() throws {
        let text = "POST /x HTTP/1.1\r\nHost: a\r\nX-Long-Header-Name: some value here\r\nContent-Length: 5\r\n\r\nhello"
        let whole = try #require(Self.request(Self.parse(text)))
        let parser = HTTPRequestParser()
        var found: HTTPRequest?
        for (i, byte) in text.utf8.enumerated() {
            let outcome = [byte].withUnsafeBytes { parser.parse($0) }
            switch outcome {
            case .needMore: #expect(i < text.utf8.count - 1)
            case .request(let request, let consumed):
                #expect(consumed == 1)
                found = request
            case .refused(let status, let reason): Issue.record("refused \(status.code): \(reason)")
            }
            if i == 0 { #expect(parser.inRequest) }
        }
        #expect(found == whole)
        #expect(found?.body == Array("hello".utf8))
        #expect(!parser.inRequest)
    }

    @Test func pipelinedRequestsComeOneAtATime() throws {
        let first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
        let bytes = Array((first + "GET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\n").utf8)
        let parser = HTTPRequestParser()
        guard case let .request(a, consumed) = bytes.withUnsafeBytes({ parser.parse($0) }) else {
            Issue.record("no first request"); return
        }
        #expect(a.target == "/a")
        #expect(consumed == first.utf8.count)
        let rest = Array(bytes[consumed...])
        guard case let .request(b, consumedB) = rest.withUnsafeBytes({ parser.parse($0) }) else {
            Issue.record("no second request"); return
        }
        #expect(b.target == "/b")
        let tail = Array(rest[consumedB...])
        #expect(tail.withUnsafeBytes { parser.parse($0) } == .needMore)
        #expect(parser.inRequest)
    }

    @Test func theTargetMayBeExactlyItsLimitAndNotOneByteMore() {
        var limits = HTTPLimits()
        limits.maxTargetBytes = 64
        let atLimit = "/" + String(repeating: "a", count: 63)
        #expect(Self.request(Self.parse("GET \(atLimit) HTTP/1.1\r\n\r\n", limits: limits))?.target == atLimit)
        #expect(Self.status(Self.parse("GET \(atLimit)b HTTP/1.1\r\n\r\n", limits: limits)) == 414)
    }

    @Test func headerBytesAreBoundedAtTheEdge() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 100
        // Name "X" (1 byte) + value: 100 bytes in all is allowed, 101 is not.
        let fits = "GET / HTTP/1.1\r\nX: \(String(repeating: "v", count: 99))\r\n\r\n"
        let over = "GET / HTTP/1.1\r\nX: \(String(repeating: "v", count: 100))\r\n\r\n"
        #expect(Self.request(Self.parse(fits, limits: limits)) != nil)
        #expect(Self.status(Self.parse(over, limits: limits)) == 431)
    }

    @Test func headerCountIsBoundedAtTheEdge() {
        var limits = HTTPLimits()
        limits.maxHeaderCount = 8
        func request(_ n: Int) -> String {
            "GET / HTTP/1.1\r\n" + (0..<n).map { "H\($0): v\r\n" }.joined() + "\r\n"
        }
        #expect(Self.request(Self.parse(request(8), limits: limits))?.headers.count == 8)
        #expect(Self.status(Self.parse(request(9), limits: limits)) == 431)
    }

    @Test func getAndHeadMayNotCarryABody() {
        #expect(Self.status(Self.parse("GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")) == 400)
        #expect(Self.status(Self.parse("HEAD / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")) == 400)
        #expect(Self.request(Self.parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")) != nil)
    }

    @Test func bodiesAreBoundedAtTheEdgeWhetherDeclaredOrChunked() {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 10
        let ten = String(repeating: "b", count: 10)
        #expect(Self.request(Self.parse("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n\(ten)", limits: limits))?.body.count == 10)
        // Refused from the header, before any body byte arrives.
        #expect(Self.status(Self.parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits: limits)) == 413)
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbbbbb\r\n5\r\nbbbbb\r\n"
        #expect(Self.request(Self.parse(chunked + "0\r\n\r\n", limits: limits))?.body.count == 10)
        #expect(Self.status(Self.parse(chunked + "1\r\nb\r\n0\r\n\r\n", limits: limits)) == 413)
    }

    @Test func garbageIsABadRequestAndTheParserStaysSpent() {
        let parser = HTTPRequestParser()
        let garbage: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]  // a TLS hello
        let outcome = garbage.withUnsafeBytes { parser.parse($0) }
        #expect(Self.status(outcome) == 400)
        let next = Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { parser.parse($0) }
        #expect(Self.status(next) == 400)
        #expect(Self.status(Self.parse("GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n")) == 400)
    }
}
