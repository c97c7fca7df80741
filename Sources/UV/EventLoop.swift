import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// A libuv loop confined to one thread.
///
/// Every handle is created and used on the loop's thread (checked by `preconditionInLoop`,
/// which Swift 6 cannot check for us across C callbacks). The only cross-thread entry is
/// `execute(_:)`, which queues work under a lock and wakes the loop through its async handle.
public final class EventLoop: @unchecked Sendable {
    let raw: UnsafeMutablePointer<uv_loop_t>
    private let owningThread: pthread_t
    private let pending = Locked<PendingWork>(PendingWork())
    // Set once in init, before the loop is visible to other threads; never reassigned.
    private var wakeup: UVAsync!
    /// Work queued by `soon` from the loop thread itself, run by `nextTurn`.
    private var local: [() -> Void] = []
    // Set once in init; started only while `local` holds work (an active idle handle also
    // keeps the loop from blocking in its poll meanwhile).
    private var nextTurn: UVIdle!
    private var runLocalJob: (() -> Void)!
    /// The children's exit watch (`UVProcess`), made at the first spawn, closed with the loop.
    var pidfdWatch: PidfdWatch?
    /// Handles initialised and not yet closed (the loop's own two included: wake-up and `soon`;
    /// and after the first spawn its children's exit watch, `PidfdWatch`).
    public private(set) var liveHandles = 0
    /// Timer callbacks running now (nested: a callback that runs the loop). `UVTimer.start`
    /// reads it: see there why.
    var timerCallbacksRunning = 0
    /// Scratch space for reads: libuv hands it back in the read callback, which copies out.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    private struct PendingWork {
        var jobs: [@Sendable () -> Void] = []
        var finished = false
    }

    /// Creates a loop owned by the calling thread.
    public init() {
        Self.ignoreSigpipe
        Self.unblockSigchld()
        raw = .allocate(capacity: 1)
        raw.initialize(to: uv_loop_t())
        let rc = uv_loop_init(raw)
        precondition(rc == 0, "uv_loop_init failed: \(UVError(rc))")
        owningThread = pthread_self()
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let async = try! UVAsync(loop: self) { [unowned self] in self.drain() }
        async.unref()
        wakeup = async
        nextTurn = try! UVIdle(loop: self)
        runLocalJob = { [unowned self] in self.runLocal() }
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Unblocks every signal for the calling thread (and threads it creates later). Call
    /// first thing in a process whose parent may have handed it a blocked mask.
    public static func resetSignalMask() {
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
    }

    /// Child exits are watched through pidfds (`UVProcess`), not SIGCHLD; still, a blocked
    /// SIGCHLD would surprise anything else that waits for one on a loop thread.
    private static func unblockSigchld() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// A write to a peer that has gone must be an error value, never a process kill.
    private static let ignoreSigpipe: Void = { signal(SIGPIPE, SIG_IGN); return () }()

    /// True on the loop's own thread.
    public var inLoop: Bool { pthread_equal(pthread_self(), owningThread) != 0 }

    /// Stops the process when called off the loop's thread.
    public func preconditionInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inLoop, "libuv handle used off its loop's thread", file: file, line: line)
    }

    /// The loop's cached time in milliseconds (updated once per loop iteration).
    public var nowMs: UInt64 { uv_now(raw) }

    /// Refreshes the cached time, after blocking work outside a loop iteration (e.g. before
    /// `run`), so timers started next count from now. Call on the loop thread.
    public func updateTime() { uv_update_time(raw) }

    /// Runs until no referenced handle is left. Call on the loop thread.
    public func run() {
        preconditionInLoop()
        uv_run(raw, UV_RUN_DEFAULT)
    }

    /// Runs one iteration, blocking until something happens. Call on the loop thread.
    @discardableResult
    public func runOnce() -> Bool {
        preconditionInLoop()
        return uv_run(raw, UV_RUN_ONCE) != 0
    }

    /// Runs one iteration without blocking (for tests and shutdown). Call on the loop thread.
    @discardableResult
    public func runNoWait() -> Bool {
        preconditionInLoop()
        return uv_run(raw, UV_RUN_NOWAIT) != 0
    }

    /// While true the loop keeps running even with nothing else to do, waiting for `execute`.
    /// Call on the loop thread.
    public func keepAlive(_ on: Bool) {
        preconditionInLoop()
        if on { wakeup.ref() } else { wakeup.unref() }
    }

    /// Queues `work` to run on the loop thread. Safe from any thread. Returns false (and drops
    /// the work) when the loop has been closed.
    @discardableResult
    public func execute(_ work: @escaping @Sendable () -> Void) -> Bool {
        // Sending under the lock: `close()` marks the queue finished under the same lock before
        // it closes the async handle, so a send never races with the handle's release.
        pending.withLock { state -> Bool in
            guard !state.finished else { return false }
            state.jobs.append(work)
            wakeup.sendFromAnyThread()
            return true
        }
    }

    /// Runs `work` on the next iteration of this loop (after the current callbacks, before the
    /// loop blocks in its next poll: it polls without waiting while work is queued). Work
    /// queued by such work runs one iteration later. Call on the loop thread; unlike
    /// `execute`, `work` need not be Sendable. No system call: an idle handle, not a wake-up.
    public func soon(_ work: @escaping () -> Void) {
        preconditionInLoop()
        if local.isEmpty { nextTurn.start(runLocalJob) }
        local.append(work)
    }

    private func runLocal() {
        let jobs = local
        local = []
        nextTurn.stop()
        for job in jobs { job() }
    }

    private func drain() {
        while true {
            let jobs = pending.withLock { state -> [@Sendable () -> Void] in
                defer { state.jobs.removeAll(keepingCapacity: true) }
                return state.jobs
            }
            if jobs.isEmpty { return }
            for job in jobs { job() }
        }
    }

    func handleOpened() { liveHandles += 1 }
    func handleClosed() { liveHandles -= 1 }

    /// Names of the handles libuv still knows (for leak reports).
    public func openHandleDescriptions() -> [String] {
        preconditionInLoop()
        final class Names { var list: [String] = [] }
        let names = Names()
        withExtendedLifetime(names) {
            uv_walk(raw, { handle, arg in
                guard let handle, let arg else { return }
                let names = Unmanaged<Names>.fromOpaque(arg).takeUnretainedValue()
                let kind = String(cString: uv_handle_type_name(handle.pointee.type))
                names.list.append(kind + (uv_is_closing(handle) != 0 ? " (closing)" : ""))
            }, Unmanaged.passUnretained(names).toOpaque())
        }
        return names.list
    }

    /// Runs the queued work, closes the wake-up handle and the loop. Throws `UVError.busy` with
    /// the names of leaked handles when any handle besides the wake-up one is still open, or a
    /// `UVProcess` was never closed ("process"; the loop is closed all the same then).
    /// Call on the loop thread after `run()` returned.
    public func close() throws(LoopCloseError) {
        preconditionInLoop()
        // Work that queues more work is bounded here: a leak is reported, not spun on.
        for _ in 0..<100 where !local.isEmpty { runLocal() }
        drain()
        pending.withLock { $0.finished = true }
        let leakedProcesses = pidfdWatch?.openProcesses ?? 0
        var ownClosed = 0, own = 2
        wakeup.close { ownClosed += 1 }
        nextTurn.close { ownClosed += 1 }
        if let pidfdWatch {
            own += 1
            pidfdWatch.close { ownClosed += 1 }
        }
        // Close callbacks run within one iteration; never spin on other live handles (a
        // leaked timer would keep NOWAIT runs returning "alive" until it fires).
        for _ in 0..<100 where ownClosed < own { uv_run(raw, UV_RUN_NOWAIT) }
        let rc = uv_loop_close(raw)
        if rc != 0 {
            throw LoopCloseError(error: UVError(rc), openHandles: openHandleDescriptions())
        }
        raw.deinitialize(count: 1)
        raw.deallocate()
        if leakedProcesses > 0 {
            throw LoopCloseError(error: .busy, openHandles: Array(repeating: "process", count: leakedProcesses))
        }
    }
}

/// `EventLoop.close()` found handles still open: a leak in the code that ran on the loop.
public struct LoopCloseError: Error, CustomStringConvertible {
    public let error: UVError
    public let openHandles: [String]
    public var description: String { "loop not closed (\(error)): open handles \(openHandles)" }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}
