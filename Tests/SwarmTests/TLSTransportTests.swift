import Foundation
import Testing
@testable import SwarmUV
import SwarmProtocol
@testable import SwarmTransport

/// TLS 1.3 under framed connections on a real loop over loopback: token (PSK) and certificate
/// modes work, wrong credentials and plaintext/TLS mismatches end with a one-line reason,
/// a byte flipped in flight ends the connection with nothing of it delivered, a replayed
/// session is refused, and no handle leaks.
@Suite struct TLSTransportTests {
    final class Side {
        var connection: FramedConnection?
        var messages: [Message] = []
        var end: ConnectionEnd?
        /// Every connection attached (a listener's side gets one per accept).
        var all: [FramedConnection] = []
        func attach(_ connection: FramedConnection) {
            self.connection = connection
            all.append(connection)
            connection.onMessage = { [unowned self] in self.messages.append($0) }
            connection.onEnd = { [unowned self] in self.end = $0 }
            connection.start()
        }
    }

    /// A scheduler-like listener and a client connecting to `port` (the listener's, or a proxy's).
    struct Pair {
        let listener: UVTCP
        let server = Side()
        let client = Side()
    }

    private func listen(_ loop: EventLoop, tls: TLSContext?) throws -> Pair {
        let listener = try UVTCP(loop: loop)
        try listener.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let pair = Pair(listener: listener)
        try listener.listen { _ in
            let tcp = try! listener.accept()
            pair.server.attach(FramedConnection(tcp: tcp, tls: tls.map { try! TLSSession(context: $0) }))
        }
        return pair
    }

    private func connect(_ loop: EventLoop, _ side: Side, port: Int, tls: TLSContext?) throws {
        let tcp = try UVTCP(loop: loop)
        var connected = false
        tcp.connect(try SocketAddress(host: "127.0.0.1", port: port)) { error in
            #expect(error == nil)
            connected = true
        }
        #expect(runLoop(loop) { connected })
        side.attach(FramedConnection(tcp: tcp, tls: tls.map { try! TLSSession(context: $0) }))
    }

    private func finish(_ loop: EventLoop, _ pair: Pair, _ extra: [UVTCP] = []) throws {
        for connection in pair.server.all + pair.client.all { connection.close(reason: "done") }
        pair.listener.close()
        for tcp in extra { tcp.close() }
        try closeLoopCheckingLeaks(loop)
    }

    private func endReason(_ side: Side) -> String { side.end.map { "\($0)" } ?? "" }

    static let token = ClusterToken("tls-test-token")

    static func server(_ token: ClusterToken = token) throws -> TLSContext {
        try TLSContext(serverToken: token, files: nil)
    }

    static func client(_ token: ClusterToken = token, name: String = "c") throws -> TLSContext {
        try TLSContext(clientToken: token, role: .client, name: name, files: nil)
    }

    @Test func tokenModeCarriesFramesBothWays() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: try Self.server())
        try connect(loop, pair.client, port: try pair.listener.localAddress().port, tls: try Self.client())
        for i in 0..<50 { pair.client.connection!.send(.status(.init(requestId: i, id: "t\(i)"))) }
        #expect(runLoop(loop) { pair.server.messages.count == 50 })
        pair.server.connection!.send(.status(.init(requestId: 99, id: "back")))
        #expect(runLoop(loop) { pair.client.messages.count == 1 })
        #expect(pair.client.connection!.tls!.isEstablished)
        #expect(pair.client.connection!.tls!.handshakeNs != nil)
        try finish(loop, pair)
    }

    @Test func aTaskCredentialGetsItsOwnPSK() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: try Self.server())
        let credential = ClusterToken(Self.token.taskCredential(for: "job-7"))
        try connect(loop, pair.client, port: try pair.listener.localAddress().port,
                    tls: try Self.client(credential, name: "task:job-7"))
        pair.client.connection!.send(.status(.init(requestId: 1, id: "x")))
        #expect(runLoop(loop) { pair.server.messages.count == 1 })
        try finish(loop, pair)
    }

    @Test func aWrongTokenIsRefusedWithAReason() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: try Self.server())
        try connect(loop, pair.client, port: try pair.listener.localAddress().port,
                    tls: try Self.client(ClusterToken("another-token")))
        pair.client.connection!.send(.status(.init(requestId: 1, id: "x")))
        #expect(runLoop(loop) { pair.client.end != nil && pair.server.end != nil })
        #expect(pair.server.messages.isEmpty)
        #expect(endReason(pair.client).contains("TLS handshake failed"))
        #expect(endReason(pair.client).contains("wrong cluster token"))
        #expect(endReason(pair.server).contains("TLS handshake failed"))
        try finish(loop, pair)
    }

    @Test func aPlaintextPeerOfATLSServerIsToldWhy() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: try Self.server())
        try connect(loop, pair.client, port: try pair.listener.localAddress().port, tls: nil)
        pair.client.connection!.send(.status(.init(requestId: 1, id: "x")))
        #expect(runLoop(loop) { pair.client.end != nil && pair.server.end != nil })
        #expect(pair.server.messages.isEmpty)
        guard case .error(let e)? = pair.client.messages.first else {
            Issue.record("no error frame: \(pair.client.messages)")
            return try finish(loop, pair)
        }
        #expect(e.reason.contains("requires TLS"))
        #expect(endReason(pair.server).contains("not speaking TLS"))
        try finish(loop, pair)
    }

    @Test func aTLSPeerOfAPlaintextServerIsToldWhy() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: nil)
        try connect(loop, pair.client, port: try pair.listener.localAddress().port, tls: try Self.client())
        #expect(runLoop(loop) { pair.client.end != nil && pair.server.end != nil })
        #expect(pair.server.messages.isEmpty)
        #expect(endReason(pair.client).contains("answered in plaintext"))
        #expect(endReason(pair.client).contains("does not use TLS"))
        try finish(loop, pair)
    }

    @Test func aFlippedByteEndsTheConnectionAndNothingOfItArrives() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: try Self.server())
        let proxy = try TamperProxy(loop: loop, target: try pair.listener.localAddress().port)
        try connect(loop, pair.client, port: proxy.port, tls: try Self.client())
        pair.client.connection!.send(.status(.init(requestId: 1, id: "before")))
        #expect(runLoop(loop) { pair.server.messages.count == 1 })
        proxy.flipNextUpByte = true
        pair.client.connection!.send(.submit(.init(requestId: 2, task: TaskSpec(id: "evil", command: ["true"]))))
        #expect(runLoop(loop) { pair.server.end != nil })
        #expect(pair.server.messages.count == 1)
        #expect(endReason(pair.server).contains("TLS record rejected"))
        #expect(proxy.flipped == 1)
        try finish(loop, pair, proxy.sockets)
    }

    @Test func aReplayedSessionIsRefused() throws {
        let loop = EventLoop()
        let pair = try listen(loop, tls: try Self.server())
        let proxy = try TamperProxy(loop: loop, target: try pair.listener.localAddress().port)
        try connect(loop, pair.client, port: proxy.port, tls: try Self.client())
        pair.client.connection!.send(.submit(.init(requestId: 1, task: TaskSpec(id: "once", command: ["true"]))))
        #expect(runLoop(loop) { pair.server.messages.count == 1 })
        let recorded = proxy.recordedUp
        pair.client.connection?.close(reason: "done")
        #expect(runLoop(loop) { pair.server.end != nil })
        // The same bytes, sent again on a new connection: the server's fresh key share makes
        // them worthless; nothing is delivered.
        let replay = Side()
        pair.server.end = nil
        pair.server.messages = []
        let tcp = try UVTCP(loop: loop)
        var connected = false
        tcp.connect(try SocketAddress(host: "127.0.0.1", port: try pair.listener.localAddress().port)) { _ in connected = true }
        #expect(runLoop(loop) { connected })
        tcp.stream.write(recorded)
        try tcp.stream.startReading { event in if case .data = event {} else { replay.end = .eof } }
        #expect(runLoop(loop) { pair.server.end != nil })
        #expect(pair.server.messages.isEmpty)
        #expect(endReason(pair.server).contains("TLS"))
        try finish(loop, pair, proxy.sockets + [tcp])
    }

    @Test func certificateModeIsMutualAndChecksTheCA() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swarm-tls-\(UUID().uuidString)").path
        let other = dir + "-other"
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: other)
        }
        _ = try TLSInit.make(directory: dir, workers: 1, clients: 1)
        _ = try TLSInit.make(directory: other, workers: 1, clients: 0)
        // Again: the same CA signs one more worker certificate; nothing else is written.
        let added = try TLSInit.make(directory: dir, workers: 1, clients: 0).map { ($0 as NSString).lastPathComponent }
        #expect(added == ["worker-2-key.pem", "worker-2.pem"] || added == ["worker-2.pem", "worker-2-key.pem"])
        func files(_ d: String, _ name: String) -> TLSCertificateFiles {
            TLSCertificateFiles(cert: "\(d)/\(name).pem", key: "\(d)/\(name)-key.pem", ca: "\(dir)/ca.pem")
        }
        let server = try TLSContext(server: true, files: files(dir, "scheduler"))
        let loop = EventLoop()
        let pair = try listen(loop, tls: server)
        let port = try pair.listener.localAddress().port
        try connect(loop, pair.client, port: port, tls: try TLSContext(server: false, files: files(dir, "worker-1")))
        pair.client.connection!.send(.status(.init(requestId: 1, id: "x")))
        #expect(runLoop(loop) { pair.server.messages.count == 1 })
        // A certificate of another CA; a worker's certificate posing as the scheduler; no
        // certificate at all (a token client).
        let stranger = Side()
        try connect(loop, stranger, port: port, tls: try TLSContext(server: false, files: files(other, "worker-1")))
        #expect(runLoop(loop) { stranger.end != nil })
        #expect(endReason(stranger).contains("TLS handshake failed"))
        let tokenOnly = Side()
        try connect(loop, tokenOnly, port: port, tls: try Self.client())
        #expect(runLoop(loop) { tokenOnly.end != nil })
        #expect(endReason(tokenOnly).contains("TLS handshake failed"))
        #expect(pair.server.messages.count == 1)
        let fake = try TLSContext(server: true, files: files(dir, "worker-1"))
        let fakePair = try listen(loop, tls: fake)
        try connect(loop, fakePair.client, port: try fakePair.listener.localAddress().port,
                    tls: try TLSContext(server: false, files: files(dir, "client-1")))
        #expect(runLoop(loop) { fakePair.client.end != nil })
        #expect(endReason(fakePair.client).contains("TLS handshake failed"))
        stranger.connection?.close(reason: "done")
        tokenOnly.connection?.close(reason: "done")
        fakePair.server.connection?.close(reason: "done")
        fakePair.client.connection?.close(reason: "done")
        fakePair.listener.close()
        try finish(loop, pair)
    }

    @Test func missingOrMismatchedCertificateFilesAreOneLineErrors() throws {
        #expect(throws: TLSError.self) { _ = try TLSCertificateFiles.from(cert: "a", key: nil, ca: "c") }
        #expect(try TLSCertificateFiles.from(cert: nil, key: nil, ca: nil) == nil)
        do {
            _ = try TLSContext(server: true, files: TLSCertificateFiles(cert: "/nonexistent/c.pem", key: "/nonexistent/k.pem", ca: "/nonexistent/ca.pem"))
            Issue.record("a missing certificate was accepted")
        } catch {
            #expect(error.description.contains("/nonexistent/c.pem"))
            #expect(!error.description.contains("\n"))
        }
    }
}

/// A byte-forwarding proxy on the test's loop: records what the client sends, and flips one
/// byte of the next chunk going up when asked.
final class TamperProxy {
    let listener: UVTCP
    let port: Int
    var sockets: [UVTCP] = []
    var flipNextUpByte = false
    var flipped = 0
    var recordedUp: [UInt8] = []

    init(loop: EventLoop, target: Int) throws {
        listener = try UVTCP(loop: loop)
        try listener.bind(SocketAddress(host: "127.0.0.1", port: 0))
        port = try listener.localAddress().port
        sockets = [listener]
        try listener.listen { [unowned self] _ in
            guard let down = try? self.listener.accept(), let up = try? UVTCP(loop: loop) else { return }
            self.sockets += [down, up]
            up.connect(try! SocketAddress(host: "127.0.0.1", port: target)) { [unowned self] _ in
                try? down.stream.startReading { [unowned self] event in
                    guard case .data(let bytes) = event else { return up.close() }
                    var chunk = Array(bytes)
                    self.recordedUp += chunk
                    if self.flipNextUpByte, !chunk.isEmpty {
                        self.flipNextUpByte = false
                        self.flipped += 1
                        chunk[chunk.count / 2] ^= 0x01
                    }
                    up.stream.write(chunk)
                }
                try? up.stream.startReading { event in
                    guard case .data(let bytes) = event else { return down.close() }
                    down.stream.write(Array(bytes))
                }
            }
        }
    }
}
