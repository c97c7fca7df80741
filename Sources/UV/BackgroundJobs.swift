#if canImport(Glibc)
import Glibc
#endif

/// Blocking work (an fsync of a large file) run on its own thread, its result handed back on
/// the loop thread, so the loop never stalls on it. While a job is out the loop stays alive.
/// Create, use and close on the loop thread; a job's `work` runs on another thread and must
/// touch nothing of the loop's.
public final class BackgroundJobs {
    private final class State: @unchecked Sendable {
        let lock = Locked<[() -> Void]>([])
        /// Set under `lock`, so a finishing thread never wakes a handle being closed.
        var closed = false
        var async: UVAsync?
    }
    private let state = State()
    private var outstanding = 0

    public init(loop: EventLoop) throws(UVError) {
        let state = self.state
        let async = try UVAsync(loop: loop) {
            let done = state.lock.withLock { list -> [() -> Void] in defer { list = [] }; return list }
            for finish in done { finish() }
        }
        async.unref()
        state.async = async
    }

    /// Jobs started and not yet finished on the loop.
    public var running: Int { outstanding }

    /// Runs `work` on a new thread, then `then` with its result on the loop thread (not
    /// called if the jobs are closed first).
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T, then: @escaping (T) -> Void) {
        guard let async = state.async else { return }
        outstanding += 1
        if outstanding == 1 { async.ref() }
        let state = self.state
        let finishBox = UnsafeSendable { [weak self] (value: T) in
            guard let self else { return }
            self.outstanding -= 1
            if self.outstanding == 0 { self.state.async?.unref() }
            then(value)
        }
        let job = Job {
            let value = work()
            state.lock.withLock { list in
                guard !state.closed else { return }
                list.append { finishBox.value(value) }
                state.async?.sendFromAnyThread()
            }
        }
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue().work()
            return nil
        }, arg)
        if rc != 0 {
            // No thread: do it here (a stall beats losing the work).
            Unmanaged<Job>.fromOpaque(arg).takeRetainedValue().work()
        } else {
            pthread_detach(tid)
        }
    }

    /// Drops results still to come and closes the handle.
    public func close() {
        state.lock.withLock { _ in state.closed = true }
        state.async?.close()
        state.async = nil
    }
}

private final class Job: @unchecked Sendable {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
}

/// A loop-thread value carried through another thread untouched.
private struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
