import CLibUV

/// `uv_timer_t`. Create and use on the loop thread; `close` before dropping it.
public final class UVTimer: UVHandleOwner {
    private let core: HandleCore<uv_timer_t>
    private var callback: (() -> Void)?

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_timer_t())
        let rc = uv_timer_init(loop.raw, core.raw)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    /// Fires `callback` after `afterMs`, then every `repeatMs` if non-zero. Restarting replaces
    /// the previous schedule and callback. Started for 0 ms from a timer's callback, it fires
    /// after the loop has polled once more: libuv 1.44 (Debian 12's) would run it in the same
    /// pass, before any I/O, so work going on a slice at a time that way (a dependency cascade,
    /// 1,000 ends a turn) held the loop for all its slices (7.8 s for 20,000 ends, unanswered
    /// clients and unread heartbeats included). It waits 1 ms instead: the next iteration.
    public func start(afterMs: UInt64, repeatMs: UInt64 = 0, _ callback: @escaping () -> Void) {
        let loop = core.loop
        loop.preconditionInLoop()
        guard core.isOpen else { return }
        self.callback = callback
        let due = afterMs == 0 && loop.timerCallbacksRunning > 0 ? 1 : afterMs
        uv_timer_start(core.raw, { handle in
            let timer = HandleCore<uv_timer_t>.owner(of: handle, as: UVTimer.self)
            let loop = timer.core.loop
            loop.timerCallbacksRunning += 1
            defer { loop.timerCallbacksRunning -= 1 }
            timer.callback?()
        }, due, repeatMs)
    }

    public func stop() {
        core.loop.preconditionInLoop()
        guard core.isOpen else { return }
        uv_timer_stop(core.raw)
    }

    /// A timer that does not keep its loop alive on its own.
    public func unref() { uv_unref(core.handle) }

    public var isOpen: Bool { core.isOpen }

    /// Idempotent. The callback will not fire again.
    public func close(_ onClose: (() -> Void)? = nil) {
        callback = nil
        core.close(onClose)
    }

    func handleDidClose() { core.finishClose() }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVTimer: Sendable {}
