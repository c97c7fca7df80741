import Foundation
import Testing
import SwarmClient
import Logging
import SwarmProtocol
import SwarmScheduler
import SwarmTransport
import SwarmUV

/// A blocking loopback socket for sending hostile bytes (plain POSIX: this is the attacker,
/// not the product). With `tls`, it first does the TLS handshake (an attacker holding the
/// TLS key) and then seals what it sends and opens what it reads.
final class RawSocket {
    let fd: Int32
    private var tls: TLSSession?
    /// How long one read waits for bytes before giving up (SO_RCVTIMEO).
    static let readTimeoutSeconds = 30

    init(port: Int, receiveBuffer: Int32? = nil, tls context: TLSContext? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        // Long: a loaded machine (CI beside builds) may leave the peer's loop or this thread
        // without CPU for seconds; the tests wait on what the peer does, never on this limit.
        var timeout = timeval(tv_sec: RawSocket.readTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let context { try handshake(TLSSession(context: context)) }
    }

    deinit { close(fd) }

    private func handshake(_ session: TLSSession) throws {
        sendRaw(try session.start())
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<100 where !session.isEstablished {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw POSIXError(.ECONNRESET) }
            var plain: [UInt8] = []
            sendRaw(try buffer.withUnsafeBytes { try session.receive(UnsafeRawBufferPointer(rebasing: $0[0..<n]), plain: &plain) })
        }
        guard session.isEstablished else { throw POSIXError(.ETIMEDOUT) }
        tls = session
    }

    private func sendRaw(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send(_ bytes: [UInt8]) {
        sendRaw(tls.map { (try? $0.seal(bytes)) ?? [] } ?? bytes)
    }

    /// One read: the bytes (opened, with TLS; possibly none yet), or nil at EOF, reset or a
    /// TLS failure; `n` as recv returned it.
    private func receive(_ buffer: inout [UInt8]) -> (bytes: [UInt8]?, n: Int) {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return (nil, n) }
        guard let tls else { return (Array(buffer[0..<n]), n) }
        var plain: [UInt8] = []
        do {
            sendRaw(try buffer.withUnsafeBytes { try tls.receive(UnsafeRawBufferPointer(rebasing: $0[0..<n]), plain: &plain) })
        } catch {
            return (nil, 0)
        }
        return (plain, n)
    }

    func send(_ message: Message) { send(MessageCodec.frame(message)) }

    /// Reads until the peer closes (or `readTimeoutSeconds` pass without a byte); returns the
    /// bytes and whether it closed.
    func readUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let (bytes, n) = receive(&buffer)
            if let bytes { all += bytes; continue }
            // With SO_RCVTIMEO set, a signal (SIGCHLD from other tests' children) interrupts
            // recv even under SA_RESTART.
            if n < 0 && errno == EINTR { continue }
            return (all, n == 0 || errno == ECONNRESET)
        }
    }

    /// Bytes read past the last frame returned, kept for the next `readMessage`.
    private var decoder = FrameDecoder()

    /// Reads one whole frame (bounded by `readTimeoutSeconds`).
    func readMessage() -> Message? {
        readPayload().flatMap { try? MessageCodec.decode($0) }
    }

    /// Reads one whole frame's payload, not decoded (bounded by `readTimeoutSeconds`).
    func readPayload() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let payload = try? decoder.next() { return payload }
            let (bytes, n) = receive(&buffer)
            if n < 0 && errno == EINTR { continue }
            guard let bytes else { return nil }
            decoder.feed(bytes)
        }
    }
}

@Suite(.serialized) struct BadInputTests {
    /// Every kind of bad input gets an `error` frame and/or a closed connection, and a
    /// well-behaved client of the same scheduler keeps working between each of them.
    @Test func hostileConnectionsAreClosedWhileAGoodClientKeepsWorking() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let tokenFile = "\(harness.dir)/token"
        try "s3cret-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let address = try EndToEndTests.startScheduler(harness, extra: ["--token-file", tokenFile])
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "steady",
                                     "--token-file", tokenFile, "--data-dir", "\(harness.dir)/steady"])
        let port = Int(address.split(separator: ":").last!)!
        let good = try SwarmClient(address: address, token: ClusterToken("s3cret-token"), name: "good")
        for _ in 0..<1_200 where (try good.listNodes()).isEmpty { usleep(25_000) }

        // The scheduler has a token, so TLS: the attacker here holds the TLS key (as a
        // compromised peer would) and sends its bad input inside TLS. (Without the key it
        // does not get past TLS at all: TLSTransportTests, TLSSchedulerTests.)
        let tls = try TLSContext(clientToken: ClusterToken("s3cret-token"), role: .client, name: "raw", files: nil)
        func expectRefused(_ label: String, errorCode: ErrorCode?, _ attack: (RawSocket) -> Void) throws {
            let socket = try RawSocket(port: port, tls: tls)
            attack(socket)
            let (bytes, closed) = socket.readUntilClosed()
            #expect(closed, "\(label): connection was not closed")
            if let errorCode {
                var decoder = FrameDecoder()
                decoder.feed(bytes)
                let messages = ((try? decoder.drain()) ?? []).compactMap { try? MessageCodec.decode($0) }
                let errors = messages.compactMap { if case .error(let e) = $0 { e } else { nil } }
                #expect(errors.first?.code == errorCode, "\(label): got \(messages)")
            }
            // The good client is unaffected.
            let id = try good.submit(TaskSpec(command: ["sh", "-c", "echo \(label.count)"]))
            let done = try good.wait([id], timeoutSeconds: 30)
            #expect(done.first?.state == .succeeded, "\(label): good client's task \(done)")
        }

        try expectRefused("garbage bytes", errorCode: .badFrame) { $0.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) }
        try expectRefused("2 GiB length header", errorCode: .badFrame) { $0.send([0x80, 0x00, 0x00, 0x00]) }
        try expectRefused("zero length", errorCode: .badFrame) { $0.send([0, 0, 0, 0]) }
        // Strangers get small frames only: 1 MiB is fine after the handshake, not before it.
        try expectRefused("1 MiB frame before hello", errorCode: .badFrame) {
            $0.send(Frame.encode([UInt8](repeating: 0x20, count: 1 << 20)))
        }
        try expectRefused("invalid JSON", errorCode: .badMessage) { $0.send(Frame.encode(Array("{not json".utf8))) }
        try expectRefused("JSON without type", errorCode: .badMessage) { $0.send(Frame.encode(Array(#"{"hello":1}"#.utf8))) }
        try expectRefused("unknown type", errorCode: .badMessage) { $0.send(Frame.encode(Array(#"{"type":"launchMissiles"}"#.utf8))) }
        try expectRefused("message before hello", errorCode: .handshakeRequired) {
            $0.send(.listTasks(.init(requestId: 1)))
        }
        try expectRefused("wrong version", errorCode: .versionMismatch) {
            $0.send(.hello(.init(version: 99, role: .client, name: "old", nonce: "n")))
        }
        try expectRefused("wrong token", errorCode: .authFailed) { socket in
            socket.send(.hello(.init(role: .client, name: "mallory", nonce: "abc")))
            guard case .challenge(let challenge)? = socket.readMessage() else {
                Issue.record("no challenge")
                return
            }
            let mac = ClusterToken("guessed").proof(purpose: "peer", nonce: challenge.nonce, role: .client, name: "mallory")
            socket.send(.auth(.init(mac: mac)))
        }
        try expectRefused("replayed server proof", errorCode: .authFailed) { socket in
            socket.send(.hello(.init(role: .worker, name: "mallory", nonce: "abc")))
            _ = socket.readMessage()
            socket.send(.auth(.init(mac: String(repeating: "0", count: 64))))
        }
        try expectRefused("missing field", errorCode: .badMessage) { socket in
            socket.send(Frame.encode(Array(#"{"type":"hello","version":1}"#.utf8)))
        }
        // Half a frame, then hang up: nothing to answer, the scheduler just drops it.
        do {
            let socket = try RawSocket(port: port, tls: tls)
            socket.send([0, 0, 1, 0, 0x7B])
        }
        // The token never travels: the good client still works after all of that.
        let nodes = try good.listNodes()
        #expect(nodes.map(\.name) == ["steady"])
    }
}

/// The scheduler in this process, on its own loop thread.
@Suite struct InProcessSchedulerTests {
    @Test func silentConnectionIsClosedAfterTheHandshakeTimeout() throws {
        var config = SchedulerConfig()
        config.handshakeTimeoutMs = 200
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        let socket = try RawSocket(port: scheduler.port)
        let started = Date()
        let (bytes, closed) = socket.readUntilClosed()
        #expect(closed)
        // At the 200 ms deadline, not the default 10 s one (with a margin for a loaded machine).
        #expect(Date().timeIntervalSince(started) < 9)
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        let message = try decoder.next().map { try MessageCodec.decode($0) }
        guard case .error(let error)? = message else {
            Issue.record("expected an error frame, got \(String(describing: message))")
            return
        }
        #expect(error.code == .handshakeRequired)
    }
}
