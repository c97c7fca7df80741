import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The multi-host tests' link (`LinkShaper`, `LinkProxy`): pure pacing with a fake clock, and
/// the proxy itself on loopback (it needs no namespace), so a link that does not delay, pace
/// or reset as told cannot make those tests pass for the wrong reason.
struct LinkProxyTests {
    static let ms: UInt64 = 1_000_000

    @Test func aChunkComesOutAfterItsDelayOnceTheBytesBeforeItAreSent() {
        var link = LinkShaper(delayMs: 50, bytesPerSecond: 1_000_000)
        // 10,000 bytes at 1 MB/s: 10 ms on the wire, then 50 ms of travel.
        #expect(link.release(count: 10_000, nowNs: 0) == 60 * Self.ms)
        // Handed over while the first is still being sent: it waits its turn.
        #expect(link.release(count: 10_000, nowNs: 5 * Self.ms) == 70 * Self.ms)
        // After a quiet moment the link is free again.
        #expect(link.release(count: 1_000, nowNs: 100 * Self.ms) == 151 * Self.ms)
    }

    @Test func withoutARateOnlyTheDelayCountsAndReshapingKeepsWhatIsOnTheLink() {
        var link = LinkShaper(delayMs: 20)
        #expect(link.release(count: 1 << 20, nowNs: 7 * Self.ms) == 27 * Self.ms)
        var paced = LinkShaper(bytesPerSecond: 1_000)
        #expect(paced.release(count: 500, nowNs: 0) == 500 * Self.ms)
        paced.reshape(delayMs: 0, bytesPerSecond: nil)
        #expect(paced.release(count: 500, nowNs: 0) == 500 * Self.ms)
    }

    @Test func onLoopbackTheProxyDelaysEachWayPacesAndResetsOnRequest() throws {
        let server = try Self.listen()
        defer { close(server.fd) }
        let proxy = try LinkProxy(namespace: nil, listenHost: "127.0.0.1", targetHost: "127.0.0.1", targetPort: server.port,
                                  settings: LinkProxy.Settings(upDelayMs: 60, downDelayMs: 40, downBytesPerSecond: 512 * 1024))
        defer { proxy.stop() }
        let client = try Self.connect(proxy.port)
        defer { close(client) }
        let accepted = Self.accept(server.fd)
        try #require(accepted >= 0, "the proxy did not connect to its target")
        defer { close(accepted) }
        Self.bound(accepted)

        var start = Date()
        #expect(Self.send(client, [UInt8]("ping".utf8)) == 4)
        #expect(Self.receive(accepted, 4) == [UInt8]("ping".utf8))
        #expect(Date().timeIntervalSince(start) >= 0.06)
        start = Date()
        #expect(Self.send(accepted, [UInt8]("pong".utf8)) == 4)
        #expect(Self.receive(client, 4) == [UInt8]("pong".utf8))
        #expect(Date().timeIntervalSince(start) >= 0.04)
        // 256 KiB at 512 KiB/s: at least half a second less the first chunk's share.
        let bulk = [UInt8](repeating: 7, count: 256 * 1024)
        start = Date()
        let sender = Thread { _ = Self.send(accepted, bulk) }
        sender.start()
        #expect(Self.receive(client, bulk.count)?.count == bulk.count)
        #expect(Date().timeIntervalSince(start) >= 0.4)

        proxy.resetNow()
        var byte: UInt8 = 0
        #expect(Self.recv(client, &byte, 1) == -1 && errno == ECONNRESET)
        #expect(Self.recv(accepted, &byte, 1) == -1 && errno == ECONNRESET)
        #expect(proxy.stats.resets == 1 && proxy.stats.accepted == 1)
    }

    @Test func onLoopbackTheProxyResetsAConnectionAfterEveryNBytes() throws {
        let server = try Self.listen()
        defer { close(server.fd) }
        let proxy = try LinkProxy(namespace: nil, listenHost: "127.0.0.1", targetHost: "127.0.0.1", targetPort: server.port,
                                  settings: LinkProxy.Settings(resetEveryBytes: 64 * 1024))
        defer { proxy.stop() }
        let client = try Self.connect(proxy.port)
        defer { close(client) }
        let accepted = Self.accept(server.fd)
        try #require(accepted >= 0)
        defer { close(accepted) }
        Self.bound(accepted)
        let sender = Thread { _ = Self.send(client, [UInt8](repeating: 1, count: 1 << 20)) }
        sender.start()
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = Self.recv(accepted, &buffer, buffer.count)
            if n <= 0 {
                #expect(n == -1 && errno == ECONNRESET)
                break
            }
            received += n
        }
        #expect(received < 64 * 1024, "\(received) bytes passed a link that resets every 64 KiB")
        // The proxy's thread publishes its counts on its next turn (within ~20 ms).
        for _ in 0..<7_500 where proxy.stats.resets == 0 { usleep(4_000) }
        #expect(proxy.stats.resets == 1)
    }

    // MARK: - Plain blocking sockets, bounded by receive timeouts

    static func listen() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = Libc.inetAddress("127.0.0.1", port: 0)
        let didBind = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(didBind == 0 && Glibc.listen(fd, 8) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        bound(fd)
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = Libc.inetAddress("127.0.0.1", port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        bound(fd)
        return fd
    }

    /// Reads and accepts give up after 10 s: a broken proxy fails the test instead of hanging it.
    static func bound(_ fd: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends everything (or until an error); returns the bytes sent.
    @discardableResult
    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Int {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }

    /// `accept(2)`, again when a signal interrupts it.
    static func accept(_ fd: Int32) -> Int32 {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 || errno != EINTR { return client }
        }
    }

    /// `recv(2)`, again when a signal interrupts it (with a receive timeout set, the kernel does
    /// not restart it, and other tests' children end all the time).
    static func recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        while true {
            let n = Glibc.recv(fd, buffer, count, 0)
            if n >= 0 || errno != EINTR { return n }
        }
    }

    /// Exactly `count` bytes, or nil on an error, end or timeout first.
    static func receive(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { Self.recv(fd, $0.baseAddress! + got, count - got) }
            if n <= 0 { return nil }
            got += n
        }
        return bytes
    }
}
