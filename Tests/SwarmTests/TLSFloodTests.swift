import Foundation
import Testing
import SwarmProtocol
@testable import SwarmTransport
@testable import SwarmUV

/// A peer holding the token (a task's credential is enough) floods a TLS session with work
/// that costs far more than its bytes: KeyUpdates, each costing the receiver new keys and a
/// KeyUpdate of its own, and one-byte records. Two sessions talk through memory, or two
/// framed connections over loopback.
@Suite struct TLSFloodTests {
    static let token = ClusterToken("tls-flood-token")

    /// A client and a server session with their handshake done.
    static func pair() throws -> (client: TLSSession, server: TLSSession) {
        let client = try TLSSession(context: TLSContext(clientToken: token, role: .client, name: "c", files: nil))
        let server = try TLSSession(context: TLSContext(serverToken: token, files: nil))
        var plain: [UInt8] = []
        var toServer = try client.start()
        for _ in 0..<4 where !(client.isEstablished && server.isEstablished) {
            let toClient = try toServer.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
            toServer = try toClient.withUnsafeBytes { bytes throws(TLSError) in try client.receive(bytes, plain: &plain) }
        }
        if !toServer.isEmpty {
            _ = try toServer.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        }
        try #require(client.isEstablished && server.isEstablished)
        return (client, server)
    }

    /// `count` KeyUpdates from the client, one byte of data after every `every` of them
    /// (OpenSSL itself stops 32 in a row, not this), then `data` bytes of data.
    static func flood(_ client: TLSSession, count: Int, every: Int = 15, data: Int = 0) throws -> [UInt8] {
        var wire: [UInt8] = []
        for i in 0..<count {
            let update = client.requestKeyUpdate()
            try #require(!update.isEmpty)
            wire += update
            if i % every == every - 1 { wire += try client.seal([0x61]) }
        }
        if data > 0 { wire += try client.seal([UInt8](repeating: 0x62, count: data)) }
        return wire
    }

    @Test func aFloodOfKeyUpdatesEndsTheSession() throws {
        let (client, server) = try Self.pair()
        let wire = try Self.flood(client, count: 3_000)
        var plain: [UInt8] = []
        do {
            _ = try wire.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
            Issue.record("3,000 key updates were all taken")
        } catch {
            #expect("\(error)".contains("TLS key updates"), "\(error)")
        }
        // It ended within one piece of input past the allowance, not after all of them.
        #expect(plain.count < 200, "\(plain.count) bytes of data were read before the flood was cut")
    }

    @Test func keyUpdatesWithinTheAllowanceAreServed() throws {
        let (client, server) = try Self.pair()
        // The allowance, and one more for each MiB of data sent.
        let wire = try Self.flood(client, count: TLSSession.keyUpdateAllowance, data: TLSSession.keyUpdateBytes)
            + Self.flood(client, count: 1, every: 1)
        var plain: [UInt8] = []
        let reply = try wire.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        #expect(plain.count == TLSSession.keyUpdateAllowance / 15 + TLSSession.keyUpdateBytes + 1)
        // The server answered with KeyUpdates of its own (the client would count those as
        // its peer's: not read here), and still takes data.
        #expect(!reply.isEmpty)
        let more = try client.seal(Array("still talking".utf8))
        plain = []
        _ = try more.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        #expect(plain == Array("still talking".utf8))
    }

    @Test func aTurnBudgetOfRecordsPausesOnlyInItsOwnTurn() {
        var budget = TLSTurnBudget(maxRecordsPerTurn: 10)
        budget.begin(records: 100, nowMs: 5)
        let atBudget = budget.isSpent(records: 110)
        #expect(!atBudget)
        #expect(!budget.holdsReading(nowMs: 5))
        let pastBudget = budget.isSpent(records: 111)
        #expect(pastBudget)
        #expect(budget.holdsReading(nowMs: 5))
        budget.begin(records: 111, nowMs: 5)  // the same turn: still spent
        let sameTurn = budget.isSpent(records: 111)
        #expect(sameTurn)
        #expect(!budget.holdsReading(nowMs: 6))
        budget.begin(records: 111, nowMs: 6)
        let nextTurnAtBudget = budget.isSpent(records: 121)
        #expect(!nextTurnAtBudget)
        let nextTurnPast = budget.isSpent(records: 122)
        #expect(nextTurnPast)
    }

    @Test func everyRecordReadIsCounted() throws {
        let (client, server) = try Self.pair()
        let before = server.recordsReceived
        var wire: [UInt8] = []
        for _ in 0..<3_000 { wire += try client.seal([0x61]) }
        var plain: [UInt8] = []
        _ = try wire.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        #expect(plain.count == 3_000)
        #expect(server.recordsReceived - before == 3_000)
    }

    /// 400 frames sent one byte a record (~460 KB): the server reads at most one read
    /// (64 KiB) a loop turn once a turn's records pass its budget, and every frame arrives.
    /// Without the budget libuv reads up to 32 of them a turn: ~92,000 records, ~0.2 s.
    @Test func oneByteRecordsAreReadWithinABudgetPerTurn() throws {
        let loop = EventLoop()
        let listener = try UVTCP(loop: loop)
        try listener.bind(SocketAddress(host: "127.0.0.1", port: 0))
        var server: FramedConnection?
        var received = 0
        try listener.listen { _ in
            let connection = FramedConnection(tcp: try! listener.accept(), tls: try! TLSSession(context: TLSContext(serverToken: Self.token, files: nil)))
            connection.maxTLSRecordsPerTurn = 10
            connection.onMessage = { _ in received += 1 }
            connection.start()
            server = connection
        }
        let tcp = try UVTCP(loop: loop)
        var connected = false
        tcp.connect(try SocketAddress(host: "127.0.0.1", port: try listener.localAddress().port)) { _ in connected = true }
        #expect(runLoop(loop) { connected })
        let client = FramedConnection(tcp: tcp, tls: try TLSSession(context: TLSContext(clientToken: Self.token, role: .client, name: "c", files: nil)))
        client.start()
        client.send(.status(.init(requestId: 0, id: "first")))
        #expect(runLoop(loop) { received == 1 })
        let tls = try #require(client.tls)
        var wire: [UInt8] = []
        for i in 1...400 {
            for byte in MessageCodec.frame(.status(.init(requestId: i, id: "t\(i)"))) { wire += try tls.seal([byte]) }
        }
        client.writeRaw(wire)
        // Bytes the server read in each loop turn.
        let sampler = try UVPrepare(loop: loop)
        var last = server?.bytesReceived ?? 0
        var mostInATurn = 0
        sampler.start {
            let now = server?.bytesReceived ?? 0
            mostInATurn = max(mostInATurn, now - last)
            last = now
        }
        #expect(runLoop(loop, timeoutMs: 20_000) { received == 401 })
        #expect(mostInATurn > 0 && mostInATurn <= 64 * 1024, "\(mostInATurn) bytes read in one turn")
        sampler.close()
        client.close(reason: "done")
        server?.close(reason: "done")
        listener.close()
        try closeLoopCheckingLeaks(loop)
    }
}
