import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// The pidfds of a loop's children in one private epoll set, which a single `uv_poll_t`
/// watches; a child's exit wakes the loop through it and is dispatched to its `UVProcess`.
///
/// Why not a `uv_poll_t` per child: libuv checks, invalidates and re-registers a polled
/// descriptor around `uv_poll_init`, `uv_poll_start`, `uv_poll_stop` and `uv_close`: six
/// `epoll_ctl` per child (strace of a worker under `swarm bench spawn`), plus a handle to
/// allocate and close. Here a child costs one `epoll_ctl` to watch and one to stop.
///
/// The poll handle stays started for the loop's life but is referenced only while a child is
/// watched, so it keeps `run()` going exactly as long as a per-child poll did. Created on the
/// loop's first spawn; closed with the loop (`EventLoop.close`). Loop thread only.
final class PidfdWatch: UVHandleOwner {
    private let core: HandleCore<uv_poll_t>
    private let epfd: Int32
    /// Watched children by token (the epoll event's data): a token is never reused, so an
    /// event that arrives for a child already unwatched finds nothing.
    private var watched: [UInt64: UVProcess] = [:]
    private var nextToken: UInt64 = 1
    private var referenced = false

    private init(loop: EventLoop, epfd: Int32) {
        core = HandleCore(loop: loop, zero: uv_poll_t())
        self.epfd = epfd
    }

    var watchedCount: Int { watched.count }
    /// `UVProcess`es spawned and not closed yet, exited or not: a loop closed with any left
    /// reports them as leaks, as it would an open handle.
    var openProcesses = 0

    /// The loop's watch, created on first use.
    static func of(_ loop: EventLoop) throws(UVError) -> PidfdWatch {
        if let watch = loop.pidfdWatch { return watch }
        let epfd = swarm_epoll_create()
        if epfd < 0 { throw UVError(epfd) }
        let watch = PidfdWatch(loop: loop, epfd: epfd)
        let initRC = uv_poll_init(loop.raw, watch.core.raw, epfd)
        if initRC != 0 {
            watch.core.discardUninitialized()
            Glibc.close(epfd)
            throw UVError(initRC)
        }
        watch.core.attach(watch)
        let startRC = uv_poll_start(watch.core.raw, Int32(UV_READABLE.rawValue)) { handle, _, _ in
            HandleCore<uv_poll_t>.owner(of: handle, as: PidfdWatch.self).ready()
        }
        if startRC != 0 {
            watch.close(nil)
            throw UVError(startRC)
        }
        uv_unref(watch.core.handle)
        loop.pidfdWatch = watch
        return watch
    }

    /// Watches `pidfd` for `process`'s exit; returns the token to `unwatch` it with.
    func watch(_ process: UVProcess, pidfd: Int32) throws(UVError) -> UInt64 {
        guard core.isOpen else { throw UVError(-EBADF) }
        let token = nextToken
        nextToken += 1
        let rc = swarm_epoll_add(epfd, pidfd, token)
        if rc != 0 { throw UVError(rc) }
        watched[token] = process
        if !referenced {
            uv_ref(core.handle)
            referenced = true
        }
        return token
    }

    /// Stops watching (before `pidfd` is closed). Idempotent.
    func unwatch(_ token: UInt64, pidfd: Int32) {
        guard watched.removeValue(forKey: token) != nil else { return }
        if core.isOpen { _ = swarm_epoll_del(epfd, pidfd) }
        if watched.isEmpty, referenced {
            uv_unref(core.handle)
            referenced = false
        }
    }

    /// The set is readable: each ready child's process reaps it (which unwatches it).
    private func ready() {
        var tokens = [UInt64](repeating: 0, count: 64)
        let count = tokens.withUnsafeMutableBufferPointer { swarm_epoll_ready(epfd, $0.baseAddress, 64) }
        guard count > 0 else { return }
        for token in tokens.prefix(Int(count)) {
            watched[token]?.pidfdReadable()
        }
    }

    /// Idempotent. Children still watched are no longer (their exits go unreported).
    func close(_ onClose: (() -> Void)?) {
        watched.removeAll()
        core.close(onClose)
    }

    func handleDidClose() {
        Glibc.close(epfd)
        if core.loop.pidfdWatch === self { core.loop.pidfdWatch = nil }
        core.finishClose()
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension PidfdWatch: Sendable {}
