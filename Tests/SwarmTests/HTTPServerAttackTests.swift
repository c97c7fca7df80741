import Testing
@testable import SwarmHTTP
@testable import SwarmUV

/// The server's closes on a real loop: an answer the server closes after (503 past the cap,
/// 431, 413) reaches a client still sending, instead of a reset that drops it.
@Suite(.serialized) struct HTTPServerAttackTests {
    typealias Client = HTTPServerTests.Client

    @Test func aClientPastTheCapThatSendsAtOnceReadsIts503() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 1
        limits.evictUnprovenAfterMs = 600_000  // the refusal, not the eviction (HTTPEvictionTests)
        try HTTPServerTests.withServer(limits: limits) { loop, server, address in
            let kept = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { kept.connected && server.connectionCount == 1 })
            let extra = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { extra.connected })
            // A request with a body the server never reads: unread bytes when it closes.
            extra.send("POST /metrics HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + String(repeating: "b", count: 200_000))
            #expect(runLoop(loop) { extra.ended })
            #expect(extra.statuses == ["HTTP/1.1 503 Service Unavailable"])
            for client in [kept, extra] { client.tcp.close() }
            #expect(runLoop(loop) { server.connectionCount == 0 && server.lingeringCount == 0 })
        }
    }

    @Test func oversizeHeadersStillBeingSentGet431NotAReset() throws {
        try HTTPServerTests.withServer { loop, server, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            // 200 KB of headers: refused at 16 KiB while the rest is still on its way.
            let header = "X: " + String(repeating: "a", count: 1_000) + "\r\n"
            client.send("GET /metrics HTTP/1.1\r\n" + String(repeating: header, count: 200) + "\r\n")
            #expect(runLoop(loop) { client.ended })
            #expect(client.statuses == ["HTTP/1.1 431 Request Header Fields Too Large"])
            client.tcp.close()
            #expect(runLoop(loop) { server.lingeringCount == 0 })
        }
    }

    @Test func aPeerThatKeepsSendingIsClosedAfterTheLinger() throws {
        var limits = HTTPLimits()
        limits.lingerMs = 300
        limits.maxHeaderBytes = 100
        try HTTPServerTests.withServer(limits: limits) { loop, server, address in
            let client = try Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: 200) + "\r\n")
            #expect(runLoop(loop) { client.statuses.count == 1 && server.lingeringCount == 1 })
            // Still sending, never closing: the server closes it after lingerMs (and a sweep).
            let timer = try UVTimer(loop: loop)
            timer.start(afterMs: 50, repeatMs: 50) { client.send("more") }
            #expect(runLoop(loop, timeoutMs: 5_000) { server.lingeringCount == 0 })
            timer.close()
            client.tcp.close()
        }
    }
}
