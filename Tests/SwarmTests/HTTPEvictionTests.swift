import Foundation
import Testing
@testable import SwarmHTTP
@testable import SwarmUV

/// Sockets that never show a token cannot lock the HTTP listener: with every slot taken, a
/// newcomer takes the slot of the oldest connection that has passed no token check and is at
/// least `HTTPLimits.evictUnprovenAfterMs` old; connections that did (a scraper, a dashboard
/// stream) and young ones are never evicted. Each test ends checking that no handle leaked.
@Suite(.serialized) struct HTTPEvictionTests {
    typealias Client = HTTPServerTests.Client

    /// Runs the loop until `ms` of loop time have passed.
    static func wait(_ loop: EventLoop, ms: UInt64) {
        let until = loop.nowMs + ms
        let tick = try! UVTimer(loop: loop)
        tick.start(afterMs: 10, repeatMs: 10) {}
        runLoop(loop, timeoutMs: ms + 5_000) { loop.nowMs >= until }
        tick.close()
    }

    @Test func silentSocketsGiveTheirSlotsToNewcomersAndProvenOnesKeepTheirs() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 3
        limits.evictUnprovenAfterMs = 200
        try HTTPServerTests.withServer(limits: limits, token: "s3cret") { loop, server, address in
            let scraper = try Client(loop: loop, to: address)
            runLoop(loop) { scraper.connected }
            scraper.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n")
            #expect(runLoop(loop) { scraper.statuses.count == 1 })
            // An attacker's silent sockets, and one that sent a request without the token.
            let silent = try Client(loop: loop, to: address)
            runLoop(loop) { silent.connected && server.connectionCount == 2 }
            let refused = try Client(loop: loop, to: address)
            runLoop(loop) { refused.connected }
            refused.send("GET /metrics HTTP/1.1\r\n\r\n")
            #expect(runLoop(loop) { refused.statuses == ["HTTP/1.1 401 Unauthorized"] && server.connectionCount == 3 })
            Self.wait(loop, ms: 250)
            // Full: each newcomer takes the oldest unproven slot and is served.
            var newcomers: [Client] = []
            for count in 1...2 {
                let newcomer = try Client(loop: loop, to: address)
                newcomers.append(newcomer)
                runLoop(loop) { newcomer.connected }
                newcomer.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n")
                #expect(runLoop(loop) { newcomer.statuses == ["HTTP/1.1 200 OK"] })
                // One of the two (accepted in the same millisecond, maybe) is gone each time.
                #expect(runLoop(loop) { [silent, refused].filter(\.ended).count == count })
            }
            #expect(server.evictedConnections == 2 && !scraper.ended)
            // Every slot is now proven, and idle between requests: the next one takes the place
            // of the one idle longest (the scraper's: a kept-alive client reconnects at no loss),
            // never an unproven eviction; none idle would be a 503 (HTTPServerTests).
            let late = try Client(loop: loop, to: address)
            runLoop(loop) { late.connected }
            #expect(runLoop(loop) { scraper.ended })
            late.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n")
            #expect(runLoop(loop) { late.statuses == ["HTTP/1.1 200 OK"] })
            #expect(server.refusedConnections == 0 && server.evictedConnections == 2)
            for client in [scraper, silent, refused, late] + newcomers { client.tcp.close() }
            runLoop(loop) { server.connectionCount == 0 }
        }
    }

    @Test func aYoungSilentSocketIsNotEvicted() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 1
        limits.evictUnprovenAfterMs = 600_000
        try HTTPServerTests.withServer(limits: limits, token: "s3cret") { loop, server, address in
            let silent = try Client(loop: loop, to: address)
            runLoop(loop) { silent.connected && server.connectionCount == 1 }
            let newcomer = try Client(loop: loop, to: address)
            #expect(runLoop(loop) { newcomer.ended })
            #expect(newcomer.statuses == ["HTTP/1.1 503 Service Unavailable"])
            #expect(server.evictedConnections == 0 && !silent.ended)
            for client in [silent, newcomer] { client.tcp.close() }
            runLoop(loop) { server.connectionCount == 0 }
        }
    }

    /// HTTPS: half-open handshakes (a ClientHello started, then nothing) holding every slot
    /// do not keep curl with the token out.
    @Test(.enabled(if: MetricsEndToEndTests.curl != nil, "curl is not installed (scripts/ensure-deps.sh installs it): no real HTTPS client"))
    func halfOpenHandshakesDoNotLockCurlOut() throws {
        let dir = try HTTPSServerTests.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var limits = HTTPLimits()
        limits.maxConnections = 4
        limits.evictUnprovenAfterMs = 200
        // The handshakes' own deadline stays out of the way, however slow the machine.
        limits.requestTimeoutMs = 120_000
        try HTTPSServerTests.withServer(limits: limits, dir: dir, Self.curlGetsThroughHalfOpenHandshakes)
    }

    static func curlGetsThroughHalfOpenHandshakes(_ loop: EventLoop, _ server: HTTPServer, _ address: SocketAddress) throws {
        var holders: [Client] = []
        for _ in 0..<4 { holders.append(try Client(loop: loop, to: address)) }
        let allIn = runLoop(loop) { server.connectionCount == 4 && holders.filter { !$0.connected }.isEmpty }
        #expect(allIn)
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]
        for holder in holders { holder.tcp.stream.write(hello) }
        wait(loop, ms: 250)
        guard let cert = server.certificate else {
            Issue.record("no certificate")
            return
        }
        let url = "https://127.0.0.1:\(address.port)/metrics"
        let ok = try HTTPSServerTests.curl(loop, ["--cacert", cert.cert, "-H", "Authorization: Bearer s3cret", url])
        let body = ok.stdout
        #expect(body == "metrics for /metrics\n")
        let evicted = server.evictedConnections
        #expect(evicted == 1)
        for holder in holders { holder.tcp.close() }
        runLoop(loop) { server.connectionCount == 0 }
    }
}
