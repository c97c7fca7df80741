import CLibUV

/// `uv_async_t`: the one handle whose `send` may be called from any thread.
/// Create, close and (un)ref it on the loop thread.
public final class UVAsync: UVHandleOwner {
    private let core: HandleCore<uv_async_t>
    private var callback: (() -> Void)?

    public init(loop: EventLoop, _ callback: @escaping () -> Void) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_async_t())
        let rc = uv_async_init(loop.raw, core.raw) { handle in
            HandleCore<uv_async_t>.owner(of: handle, as: UVAsync.self).callback?()
        }
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        self.callback = callback
        core.attach(self)
    }

    /// Wakes the loop; coalesced with other sends not yet seen. Any thread.
    public func sendFromAnyThread() {
        // The caller guarantees the handle is not yet closed (EventLoop sends under its lock).
        uv_async_send(core.raw)
    }

    public func ref() { uv_ref(core.handle) }
    public func unref() { uv_unref(core.handle) }

    public func close(_ onClose: (() -> Void)? = nil) {
        callback = nil
        core.close(onClose)
    }

    func handleDidClose() { core.finishClose() }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVAsync: Sendable {}
