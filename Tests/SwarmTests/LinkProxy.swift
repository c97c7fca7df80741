import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A user-space TCP proxy that plays a network link for multi-host tests (`tc netem` is not
/// available here): it listens on `host:port` and forwards each connection to one target,
/// delaying and pacing each direction (`LinkShaper`), and resetting connections (RST on both
/// sides) on request or after every N bytes a connection carries.
///
/// It runs on a thread of its own with `poll`; given a network namespace, that thread enters
/// it first (`setns`), so every socket of the proxy lives there and the test process's own
/// namespace is untouched. `stop()` (call it before the namespaces are deleted) closes
/// everything and joins the thread, bounded.
final class LinkProxy: @unchecked Sendable {
    /// How the link behaves now; `set` changes it for bytes read from then on.
    struct Settings: Sendable, Equatable {
        /// Client to target ("up") and back ("down"): one-way delay and rate (nil: unlimited).
        var upDelayMs = 0
        var downDelayMs = 0
        var upBytesPerSecond: Int?
        var downBytesPerSecond: Int?
        /// A connection is reset once it has carried this many bytes (both ways); nil: never.
        var resetEveryBytes: Int?

        /// The same delay and rate each way.
        static func slow(delayMs: Int, bytesPerSecond: Int) -> Settings {
            Settings(upDelayMs: delayMs, downDelayMs: delayMs, upBytesPerSecond: bytesPerSecond, downBytesPerSecond: bytesPerSecond)
        }
    }

    /// What went through, for tests to check the link was used as meant.
    struct Stats: Sendable, Equatable {
        var accepted = 0
        /// Connections reset by the proxy (on request, after N bytes, or passing on a peer's reset).
        var resets = 0
        var bytesUp = 0
        var bytesDown = 0
        var open = 0
    }

    /// Shared between the test's thread and the proxy's.
    struct Control {
        var settings: Settings
        var resetRequests = 0
        var resetsHandled = 0
        var stopping = false
        var stats = Stats()
    }

    struct ProxyError: Error, CustomStringConvertible {
        let description: String
    }

    let host: String
    let port: Int
    var address: String { "\(host):\(port)" }
    private let control: Locked<Control>
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the proxy on `listenHost` (port 0: a free one), forwarding to `targetHost:targetPort`,
    /// with its sockets in `namespace` (nil: this process's). Throws when it cannot listen.
    init(namespace: String?, listenHost: String, targetHost: String, targetPort: Int, settings: Settings = Settings()) throws {
        host = listenHost
        control = Locked(Control(settings: settings))
        let ready = DispatchSemaphore(value: 0)
        let started = Locked<Result<(Int32, Int), ProxyError>?>(nil)
        let thread = Thread { [control, finished] in
            let setup = Result { () throws(ProxyError) -> (Int32, Int) in
                if let namespace { try Self.enter(namespace: namespace) }
                return try Self.listen(on: listenHost)
            }
            started.withLock { $0 = setup }
            ready.signal()
            if case .success(let (fd, _)) = setup {
                LinkProxyLoop(listener: fd, targetHost: targetHost, targetPort: targetPort, control: control).run()
            }
            finished.signal()
        }
        thread.name = "LinkProxy"
        thread.start()
        guard ready.wait(timeout: .now() + 10) == .success else { throw ProxyError(description: "the proxy's thread did not start") }
        switch started.withLock({ $0 })! {
        case .success(let (_, port)): self.port = port
        case .failure(let error): throw error
        }
    }

    var settings: Settings { control.withLock { $0.settings } }
    var stats: Stats { control.withLock { $0.stats } }

    func set(_ settings: Settings) {
        control.withLock { $0.settings = settings }
    }

    /// Resets every connection open now (RST to both of its ends); returns once done (bounded).
    func resetNow() {
        let request = control.withLock { $0.resetRequests += 1; return $0.resetRequests }
        for _ in 0..<15_000 where control.withLock({ $0.resetsHandled < request }) { usleep(2_000) }
    }

    /// Closes every connection and the listener, and waits for the thread (bounded: 10 s).
    func stop() {
        control.withLock { $0.stopping = true }
        _ = finished.wait(timeout: .now() + 10)
    }

    // MARK: - Sockets

    /// Moves the calling thread (only it) into the network namespace `ip netns` named.
    private static func enter(namespace: String) throws(ProxyError) {
        let fd = open("/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ProxyError(description: "cannot open namespace \(namespace): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard let setns = Libc.setns else { throw ProxyError(description: "setns(2) not found in libc") }
        let cloneNewNet: Int32 = 0x4000_0000
        guard setns(fd, cloneNewNet) == 0 else {
            throw ProxyError(description: "setns into \(namespace): \(String(cString: strerror(errno)))")
        }
    }

    /// A non-blocking listening socket on `host`, port 0; returns it and its port.
    private static func listen(on host: String) throws(ProxyError) -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ProxyError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = Libc.inetAddress(host, port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ProxyError(description: "cannot listen on \(host): \(reason)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// What Swift's Glibc module does not export (GNU extensions), looked up once.
enum Libc {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    nonisolated(unsafe) static let setns: SetNS? = symbol("setns").map { unsafeBitCast($0, to: SetNS.self) }
    nonisolated(unsafe) static let accept4: Accept4? = symbol("accept4").map { unsafeBitCast($0, to: Accept4.self) }

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        guard let handle = dlopen(nil, RTLD_NOW) else { return nil }
        return dlsym(handle, name)
    }

    /// An IPv4 socket address.
    static func inetAddress(_ host: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    static func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
