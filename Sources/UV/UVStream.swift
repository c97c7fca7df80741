import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// What a stream read delivers. `data` is valid only during the callback: copy what you keep.
public enum StreamReadEvent {
    case data(UnsafeRawBufferPointer)
    case eof
    case error(UVError)
}

/// Read, write and shutdown on a `uv_stream_t` (a TCP socket or a pipe). It is composed into
/// `UVTCP` and `UVPipe`, which own the handle memory and its close lifecycle; this class owns
/// only the callbacks and in-flight requests. Loop thread only.
public final class UVStream {
    private let stream: UnsafeMutablePointer<uv_stream_t>
    unowned let loop: EventLoop
    private var onRead: ((StreamReadEvent) -> Void)?
    private var closed = false
    /// Completions of writes that needed no request, waiting for the next loop iteration.
    private var finished: [FinishedWrite] = []
    /// The last queued write while its callback has not run. Completions of writes that need
    /// no request wait behind it (`WriteContext.followers`): libuv may report it one loop
    /// phase later than `soon` runs (its rest written at once, reported in the next pending
    /// phase, while `soon` runs in this one's idle phase when the write was made in pending).
    private var lastQueued: WriteContext?

    init(stream: UnsafeMutablePointer<uv_stream_t>, loop: EventLoop) {
        self.stream = stream
        self.loop = loop
    }

    /// Starts delivering data; `.eof` or `.error` ends the reading (the callback is dropped).
    public func startReading(_ onRead: @escaping (StreamReadEvent) -> Void) throws(UVError) {
        loop.preconditionInLoop()
        guard !closed else { throw UVError.closed }
        self.onRead = onRead
        try UVError.check(uv_read_start(stream, { handle, _, buf in
            let loop = Unmanaged<EventLoop>.fromOpaque(handle!.pointee.loop.pointee.data).takeUnretainedValue()
            buf!.pointee = uv_buf_init(
                loop.readBuffer.baseAddress!.assumingMemoryBound(to: CChar.self),
                UInt32(loop.readBuffer.count))
        }, { handle, nread, _ in
            let owner = HandleCore<uv_handle_t>.owner(of: handle, as: AnyObject.self)
            (owner as? UVStreamOwner)?.stream.deliver(nread)
        }))
    }

    public func stopReading() {
        loop.preconditionInLoop()
        guard !closed else { return }
        uv_read_stop(stream)
        onRead = nil
    }

    func deliver(_ nread: Int) {
        guard let onRead else { return }
        if nread > 0 {
            onRead(.data(UnsafeRawBufferPointer(start: loop.readBuffer.baseAddress, count: nread)))
        } else if nread < 0 {
            // Reading ends with EOF or an error; drop the callback so nothing fires after it.
            self.onRead = nil
            uv_read_stop(stream)
            onRead(Int32(nread) == UVError.eof.code ? .eof : .error(UVError(Int32(nread))))
        }
    }

    /// Writes `bytes`; `completion` gets nil once they are handed to the kernel, or the error
    /// (e.g. EPIPE for a peer that has gone). Never crashes on a closed peer. The completion
    /// never runs inside this call: when the kernel takes every byte at once (`writeNow`) it
    /// runs on the next loop iteration, before the loop blocks. Completions run in write order
    /// (`write` and queued `writeNow` alike).
    public func write(_ bytes: [UInt8], completion: ((UVError?) -> Void)? = nil) {
        switch writeNow(bytes, completion: completion) {
        case .queued: return
        case .written: if let completion { finishLater(completion, nil) }
        case .failed(let error): if let completion { finishLater(completion, error) }
        }
    }

    /// Hands `bytes` to the kernel now as far as it takes them (`uv_try_write`: no copy, no
    /// request, and no `epoll_ctl` afterwards) and queues the rest behind them. Bytes written
    /// earlier and still queued go first: libuv refuses a try while its queue is not empty.
    /// `completion` runs only for `.queued`, once the queued part is written or has failed;
    /// for `.written` and `.failed` the result is the whole answer.
    public func writeNow(_ bytes: [UInt8], completion: ((UVError?) -> Void)? = nil) -> WriteOutcome {
        loop.preconditionInLoop()
        guard !closed else { return .failed(.closed) }
        guard !bytes.isEmpty else { return .written }
        let sent = bytes.withUnsafeBytes { raw -> Int32 in
            var buf = uv_buf_init(UnsafeMutablePointer(mutating: raw.baseAddress!.assumingMemoryBound(to: CChar.self)),
                                  UInt32(raw.count))
            return uv_try_write(stream, &buf, 1)
        }
        if sent >= 0 && Int(sent) == bytes.count { return .written }
        if sent < 0 && sent != Self.again { return .failed(UVError(sent)) }
        if let error = enqueue(bytes, from: max(0, Int(sent)), completion: completion) { return .failed(error) }
        return .queued
    }

    private static let again = Int32(UV_EAGAIN.rawValue)

    /// `uv_write` of `bytes[offset...]` from a copy; the error when libuv refused it.
    private func enqueue(_ bytes: [UInt8], from offset: Int, completion: ((UVError?) -> Void)?) -> UVError? {
        let count = bytes.count - offset
        let context = WriteContext(stream: self, count: count, completion: completion)
        bytes.withUnsafeBytes { context.storage.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset...])) }
        let req = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        req.initialize(to: uv_write_t())
        req.pointee.data = Unmanaged.passRetained(context).toOpaque()
        var buf = uv_buf_init(context.storage.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(count))
        let rc = uv_write(req, stream, &buf, 1) { req, status in
            let context = Unmanaged<WriteContext>.fromOpaque(req!.pointee.data).takeRetainedValue()
            req!.deinitialize(count: 1)
            req!.deallocate()
            context.stream.reportQueued(context, status < 0 ? UVError(status) : nil)
        }
        guard rc != 0 else {
            lastQueued = context
            return nil
        }
        Unmanaged<WriteContext>.fromOpaque(req.pointee.data).release()
        req.deinitialize(count: 1)
        req.deallocate()
        return UVError(rc)
    }

    private func finishLater(_ completion: @escaping (UVError?) -> Void, _ error: UVError?) {
        if let lastQueued {
            lastQueued.followers.append(FinishedWrite(completion: completion, error: error))
            return
        }
        if finished.isEmpty { loop.soon { [self] in runFinished() } }
        finished.append(FinishedWrite(completion: completion, error: error))
    }

    /// A queued write's callback: the writes that went at once before it report first, then
    /// it, then those made after it while it was pending. A completion that writes again
    /// reports after all of them.
    private func reportQueued(_ context: WriteContext, _ error: UVError?) {
        if lastQueued === context { lastQueued = nil }
        runFinished()
        context.completion?(error)
        let followers = context.followers
        context.followers = []
        for entry in followers { entry.completion(entry.error) }
    }

    private func runFinished() {
        guard !finished.isEmpty else { return }
        let due = finished
        finished = []
        for entry in due { entry.completion(entry.error) }
    }

    /// Bytes queued and not yet written (for back-pressure).
    public var writeQueueSize: Int { closed ? 0 : uv_stream_get_write_queue_size(stream) }

    /// Half-closes the write side after queued writes are flushed.
    public func shutdown(_ completion: ((UVError?) -> Void)? = nil) {
        loop.preconditionInLoop()
        guard !closed else { completion?(UVError.closed); return }
        let req = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        req.initialize(to: uv_shutdown_t())
        let box = CallbackBox(completion)
        req.pointee.data = Unmanaged.passRetained(box).toOpaque()
        let rc = uv_shutdown(req, stream) { req, status in
            let box = Unmanaged<CallbackBox>.fromOpaque(req!.pointee.data).takeRetainedValue()
            req!.deinitialize(count: 1)
            req!.deallocate()
            box.callback?(status < 0 ? UVError(status) : nil)
        }
        if rc != 0 {
            Unmanaged<CallbackBox>.fromOpaque(req.pointee.data).release()
            req.deinitialize(count: 1)
            req.deallocate()
            completion?(UVError(rc))
        }
    }

    /// Called by the owner when it starts closing: later calls fail as values.
    func markClosed() {
        closed = true
        onRead = nil
    }
}

/// Handle classes that carry a `UVStream` (so the read callback can find it).
protocol UVStreamOwner: UVHandleOwner {
    var stream: UVStream { get }
}

/// What `UVStream.writeNow` did with the bytes.
public enum WriteOutcome: Equatable, Sendable {
    /// The kernel took every byte now; no completion will run.
    case written
    /// Some bytes wait in the stream's queue; the completion runs once they are written.
    case queued
    /// Nothing (more) was written: a closed stream, a peer that has gone. No completion runs.
    case failed(UVError)
}

private struct FinishedWrite {
    let completion: (UVError?) -> Void
    let error: UVError?
}

private final class WriteContext {
    let stream: UVStream
    let storage: UnsafeMutableRawBufferPointer
    let completion: ((UVError?) -> Void)?
    /// Completions of later writes that needed no request (`UVStream.lastQueued`).
    var followers: [FinishedWrite] = []
    init(stream: UVStream, count: Int, completion: ((UVError?) -> Void)?) {
        self.stream = stream
        storage = .allocate(byteCount: max(count, 1), alignment: 1)
        self.completion = completion
    }
    deinit { storage.deallocate() }
}

private final class CallbackBox {
    let callback: ((UVError?) -> Void)?
    init(_ callback: ((UVError?) -> Void)?) { self.callback = callback }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVStream: Sendable {}
