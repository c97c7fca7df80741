import CLibUV

/// `uv_pipe_t`, used for a child process's stdio: created unopened, `UVProcess.spawn` opens it
/// on its end of a pipe it creates. Loop thread only; `close` before dropping.
public final class UVPipe: UVStreamOwner {
    private let core: HandleCore<uv_pipe_t>
    public let stream: UVStream

    public init(loop: EventLoop) throws(UVError) {
        core = HandleCore(loop: loop, zero: uv_pipe_t())
        stream = UVStream(stream: swarm_stream(core.raw), loop: loop)
        let rc = uv_pipe_init(loop.raw, core.raw, 0)
        if rc != 0 { core.discardUninitialized(); throw UVError(rc) }
        core.attach(self)
    }

    /// Takes `fd` over (made non-blocking; closed with the handle).
    func open(_ fd: Int32) throws(UVError) {
        guard core.isOpen else { throw UVError.closed }
        try UVError.check(uv_pipe_open(core.raw, fd))
    }
    public var isOpen: Bool { core.isOpen }

    /// Idempotent.
    public func close(_ onClose: (() -> Void)? = nil) {
        stream.markClosed()
        core.close(onClose)
    }

    func handleDidClose() { core.finishClose() }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVPipe: Sendable {}
