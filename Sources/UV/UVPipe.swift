import CLibUV

/// `uv_pipe_t`, used for a child process's stdio. Loop thread only; `close` before dropping.
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

    var raw: UnsafeMutablePointer<uv_pipe_t> { core.raw }
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
