import CLibUV

/// `uv_signal_t`: a process signal delivered on the loop thread.
public final class UVSignal: UVHandleOwner {
    private let core: HandleCore<uv_signal_t>
    private var callback: ((Int32) -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_signal_t())
        let rc = uv_signal_init(loop.raw, core.raw)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    public func start(signal: Int32, _ callback: @escaping (Int32) -> Void) throws(UVError) {
        core.loop.preconditionInLoop()
        self.callback = callback
        try UVError.check(uv_signal_start(core.raw, { handle, signum in
            HandleCore<uv_signal_t>.owner(of: handle, as: UVSignal.self).callback?(signum)
        }, signal))
    }

    /// A signal watcher that does not keep its loop alive on its own.
    public func unref() { uv_unref(core.handle) }

    public func close(_ onClose: (() -> Void)? = nil) {
        callback = nil
        core.close(onClose)
    }

    func handleDidClose() { core.finishClose() }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVSignal: Sendable {}
