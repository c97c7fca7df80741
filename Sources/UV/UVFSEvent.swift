import CLibUV

/// `uv_fs_event_t`: changes in one directory (inotify on Linux). Events can be merged or
/// dropped by the kernel (a full inotify queue, a file system without inotify such as many
/// network mounts), so a user must still rescan the directory now and then; an event only
/// says "look at this name soon". Loop thread only; `close` before dropping it.
public final class UVFSEvent: UVHandleOwner {
    /// One notification: the entry's name inside the watched directory (nil when libuv could
    /// not say which: look at everything), whether it was a rename (created, deleted, moved
    /// in or out) or a change of content or attributes, or the watch's error.
    public struct Event: Sendable, Equatable {
        public let name: String?
        public let renamed: Bool
        public let changed: Bool
        public let error: UVError?
    }

    private let core: HandleCore<uv_fs_event_t>
    private var callback: ((Event) -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_fs_event_t())
        let rc = uv_fs_event_init(loop.raw, core.raw)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    /// Watches `path` (a directory: events name its entries). Restarting replaces the
    /// callback; a path that cannot be watched throws (e.g. ENOENT, ENOSPC when the user's
    /// inotify watches are used up).
    public func start(path: String, _ callback: @escaping (Event) -> Void) throws(UVError) {
        core.loop.preconditionInLoop()
        guard core.isOpen else { throw UVError.closed }
        self.callback = callback
        try UVError.check(uv_fs_event_start(core.raw, { handle, filename, events, status in
            let owner = HandleCore<uv_fs_event_t>.owner(of: handle, as: UVFSEvent.self)
            let flags = UInt32(bitPattern: events)
            let event = Event(name: filename.map { String(cString: $0) },
                              renamed: flags & UV_RENAME.rawValue != 0,
                              changed: flags & UV_CHANGE.rawValue != 0,
                              error: status < 0 ? UVError(status) : nil)
            owner.callback?(event)
        }, path, 0))
    }

    public func stop() {
        core.loop.preconditionInLoop()
        guard core.isOpen else { return }
        uv_fs_event_stop(core.raw)
    }

    public var isOpen: Bool { core.isOpen }

    /// Idempotent. The callback will not run again.
    public func close(_ onClose: (() -> Void)? = nil) {
        callback = nil
        core.close(onClose)
    }

    func handleDidClose() { core.finishClose() }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVFSEvent: Sendable {}
