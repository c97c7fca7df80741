import CLibUV

/// `uv_idle_t`: a callback run once per loop iteration while started, and while it is started
/// the loop polls without blocking. For work done a slice per iteration (a timer of 0 ms does
/// not do that in libuv 1.44: restarted from its own callback it runs again in the same pass,
/// before any poll). Loop thread only; `close` before dropping it.
public final class UVIdle: UVHandleOwner {
    private let core: HandleCore<uv_idle_t>
    private var callback: (() -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_idle_t())
        let rc = uv_idle_init(loop.raw, core.raw)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    /// Runs `callback` once per loop iteration until `stop`. Restarting replaces the callback.
    public func start(_ callback: @escaping () -> Void) {
        core.loop.preconditionInLoop()
        guard core.isOpen else { return }
        self.callback = callback
        uv_idle_start(core.raw) { handle in
            HandleCore<uv_idle_t>.owner(of: handle, as: UVIdle.self).callback?()
        }
    }

    public func stop() {
        core.loop.preconditionInLoop()
        guard core.isOpen else { return }
        uv_idle_stop(core.raw)
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
extension UVIdle: Sendable {}
