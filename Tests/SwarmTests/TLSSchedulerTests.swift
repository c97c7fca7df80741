import Foundation
import Testing
@testable import SwarmScheduler
import SwarmClient
import SwarmProtocol
import SwarmTransport
@testable import SwarmUV

/// TLS against a real scheduler (in this process, its own loop thread): a token turns TLS on
/// even on loopback; a client without it, or with another token, is refused with a one-line
/// reason; a man in the middle flipping one byte of an established connection cuts it and
/// its submit never takes effect; a recorded session replayed adds nothing.
@Suite struct TLSSchedulerTests {
    static let token = ClusterToken("tls-scheduler-test-token")

    private func scheduler() -> InProcessScheduler {
        var config = SchedulerConfig()
        config.token = Self.token
        return InProcessScheduler(config)
    }

    private func taskCount(_ address: String) throws -> Int {
        try SwarmClient(address: address, token: Self.token, name: "counter").listTasks().count
    }

    /// A TLS peer that starts a handshake and never finishes it (half a ClientHello, then
    /// nothing) is closed at the handshake deadline, which starts at the accept.
    @Test func aTLSHandshakeNeverFinishedIsClosedAtTheDeadline() throws {
        var config = SchedulerConfig()
        config.token = Self.token
        config.handshakeTimeoutMs = 200
        let s = InProcessScheduler(config)
        defer { #expect(s.stop() == nil) }
        let socket = try RawSocket(port: s.port)
        socket.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
        let started = Date()
        let (bytes, closed) = socket.readUntilClosed()
        #expect(closed)
        // At the 200 ms deadline, not the default 10 s one (with a margin for a loaded machine).
        #expect(Date().timeIntervalSince(started) < 9)
        // Nothing in clear: at most a TLS alert record.
        #expect(bytes.isEmpty || bytes.first == 0x15, "\(bytes.prefix(16))")
    }

    @Test func aTokenMeansTLSAndTheHandshakeStillRuns() throws {
        let s = scheduler()
        defer { #expect(s.stop() == nil) }
        let client = try SwarmClient(address: s.address, token: Self.token)
        let id = try client.submit(TaskSpec(command: ["true"]))
        #expect(!id.isEmpty)
        #expect(client.tlsHandshakeNs != nil)
    }

    @Test func plaintextAndWrongTokenClientsAreRefusedWithAReason() throws {
        let s = scheduler()
        defer { #expect(s.stop() == nil) }
        do {
            _ = try SwarmClient(address: s.address, token: nil).listTasks()
            Issue.record("a plaintext client was served")
        } catch {
            #expect("\(error)".contains("requires TLS"), "\(error)")
        }
        do {
            _ = try SwarmClient(address: s.address, token: ClusterToken("wrong")).listTasks()
            Issue.record("a wrong token was served")
        } catch {
            #expect("\(error)".contains("TLS handshake failed"), "\(error)")
            #expect("\(error)".contains("wrong cluster token"), "\(error)")
        }
        #expect(try taskCount(s.address) == 0)
    }

    @Test func aFlippedByteCutsTheConnectionAndItsSubmitNeverHappens() throws {
        let s = scheduler()
        defer { #expect(s.stop() == nil) }
        let proxy = ThreadProxy(target: s.port)
        defer { proxy.stop() }
        let client = try SwarmClient(address: "127.0.0.1:\(proxy.port)", token: Self.token)
        _ = try client.submit(TaskSpec(id: "good", command: ["true"]))
        proxy.flipNextUpByte()
        do {
            _ = try client.submit(TaskSpec(id: "evil", command: ["true"]))
            Issue.record("a tampered submit was answered")
        } catch {
            #expect("\(error)".contains("connection") || "\(error)".contains("closed"), "\(error)")
        }
        let ids = try SwarmClient(address: s.address, token: Self.token, name: "check").listTasks().map(\.id)
        #expect(ids == ["good"])
        #expect(proxy.flipped == 1)
        let log = s.log.lines.withLock { $0 }
        #expect(log.contains { $0.contains("TLS record rejected") }, "\(log)")
    }

    @Test func aReplayedSessionAddsNothing() throws {
        let s = scheduler()
        defer { #expect(s.stop() == nil) }
        let proxy = ThreadProxy(target: s.port)
        defer { proxy.stop() }
        do {
            let client = try SwarmClient(address: "127.0.0.1:\(proxy.port)", token: Self.token)
            _ = try client.submit(TaskSpec(command: ["true"]))
        }
        #expect(try taskCount(s.address) == 1)
        let recorded = proxy.recordedUp
        #expect(!recorded.isEmpty)
        // The whole client side of the session, sent again on a new connection.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(s.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        _ = recorded.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // The scheduler ends the connection: read until EOF (bounded by a receive timeout).
        var timeout = timeval(tv_sec: RawSocket.readTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<100 where recv(fd, &buffer, buffer.count, 0) > 0 {}
        #expect(try taskCount(s.address) == 1)
    }
}

/// `TamperProxy` on a loop thread of its own, for clients that run their own loop.
final class ThreadProxy: @unchecked Sendable {
    private let thread: EventLoopThread
    private let box = Locked<TamperProxy?>(nil)
    let port: Int

    init(target: Int) {
        let box = box
        thread = EventLoopThread(name: "tls-proxy") { loop in
            box.withLock { $0 = try? TamperProxy(loop: loop, target: target) }
        }
        port = box.withLock { $0?.port ?? 0 }
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (TamperProxy) -> T) -> T? {
        let result = Locked<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        let box = box
        _ = thread.loop.execute {
            if let proxy = box.withLock({ $0 }) { result.withLock { $0 = body(proxy) } }
            done.signal()
        }
        _ = done.wait(timeout: .now() + 10)
        return result.withLock { $0 }
    }

    func flipNextUpByte() { _ = onLoop { $0.flipNextUpByte = true } }
    var flipped: Int { onLoop { $0.flipped } ?? -1 }
    var recordedUp: [UInt8] { onLoop { $0.recordedUp } ?? [] }

    func stop() {
        let box = box
        _ = thread.loop.execute { [thread] in
            box.withLock { proxy in
                for socket in proxy?.sockets ?? [] { socket.close() }
                proxy = nil
            }
            thread.loop.keepAlive(false)
        }
        thread.join()
    }
}
