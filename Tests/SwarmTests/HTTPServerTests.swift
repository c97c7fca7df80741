import Testing
@testable import SwarmHTTP
@testable import SwarmUV

/// The HTTP server on a real loop, with clients on the same loop over loopback: keep-alive,
/// pipelining, the connection cap, timeouts and the token. Each test ends checking that no
/// handle leaked.
@Suite(.serialized) struct HTTPServerTests {
    /// A raw TCP client on the loop: sends bytes, collects what comes back until EOF.
    final class Client {
        let tcp: UVTCP
        var received: [UInt8] = []
        var ended = false
        var connected = false

        init(loop: EventLoop, to address: SocketAddress) throws {
            tcp = try UVTCP(loop: loop)
            tcp.connect(address) { [unowned self] error in
                guard error == nil else { self.ended = true; return }
                self.connected = true
                try? self.tcp.stream.startReading { [unowned self] event in
                    switch event {
                    case .data(let bytes): self.received += bytes
                    case .eof, .error: self.ended = true
                    }
                }
            }
        }

        func send(_ text: String) { tcp.stream.write(Array(text.utf8)) }
        var text: String { String(decoding: received, as: UTF8.self) }
        /// Answers received so far (status lines).
        var statuses: [String] {
            // Bodies end in "\n" only: lines without their "\r", then the status lines.
            String(decoding: received.filter { $0 != 13 }, as: UTF8.self).split(separator: "\n")
                .filter { $0.hasPrefix("HTTP/1.1 ") }.map(String.init)
        }
    }

    /// Streams opened by `/events`, for the test to feed.
    nonisolated(unsafe) static var streams: [HTTPStream] = []

    static func router() -> HTTPRouter {
        var router = HTTPRouter()
        router.add("GET", "/metrics") { request, responder in responder.respond(.text(.ok, "metrics for \(request.target)")) }
        router.add("GET", "/events") { _, responder in
            if let stream = responder.beginStream(HTTPResponse(status: .ok, headers: [("Content-Type", "text/event-stream")])) {
                streams.append(stream)
            }
        }
        return router
    }

    static func withServer(limits: HTTPLimits = HTTPLimits(), token: String? = nil,
                           _ body: (EventLoop, HTTPServer, SocketAddress) throws -> Void) throws {
        let loop = EventLoop()
        let server = HTTPServer(loop: loop, router: router(), limits: limits, bearerToken: token)
        let address = try server.start(try SocketAddress(host: "127.0.0.1", port: 0))
        try body(loop, server, address)
        server.stop()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func keepAliveAndPipelinedRequestsOnOneConnection() throws {
        try Self.withServer { loop, server, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("GET /metrics?1 HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics?2 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(runLoop(loop) { client.text.contains("metrics for /metrics?2") })
            client.send("GET /nope HTTP/1.1\r\n\r\nPOST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            #expect(runLoop(loop) { client.ended })
            #expect(client.statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 405 Method Not Allowed"])
            #expect(client.text.range(of: "metrics for /metrics?1")!.lowerBound < client.text.range(of: "metrics for /metrics?2")!.lowerBound)
            #expect(server.requestsServed == 4)
            client.tcp.close()
            runLoop(loop) { server.connectionCount == 0 }
        }
    }

    @Test func aStreamedAnswerReachesTheClientAsItIsSentAndAPeerLeavingClosesIt() throws {
        Self.streams = []
        try Self.withServer { loop, server, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("GET /events HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n")
            #expect(runLoop(loop) { Self.streams.count == 1 && client.text.contains("\r\n\r\n") })
            let stream = Self.streams[0]
            stream.send(Array("data: one\n\n".utf8))
            #expect(runLoop(loop) { client.text.contains("data: one") })
            #expect(!client.text.contains("metrics for"), "the pipelined request waits for the stream's end")
            stream.finish()
            #expect(runLoop(loop) { client.text.contains("metrics for /metrics") })
            // A second stream, left by its reader.
            client.send("GET /events HTTP/1.1\r\n\r\n")
            #expect(runLoop(loop) { Self.streams.count == 2 })
            #expect(Self.streams[1].isOpen)
            client.tcp.close()
            #expect(runLoop(loop) { !Self.streams[1].isOpen && server.connectionCount == 0 })
            Self.streams[1].send([1, 2, 3])
            Self.streams = []
        }
    }

    /// Complete answers in `bytes` (a client's reading): status and whether each was chunked.
    static func answers(_ bytes: [UInt8]) -> [(status: Int, chunked: Bool)] {
        let reader = HTTPResponseReader()
        var out: [(Int, Bool)] = []
        var rest = bytes[...]
        while !rest.isEmpty {
            guard case let .complete(consumed, _) = rest.withUnsafeBytes({ reader.read($0) }) else { break }
            out.append((reader.status, reader.chunked))
            rest = rest.dropFirst(consumed)
        }
        return out
    }

    @Test func streamsThatEndLeaveTheConnectionForTheNextRequest() throws {
        Self.streams = []
        try Self.withServer { loop, server, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            // Two streams in a row, then a whole answer, on one connection.
            for n in 1...2 {
                client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(runLoop(loop) { Self.streams.count == n })
                Self.streams[n - 1].send(Array("data: piece \(n)\n\n".utf8))
                Self.streams[n - 1].finish(last: Array("event: end\n\n".utf8))
                #expect(runLoop(loop) { Self.answers(client.received).count == n })
                #expect(runLoop(loop) { server.idleCount == 1 }, "the connection waits, kept alive, for a next request")
            }
            client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(runLoop(loop) { Self.answers(client.received).count == 3 })
            let answers = Self.answers(client.received)
            #expect(answers.map(\.status) == [200, 200, 200] && answers.map(\.chunked) == [true, true, false])
            #expect(client.text.contains("data: piece 1") && client.text.contains("data: piece 2"))
            #expect(!client.ended && server.connectionCount == 1 && server.requestsServed == 3)
            // A client that closes in the middle of a third stream: the stream closes, nothing leaks.
            client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(runLoop(loop) { Self.streams.count == 3 && server.idleCount == 0 })
            Self.streams[2].send(Array("data: half\n\n".utf8))
            client.tcp.close()
            #expect(runLoop(loop) { !Self.streams[2].isOpen && server.connectionCount == 0 })
            Self.streams[2].finish(last: Array("event: end\n\n".utf8))
            Self.streams = []
        }
    }

    /// The shared flush timer: a stream whose head waits for its first piece is left waiting
    /// while another stream's piece goes out at its flush time, still gets its head at the head
    /// delay, and once every stream has written what it held the timer is stopped.
    @Test func aHeadWaitingStreamIsLeftPutWhileAnotherFlushesAndTheTimerStopsWhenNoneHolds() throws {
        Self.streams = []
        var limits = HTTPLimits()
        limits.streamFlushMs = 20
        limits.streamHeadDelayMs = 400
        try Self.withServer(limits: limits) { loop, server, address in
            let waiting = try Client(loop: loop, to: address), printing = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { waiting.connected && printing.connected })
            waiting.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(runLoop(loop) { Self.streams.count == 1 })
            printing.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(runLoop(loop) { Self.streams.count == 2 })
            #expect(server.held.count == 2 && server.held.timerArmed)
            Self.streams[1].send(Array("data: one\n\n".utf8))
            #expect(runLoop(loop) { printing.text.contains("data: one") })
            #expect(server.held.count == 1 && server.held.timerArmed, "the waiting head is still held, the timer armed for it")
            #expect(runLoop(loop) { waiting.text.hasPrefix("HTTP/1.1 200 OK") }, "its head at the head delay")
            #expect(server.held.count == 0 && !server.held.timerArmed)
            Self.streams[1].send(Array("data: two\n\n".utf8))
            #expect(server.held.count == 1)
            Self.streams[1].finish(last: Array("event: end\n\n".utf8))
            #expect(server.held.count == 0 && !server.held.timerArmed, "an end writes what was held: nothing left to wake for")
            #expect(runLoop(loop) { Self.answers(printing.received).count == 1 })
            #expect(printing.text.contains("data: two") && printing.text.contains("event: end"))
            Self.streams[0].finish()
            #expect(runLoop(loop) { Self.answers(waiting.received).count == 1 })
            for client in [waiting, printing] { client.tcp.close() }
            #expect(runLoop(loop) { server.connectionCount == 0 })
            Self.streams = []
        }
    }

    @Test func idleKeptAliveConnectionsPastTheCapCloseLongestIdleFirst() throws {
        var limits = HTTPLimits()
        limits.maxIdleConnections = 2
        limits.maxConnections = 4
        try Self.withServer(limits: limits) { loop, server, address in
            let clients = try (0..<3).map { _ in try Client(loop: loop, to: address) }
            #expect(runLoop(loop) { clients.allSatisfy(\.connected) })
            for (n, client) in clients.enumerated() {
                client.send("GET /metrics HTTP/1.1\r\n\r\n")
                #expect(runLoop(loop) { client.statuses.count == 1 && server.idleCount == min(n + 1, 2) })
            }
            #expect(runLoop(loop) { clients[0].ended }, "the third idle one closed the one idle longest")
            #expect(!clients[1].ended && !clients[2].ended && server.connectionCount == 2)
            // At the connection cap, a new connection takes an idle one's place instead of a 503.
            let busy = try Client(loop: loop, to: address)
            let fresh = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { busy.connected && fresh.connected && server.connectionCount == 4 })
            let newcomer = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { newcomer.connected && clients[1].ended })
            newcomer.send("GET /metrics HTTP/1.1\r\n\r\n")
            #expect(runLoop(loop) { newcomer.statuses == ["HTTP/1.1 200 OK"] })
            #expect(server.refusedConnections == 0 && !clients[2].ended)
            for client in clients + [busy, fresh, newcomer] { client.tcp.close() }
            #expect(runLoop(loop) { server.connectionCount == 0 && server.idleCount == 0 })
        }
    }

    @Test func garbageGets400AndTheConnectionCloses() throws {
        try Self.withServer { loop, server, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("\u{16}\u{03}\u{01}hello tls\r\n\r\n")
            #expect(runLoop(loop) { client.ended })
            #expect(client.statuses == ["HTTP/1.1 400 Bad Request"])
            #expect(runLoop(loop) { server.connectionCount == 0 })
            client.tcp.close()
        }
    }

    @Test func oversizeHeadersGet431() throws {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 256
        try Self.withServer(limits: limits) { loop, _, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("GET /metrics HTTP/1.1\r\nX: \(String(repeating: "a", count: 300))\r\n\r\n")
            #expect(runLoop(loop) { client.ended })
            #expect(client.statuses == ["HTTP/1.1 431 Request Header Fields Too Large"])
            client.tcp.close()
        }
    }

    @Test func connectionsPastTheCapGet503() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 2
        limits.evictUnprovenAfterMs = 600_000  // the refusal, not the eviction (HTTPEvictionTests)
        try Self.withServer(limits: limits) { loop, server, address in
            let kept = try (0..<2).map { _ in try Client(loop: loop, to: address) }
            #expect(runLoop(loop) { kept.allSatisfy(\.connected) && server.connectionCount == 2 })
            let extra = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { extra.ended })
            #expect(extra.statuses == ["HTTP/1.1 503 Service Unavailable"])
            #expect(server.refusedConnections == 1)
            // The kept ones are still served.
            kept[0].send("GET /metrics HTTP/1.1\r\n\r\n")
            #expect(runLoop(loop) { kept[0].statuses.count == 1 })
            for client in kept + [extra] { client.tcp.close() }
            runLoop(loop) { server.connectionCount == 0 }
        }
    }

    @Test func idleAndSlowConnectionsAreClosed() throws {
        var limits = HTTPLimits()
        limits.idleTimeoutMs = 200
        limits.requestTimeoutMs = 200
        try Self.withServer(limits: limits) { loop, server, address in
            let idle = try Client(loop: loop, to: address)
            let slow = try Client(loop: loop, to: address)
            runLoop(loop) { idle.connected && slow.connected }
            slow.send("GET /metr")
            #expect(runLoop(loop, timeoutMs: 3_000) { idle.ended && slow.ended })
            #expect(idle.received.isEmpty)
            #expect(slow.statuses == ["HTTP/1.1 408 Request Timeout"])
            #expect(server.connectionCount == 0)
            idle.tcp.close()
            slow.tcp.close()
        }
    }

    @Test func withATokenEveryRequestNeedsTheBearerToken() throws {
        try Self.withServer(token: "s3cret") { loop, _, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("GET /metrics HTTP/1.1\r\n\r\n")
            client.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cre\r\n\r\n")
            client.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n")
            #expect(runLoop(loop) { client.ended })
            #expect(client.statuses == ["HTTP/1.1 401 Unauthorized", "HTTP/1.1 401 Unauthorized", "HTTP/1.1 200 OK"])
            #expect(client.text.contains("WWW-Authenticate: Bearer"))
            client.tcp.close()
        }
    }

    @Test func aNonLoopbackAddressIsRefusedWithoutAToken() throws {
        let loop = EventLoop()
        #expect(throws: HTTPListen.Failure.self) {
            _ = try HTTPListen.start(loop: loop, host: "0.0.0.0", port: 0, token: nil, router: Self.router())
        }
        do {
            _ = try HTTPListen.start(loop: loop, host: "0.0.0.0", port: 0, token: nil, router: Self.router())
        } catch {
            #expect(error.description.contains("refusing to serve HTTP on 0.0.0.0:0 without a cluster token"))
        }
        #expect(throws: HTTPListen.Failure.self) {
            _ = try HTTPListen.start(loop: loop, host: "not-an-address", port: 0, token: nil, router: Self.router())
        }
        // Loopback needs no token.
        let (server, address) = try HTTPListen.start(loop: loop, host: "127.0.0.1", port: 0, token: nil, router: Self.router())
        #expect(address.port != 0)
        server.stop()
        try closeLoopCheckingLeaks(loop)
    }
}
