import Testing
@testable import SwarmHTTP

/// One connection's state machine with a fake clock: keep-alive, pipelining, timeouts,
/// refusals and back-pressure, with no socket.
@Suite struct HTTPConnectionCoreTests {
    typealias Directive = HTTPConnectionCore.Directive

    static func feed(_ core: HTTPConnectionCore, _ text: String, at nowMs: Int64 = 0) -> [Directive] {
        Array(text.utf8).withUnsafeBytes { core.received($0, nowMs: nowMs) }
    }

    static func dispatched(_ directives: [Directive]) -> [String] {
        directives.compactMap { if case .dispatch(let r) = $0 { r.target } else { nil } }
    }

    static func written(_ directives: [Directive]) -> String? {
        for case .write(let bytes) in directives { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    static func closes(_ directives: [Directive]) -> Bool {
        directives.contains { if case .close = $0 { true } else { false } }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderOneAtATime() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        let d1 = Self.feed(core, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        #expect(Self.dispatched(d1) == ["/a"])
        // Until /a's answer is written, /b waits.
        let d2 = core.respond(.text(.ok, "a"), nowMs: 1)
        #expect(Self.written(d2)?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        #expect(Self.written(d2)?.contains("Connection: keep-alive") == true)
        #expect(Self.dispatched(d2).isEmpty)
        #expect(Self.dispatched(core.written(nowMs: 2)) == ["/b"])
        _ = core.respond(.text(.ok, "b"), nowMs: 3)
        #expect(core.written(nowMs: 4).isEmpty)
        #expect(!core.isClosed)
    }

    @Test func connectionCloseIsHonouredAfterTheAnswer() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        #expect(Self.dispatched(Self.feed(core, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n")) == ["/"])
        #expect(Self.written(core.respond(.text(.ok, "x"), nowMs: 0))?.contains("Connection: close") == true)
        #expect(Self.closes(core.written(nowMs: 0)))
        #expect(core.isClosed)
    }

    @Test func headAnswersCarryTheLengthButNoBody() throws {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        _ = Self.feed(core, "HEAD /m HTTP/1.1\r\n\r\n")
        let text = try #require(Self.written(core.respond(.text(.ok, "12345"), nowMs: 0)))
        #expect(text.contains("Content-Length: 6\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func malformedRequestsGet400AndAClose() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        let out = Self.feed(core, "NOT HTTP AT ALL\r\n\r\n")
        #expect(out.first == .stopReading)
        #expect(Self.written(out)?.hasPrefix("HTTP/1.1 400 Bad Request\r\n") == true)
        #expect(Self.written(out)?.contains("Connection: close") == true)
        #expect(Self.closes(core.written(nowMs: 0)))
    }

    @Test func anIdleConnectionClosesAtItsTimeoutAndNotBefore() {
        var limits = HTTPLimits()
        limits.idleTimeoutMs = 1_000
        let core = HTTPConnectionCore(limits: limits, nowMs: 0)
        _ = Self.feed(core, "GET / HTTP/1.1\r\n\r\n", at: 100)
        _ = core.respond(.text(.ok, ""), nowMs: 200)
        _ = core.written(nowMs: 300)
        #expect(core.tick(nowMs: 1_299).isEmpty)
        #expect(Self.closes(core.tick(nowMs: 1_300)))
    }

    @Test func aSlowSenderGets408AtTheRequestTimeout() {
        var limits = HTTPLimits()
        limits.requestTimeoutMs = 500
        limits.idleTimeoutMs = 10_000
        let core = HTTPConnectionCore(limits: limits, nowMs: 0)
        // One byte every 100 ms: never idle, never done.
        for (i, byte) in "GET / HTTP/1.1\r\nHost:".enumerated() where i < 5 {
            _ = Self.feed(core, String(byte), at: Int64(i) * 100)
        }
        #expect(core.tick(nowMs: 499).isEmpty)
        let out = core.tick(nowMs: 500)
        #expect(Self.written(out)?.hasPrefix("HTTP/1.1 408 Request Timeout") == true)
        #expect(Self.closes(core.written(nowMs: 501)))
    }

    @Test func theRequestClockStartsWithTheNextRequestsFirstByte() {
        var limits = HTTPLimits()
        limits.requestTimeoutMs = 500
        let core = HTTPConnectionCore(limits: limits, nowMs: 0)
        _ = Self.feed(core, "GET / HTTP/1.1\r\n\r\n", at: 0)
        _ = core.respond(.text(.ok, ""), nowMs: 0)
        _ = core.written(nowMs: 0)
        // Kept alive and quiet for longer than a request may take: that is idling, not slowness.
        #expect(core.tick(nowMs: 900).isEmpty)
        _ = Self.feed(core, "GET", at: 1_000)
        #expect(core.tick(nowMs: 1_499).isEmpty)
        #expect(Self.written(core.tick(nowMs: 1_500))?.contains("408") == true)
    }

    @Test func aPeerThatSendsWithoutReadingIsStoppedAboveTheBufferBound() {
        var limits = HTTPLimits()
        limits.maxTargetBytes = 100
        limits.maxHeaderBytes = 100
        limits.maxBodyBytes = 0
        let core = HTTPConnectionCore(limits: limits, nowMs: 0)
        let one = "GET / HTTP/1.1\r\n\r\n"
        let count = limits.maxBufferedBytes / one.utf8.count + 2
        let out = Self.feed(core, String(repeating: one, count: count))
        #expect(out.contains(.stopReading))
        #expect(Self.dispatched(out).count == 1)
        // Answering drains the buffer request by request; reading resumes once it is under the bound.
        var resumed = false
        for _ in 0..<count {
            _ = core.respond(.text(.ok, ""), nowMs: 0)
            let next = core.written(nowMs: 0)
            if next.contains(.startReading) { resumed = true }
            if Self.dispatched(next).isEmpty { break }
        }
        #expect(resumed)
    }

    @Test func thePeerClosingMidAnswerStillGetsItThenCloses() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        _ = Self.feed(core, "GET / HTTP/1.1\r\n\r\n")
        #expect(core.peerClosed().isEmpty)
        #expect(Self.written(core.respond(.text(.ok, ""), nowMs: 0))?.contains("Connection: close") == true)
        #expect(Self.closes(core.written(nowMs: 0)))
    }

    /// Limits with every streamed piece written at once (no coalescing).
    static var unheld: HTTPLimits {
        var limits = HTTPLimits()
        limits.streamFlushMs = 0
        limits.streamHeadDelayMs = 0
        return limits
    }

    @Test func aStreamedAnswerIsChunkedAndTheNextRequestWaitsForItsEnd() {
        let core = HTTPConnectionCore(limits: Self.unheld, nowMs: 0)
        #expect(Self.dispatched(Self.feed(core, "GET /events HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")) == ["/events"])
        let head = core.beginStream(HTTPResponse(status: .ok, headers: [("Content-Type", "text/event-stream")]), nowMs: 0)
        #expect(Self.written(head) == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
        #expect(core.isStreaming)
        #expect(Self.written(core.streamChunk(Array("data: 1\n\n".utf8), nowMs: 0)) == "9\r\ndata: 1\n\n\r\n")
        #expect(core.streamChunk([], nowMs: 0).isEmpty)
        // Chunks written while the stream is open do not let the next request in, nor does idling.
        #expect(core.written(nowMs: 1).isEmpty)
        #expect(core.written(nowMs: 2).isEmpty)
        #expect(core.tick(nowMs: 10_000_000).isEmpty)
        #expect(Self.written(core.endStream(nowMs: 3)) == "0\r\n\r\n")
        #expect(!core.isStreaming)
        #expect(Self.dispatched(core.written(nowMs: 4)) == ["/after"])
    }

    @Test func aFirstPieceGoesWithTheHeadAndALastWithTheEnd() {
        let core = HTTPConnectionCore(limits: Self.unheld, nowMs: 0)
        _ = Self.feed(core, "GET /events HTTP/1.1\r\n\r\n")
        let head = core.beginStream(HTTPResponse(status: .ok), first: Array("abc".utf8), nowMs: 0)
        #expect(head.count == 1, "one write")
        #expect(Self.written(head) == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n")
        _ = core.written(nowMs: 1)
        let end = core.endStream(last: Array("0123456789abcdefg".utf8), nowMs: 2)
        #expect(end.count == 1)
        #expect(Self.written(end) == "11\r\n0123456789abcdefg\r\n0\r\n\r\n")
        // HEAD: the head alone, whatever the first piece.
        let other = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        _ = Self.feed(other, "HEAD /events HTTP/1.1\r\n\r\n")
        #expect(Self.written(other.beginStream(HTTPResponse(status: .ok), first: [1, 2], nowMs: 0))?.hasSuffix("\r\n\r\n") == true)
        #expect(!other.isStreaming)
    }

    /// Chunk sizes are lowercase hex without leading zeros, however long the piece.
    @Test func chunkSizesAreHex() {
        for (count, size) in [(1, "1"), (15, "f"), (16, "10"), (255, "ff"), (4_096, "1000"), (65_537, "10001")] {
            var out: [UInt8] = []
            HTTPConnectionCore.appendChunk([UInt8](repeating: 0x61, count: count), to: &out)
            #expect(String(decoding: out.prefix(size.utf8.count + 2), as: UTF8.self) == size + "\r\n", "\(count)")
            #expect(out.count == size.utf8.count + 2 + count + 2 && out.suffix(2) == [0x0D, 0x0A])
        }
        var none: [UInt8] = [1]
        HTTPConnectionCore.appendChunk([], to: &none)
        #expect(none == [1], "no bytes, no chunk: an empty one would end the body")
    }

    @Test func aPeerLeavingAStreamClosesIt() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        _ = Self.feed(core, "GET /events HTTP/1.1\r\n\r\n")
        _ = core.beginStream(HTTPResponse(status: .ok), nowMs: 0)
        #expect(Self.closes(core.peerClosed()))
        #expect(core.streamChunk([1], nowMs: 0).isEmpty)
        #expect(core.isClosed)
    }

    static func flushTimes(_ directives: [Directive]) -> [Int64] {
        directives.compactMap { if case .flushAt(let ms) = $0 { ms } else { nil } }
    }

    @Test func streamedPiecesAreHeldAtMostTheFlushTimeAndWrittenTogether() {
        var limits = HTTPLimits()
        limits.streamFlushMs = 25
        limits.streamHeadDelayMs = 250
        let core = HTTPConnectionCore(limits: limits, nowMs: 0)
        _ = Self.feed(core, "GET /events HTTP/1.1\r\n\r\n")
        // The head waits for a first piece, at most the head delay.
        let head = core.beginStream(HTTPResponse(status: .ok), nowMs: 0)
        #expect(Self.written(head) == nil && Self.flushTimes(head) == [250])
        #expect(core.pendingBytes > 0)
        // A piece brings the time forward; a second within it asks for nothing new.
        #expect(Self.flushTimes(core.streamChunk(Array("one".utf8), nowMs: 10)) == [35])
        #expect(core.streamChunk(Array("two".utf8), nowMs: 20).isEmpty)
        // Too early: asked again for its time. Then head and both pieces in one write.
        #expect(core.flush(nowMs: 34) == [.flushAt(35)])
        let out = core.flush(nowMs: 35)
        #expect(out.count == 1)
        #expect(Self.written(out) == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\none\r\n3\r\ntwo\r\n")
        #expect(core.pendingBytes == 0 && core.flush(nowMs: 100).isEmpty)
        // A piece after the write: its own time again.
        #expect(Self.flushTimes(core.streamChunk(Array("3".utf8), nowMs: 200)) == [225])
        #expect(Self.written(core.flush(nowMs: 225)) == "1\r\n3\r\n")
    }

    @Test func aStreamThatEndsWhileHeldIsOneWrite() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        _ = Self.feed(core, "GET /events HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
        _ = core.beginStream(HTTPResponse(status: .ok), nowMs: 0)
        _ = core.streamChunk(Array("log".utf8), nowMs: 1)
        let end = core.endStream(last: Array("end".utf8), nowMs: 2)
        #expect(end.count == 1, "head, piece, last piece and the end in one write")
        #expect(Self.written(end) == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nlog\r\n3\r\nend\r\n0\r\n\r\n")
        #expect(core.flush(nowMs: 1_000).isEmpty, "nothing left for the timer")
        #expect(Self.dispatched(core.written(nowMs: 3)) == ["/after"])
    }

    @Test func aHeadAloneGoesOutAfterTheHeadDelayAndALeavingPeerDropsWhatIsHeld() {
        let core = HTTPConnectionCore(limits: HTTPLimits(), nowMs: 0)
        _ = Self.feed(core, "GET /events HTTP/1.1\r\n\r\n")
        _ = core.beginStream(HTTPResponse(status: .ok), nowMs: 100)
        #expect(core.flush(nowMs: 100 + HTTPLimits().streamHeadDelayMs - 1) == [.flushAt(100 + HTTPLimits().streamHeadDelayMs)])
        #expect(Self.written(core.flush(nowMs: 100 + HTTPLimits().streamHeadDelayMs))?.hasPrefix("HTTP/1.1 200 OK") == true)
        _ = core.written(nowMs: 400)
        _ = core.streamChunk([1, 2], nowMs: 400)
        #expect(core.pendingBytes == 7)
        #expect(Self.closes(core.peerClosed()))
        #expect(core.pendingBytes == 0 && core.flush(nowMs: 10_000).isEmpty)
    }

    @Test func theRouterAnswers404And405WithAllow() {
        var router = HTTPRouter()
        router.add("GET", "/metrics") { _, responder in responder.respond(.text(.ok, "m")) }
        func answer(_ method: String, _ target: String) -> HTTPResponse? {
            var got: HTTPResponse?
            router.handle(HTTPRequest(method: method, target: target), HTTPResponder(send: { got = $0 }))
            return got
        }
        #expect(answer("GET", "/metrics?a=b")?.status == .ok)
        #expect(answer("HEAD", "/metrics")?.status == .ok)
        #expect(answer("GET", "/other")?.status == .notFound)
        let refused = answer("POST", "/metrics")
        #expect(refused?.status == .methodNotAllowed)
        #expect(refused?.headers.first { $0.name == "Allow" }?.value == "GET, HEAD")
    }
}
