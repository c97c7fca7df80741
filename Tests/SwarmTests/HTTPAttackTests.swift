import Testing
@testable import SwarmHTTP

/// What an impatient client or an attacker does to the HTTP server's pure parts: pipelines
/// then half-closes, never reads an answer while trickling bytes, writes the scheme in
/// another case or with trailing blanks, sends an absolute-form target.
@Suite struct HTTPAttackTests {
    typealias Core = HTTPConnectionCoreTests

    @Test func aPipelineSentAndHalfClosedIsAnsweredWhole() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        let pipeline = (0..<5).map { "GET /\($0) HTTP/1.1\r\n\r\n" }.joined()
        #expect(Core.dispatched(Core.feed(core, pipeline)) == ["/0"])
        // The peer ends its side (shutdown(SHUT_WR)) while /0's answer is in hand.
        #expect(core.peerClosed().isEmpty)
        var answered: [String] = []
        var closed = false
        var next = ["/0"]
        for _ in 0..<10 {
            guard let target = next.first else { break }
            answered.append(target)
            let head = Core.written(core.respond(.text(.ok, target), nowMs: 0)) ?? ""
            let after = core.written(nowMs: 0)
            next = Core.dispatched(after)
            if Core.closes(after) {
                closed = true
                // The last answer said so.
                #expect(head.contains("Connection: close"))
                break
            }
        }
        #expect(answered == ["/0", "/1", "/2", "/3", "/4"])
        #expect(closed)
        #expect(core.isClosed)
    }

    @Test func aHalfClosedPartialRequestAfterTheWholeOnesClosesWithoutAnAnswer() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        #expect(Core.dispatched(Core.feed(core, "GET /a HTTP/1.1\r\n\r\nGET /b HT")) == ["/a"])
        #expect(core.peerClosed().isEmpty)
        _ = core.respond(.text(.ok, "a"), nowMs: 0)
        let after = core.written(nowMs: 0)
        #expect(Core.dispatched(after).isEmpty)
        #expect(Core.closes(after))
    }

    @Test func aPeerThatNeverReadsItsAnswerIsClosedAtTheIdleTimeoutEvenIfItTricklesBytes() {
        var limits = HTTPLimits()
        limits.idleTimeoutMs = 1_000
        limits.requestTimeoutMs = 100_000
        let core = HTTPConnectionCore(limits: limits, nowMs: 0)
        _ = Core.feed(core, "GET /big HTTP/1.1\r\n\r\n", at: 0)
        // A large answer the kernel cannot take while the peer does not read: never `written`.
        _ = core.respond(.text(.ok, String(repeating: "x", count: 100_000)), nowMs: 0)
        // One byte every 400 ms (the next request, slowly).
        for (i, byte) in "GET /".enumerated() where i < 3 {
            _ = Core.feed(core, String(byte), at: Int64(i + 1) * 400)
        }
        #expect(core.tick(nowMs: 999).isEmpty)
        #expect(Core.closes(core.tick(nowMs: 1_000)))
        #expect(core.isClosed)
    }

    @Test func headerValuesLoseTheirTrailingBlanks() throws {
        let parser = HTTPRequestParser()
        let text = "GET / HTTP/1.1\r\nAuthorization: Bearer abc \t \r\nX-Empty:   \r\n\r\n"
        guard case .request(let request, _) = Array(text.utf8).withUnsafeBytes({ parser.parse($0) }) else {
            Issue.record("not parsed"); return
        }
        #expect(request.header("Authorization") == "Bearer abc")
        #expect(request.header("X-Empty") == "")
    }

    @Test func theBearerSchemeIsMatchedInAnyCaseAndTheTokenExactly() {
        let tokens = [Array("other".utf8), Array("s3cret".utf8)]
        for good in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "Bearer   s3cret"] {
            #expect(HTTPServer.bearerMatches(good, tokens: tokens), "\(good)")
        }
        for bad in [nil, "", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cretx", "Bearers3cret", "Basic s3cret",
                    "Bearer\ts3cret", "Bearer S3CRET", "xBearer s3cret", "Bearer s3cret\u{0}", "Bearer othe", "Bearer otherx"] {
            #expect(!HTTPServer.bearerMatches(bad, tokens: tokens), "\(bad ?? "nil")")
        }
    }

    @Test func anAbsoluteFormTargetIsRoutedByItsPath() {
        func path(_ target: String) -> String { String(HTTPRequest(method: "GET", target: target).path) }
        #expect(path("http://127.0.0.1:9100/metrics") == "/metrics")
        #expect(path("HTTP://sched.lan/metrics?x=1") == "/metrics")
        #expect(path("https://[::1]:9/a/b") == "/a/b")
        #expect(path("http://host") == "/")
        #expect(path("http://host?q") == "/")
        // Origin-form and others are as before.
        #expect(path("/metrics?x") == "/metrics")
        #expect(path("/x://y") == "/x://y")
        #expect(path("*") == "*")
        #expect(path("ftp://h/metrics") == "ftp://h/metrics")

        var router = HTTPRouter()
        var answered: HTTPResponse?
        router.add("GET", "/metrics") { _, responder in responder.respond(.text(.ok, "m")) }
        router.handle(HTTPRequest(method: "GET", target: "http://127.0.0.1:9100/metrics"),
                      HTTPResponder(send: { answered = $0 }))
        #expect(answered?.status == .ok)
    }
}
