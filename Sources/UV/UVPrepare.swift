import CLibUV

/// `uv_prepare_t`: a callback run once per loop iteration, after the timers and right before
/// the loop polls for I/O. Used to flush work gathered during an iteration (coalesced socket
/// writes) before the loop may block. Loop thread only; `close` before dropping it.
public final class UVPrepare: UVHandleOwner {
    private let core: HandleCore<uv_prepare_t>
    private var callback: (() -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_prepare_t())
        let rc = uv_prepare_init(loop.raw, core.raw)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    /// Runs `callback` before every poll until `stop`. Restarting replaces the callback.
    public func start(_ callback: @escaping () -> Void) {
        core.loop.preconditionInLoop()
        guard core.isOpen else { return }
        self.callback = callback
        uv_prepare_start(core.raw) { handle in
            HandleCore<uv_prepare_t>.owner(of: handle, as: UVPrepare.self).callback?()
        }
    }

    public func stop() {
        core.loop.preconditionInLoop()
        guard core.isOpen else { return }
        uv_prepare_stop(core.raw)
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
extension UVPrepare: Sendable {}
