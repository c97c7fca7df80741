import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// `uv_tcp_t`: a listening or connected TCP socket. Loop thread only; `close` before dropping.
public final class UVTCP: UVStreamOwner {
    private let core: HandleCore<uv_tcp_t>
    public let stream: UVStream
    private var onConnection: ((UVError?) -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_tcp_t())
        stream = UVStream(stream: swarm_stream(core.raw), loop: loop)
        let rc = uv_tcp_init(loop.raw, core.raw)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    public var loop: EventLoop { core.loop }
    public var isOpen: Bool { core.isOpen }

    public func bind(_ address: SocketAddress) throws(UVError) {
        try UVError.check(address.withSockaddr { uv_tcp_bind(core.raw, $0, 0) })
    }

    /// Starts listening; `onConnection` fires for each pending connection (call `accept`).
    public func listen(backlog: Int32 = 511, _ onConnection: @escaping (UVError?) -> Void) throws(UVError) {
        core.loop.preconditionInLoop()
        self.onConnection = onConnection
        try UVError.check(uv_listen(swarm_stream(core.raw), backlog) { server, status in
            HandleCore<uv_tcp_t>.owner(of: server, as: UVTCP.self)
                .onConnection?(status < 0 ? UVError(status) : nil)
        })
    }

    /// Accepts one pending connection into a new handle.
    public func accept() throws(UVError) -> UVTCP {
        let client = try UVTCP(loop: core.loop)
        let rc = uv_accept(swarm_stream(core.raw), swarm_stream(client.core.raw))
        if rc != 0 { client.close(); throw UVError(rc) }
        return client
    }

    /// Connects to a numeric address.
    public func connect(_ address: SocketAddress, _ completion: @escaping (UVError?) -> Void) {
        core.loop.preconditionInLoop()
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        req.initialize(to: uv_connect_t())
        req.pointee.data = Unmanaged.passRetained(ConnectBox(completion)).toOpaque()
        let rc = address.withSockaddr { addr in
            uv_tcp_connect(req, core.raw, addr) { req, status in
                let box = Unmanaged<ConnectBox>.fromOpaque(req!.pointee.data).takeRetainedValue()
                req!.deinitialize(count: 1)
                req!.deallocate()
                box.callback(status < 0 ? UVError(status) : nil)
            }
        }
        if rc != 0 {
            Unmanaged<ConnectBox>.fromOpaque(req.pointee.data).release()
            req.deinitialize(count: 1)
            req.deallocate()
            completion(UVError(rc))
        }
    }

    /// Connects to a host name or numeric address, resolving names without blocking the loop.
    public func connect(host: String, port: Int, _ completion: @escaping (UVError?) -> Void) {
        if let address = try? SocketAddress(host: host, port: port) {
            connect(address, completion)
            return
        }
        Resolver.resolve(loop: core.loop, host: host, port: port) { [weak self] result in
            guard let self, self.isOpen else { completion(UVError.canceled); return }
            switch result {
            case .success(let address): self.connect(address, completion)
            case .failure(let error): completion(error)
            }
        }
    }

    public func setNoDelay(_ on: Bool) { uv_tcp_nodelay(core.raw, on ? 1 : 0) }

    /// `TCP_USER_TIMEOUT`: once data sent on the connection has gone unacknowledged for `ms`,
    /// the kernel ends it (reads and writes fail with `ETIMEDOUT`) instead of retransmitting
    /// for ~15 minutes with ever longer gaps. Nothing changes while the peer acknowledges, however
    /// slowly. 0: the kernel's default. For a socket that exists (connecting or connected);
    /// returns whether the option was set.
    @discardableResult
    public func setUserTimeout(ms: UInt32) -> Bool {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(core.handle, &fd) == 0 else { return false }
        var value = ms
        return setsockopt(fd, Int32(IPPROTO_TCP), Self.tcpUserTimeout, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0
    }

    /// The `TCP_USER_TIMEOUT` in force, in ms (nil: no socket).
    public var userTimeoutMs: UInt32? {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(core.handle, &fd) == 0 else { return nil }
        var value: UInt32 = 0
        var length = socklen_t(MemoryLayout<UInt32>.size)
        return getsockopt(fd, Int32(IPPROTO_TCP), Self.tcpUserTimeout, &value, &length) == 0 ? value : nil
    }

    /// TCP keepalive: once the connection has carried nothing for `idleSeconds`, the kernel
    /// probes the peer every `intervalSeconds` and ends the connection (reads fail with
    /// `ETIMEDOUT`) after `probes` probes go unanswered. A peer whose process is stopped or
    /// busy still answers (its kernel does); a host that is gone, or a path cut silently, does
    /// not. For a socket that exists; returns whether every option was set.
    @discardableResult
    public func setKeepAlive(idleSeconds: Int32, intervalSeconds: Int32, probes: Int32) -> Bool {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(core.handle, &fd) == 0 else { return false }
        let tcp = Int32(IPPROTO_TCP)
        return [(SOL_SOCKET, SO_KEEPALIVE, 1), (tcp, Self.tcpKeepIdle, idleSeconds),
                (tcp, Self.tcpKeepInterval, intervalSeconds), (tcp, Self.tcpKeepCount, probes)].allSatisfy { level, name, value in
            var value = value
            return setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
        }
    }

    /// The keepalive in force (`setKeepAlive`): nil when off or there is no socket.
    public var keepAlive: (idleSeconds: Int32, intervalSeconds: Int32, probes: Int32)? {
        var fd: uv_os_fd_t = -1
        guard uv_fileno(core.handle, &fd) == 0 else { return nil }
        func get(_ level: Int32, _ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
        }
        let tcp = Int32(IPPROTO_TCP)
        guard get(SOL_SOCKET, SO_KEEPALIVE) == 1, let idle = get(tcp, Self.tcpKeepIdle),
              let interval = get(tcp, Self.tcpKeepInterval), let probes = get(tcp, Self.tcpKeepCount) else { return nil }
        return (idle, interval, probes)
    }

    /// Sets `SO_SNDBUF` / `SO_RCVBUF` (the kernel doubles the value). Tests use a small send
    /// buffer to make the kernel take a write in parts.
    func setBufferSizes(send: Int32?, receive: Int32?) throws(UVError) {
        if var value = send { try UVError.check(uv_send_buffer_size(core.handle, &value)) }
        if var value = receive { try UVError.check(uv_recv_buffer_size(core.handle, &value)) }
    }

    /// From <linux/tcp.h> (Swift's Glibc module does not carry it).
    private static let tcpUserTimeout: Int32 = 18
    private static let tcpKeepIdle: Int32 = 4, tcpKeepInterval: Int32 = 5, tcpKeepCount: Int32 = 6

    public func localAddress() throws(UVError) -> SocketAddress { try address(uv_tcp_getsockname) }

    public func peerAddress() throws(UVError) -> SocketAddress { try address(uv_tcp_getpeername) }

    private func address(
        _ get: (UnsafePointer<uv_tcp_t>?, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<Int32>?) -> Int32
    ) throws(UVError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutableBytes(of: &storage) { raw in
            get(core.raw, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len)
        }
        try UVError.check(rc)
        return SocketAddress(storage: storage)
    }

    /// Closes with a reset (what `uv_tcp_close_reset` does: `SO_LINGER` 0, then close): the
    /// kernel drops what it still holds to send, and answers the peer's next segment with RST.
    /// For a peer declared gone: bytes queued to it while it was unreachable must never reach
    /// it later. Idempotent; a handle already closing just closes.
    public func closeReset(_ onClose: (() -> Void)? = nil) {
        if core.isOpen {
            var fd: uv_os_fd_t = -1
            if uv_fileno(core.handle, &fd) == 0 {
                var option = linger(l_onoff: 1, l_linger: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
            }
        }
        close(onClose)
    }

    /// Idempotent. Pending writes complete with `ECANCELED`.
    public func close(_ onClose: (() -> Void)? = nil) {
        onConnection = nil
        stream.markClosed()
        core.close(onClose)
    }

    func handleDidClose() { core.finishClose() }
}

private final class ConnectBox {
    let callback: (UVError?) -> Void
    init(_ callback: @escaping (UVError?) -> Void) { self.callback = callback }
}

/// Name resolution through libuv's thread pool (`uv_getaddrinfo`).
enum Resolver {
    private final class Box {
        let callback: (Result<SocketAddress, UVError>) -> Void
        init(_ callback: @escaping (Result<SocketAddress, UVError>) -> Void) { self.callback = callback }
    }

    static func resolve(loop: EventLoop, host: String, port: Int,
                        _ callback: @escaping (Result<SocketAddress, UVError>) -> Void) {
        let req = UnsafeMutablePointer<uv_getaddrinfo_t>.allocate(capacity: 1)
        req.initialize(to: uv_getaddrinfo_t())
        req.pointee.data = Unmanaged.passRetained(Box(callback)).toOpaque()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let rc = uv_getaddrinfo(loop.raw, req, { req, status, res in
            let box = Unmanaged<Box>.fromOpaque(req!.pointee.data).takeRetainedValue()
            req!.deinitialize(count: 1)
            req!.deallocate()
            defer { if let res { uv_freeaddrinfo(res) } }
            guard status == 0, let res, let addr = res.pointee.ai_addr else {
                box.callback(.failure(UVError(status == 0 ? UVError.notFound.code : status)))
                return
            }
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: Int(res.pointee.ai_addrlen)))
            }
            box.callback(.success(SocketAddress(storage: storage)))
        }, host, String(port), &hints)
        if rc != 0 {
            let box = Unmanaged<Box>.fromOpaque(req.pointee.data).takeRetainedValue()
            req.deinitialize(count: 1)
            req.deallocate()
            box.callback(.failure(UVError(rc)))
        }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVTCP: Sendable {}
