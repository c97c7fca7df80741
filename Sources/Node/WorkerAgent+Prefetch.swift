import SwarmProtocol
import SwarmUV

/// Assignments the scheduler sends ahead while every slot here is busy (prefetch, issue 17):
/// held in `held` (`PrefetchHold`, the pure core) and started the moment a slot frees, so a
/// slot's turnover needs no round trip to the scheduler. A held run is not running: no
/// process, no timeout or silence clock (those start at the real spawn, `startTask`), no entry
/// in the journal or the heartbeat's runs. It starts only while the worker is registered, and
/// is dropped when the connection ends: the scheduler keeps it assigned until the worker
/// registers again without it (or is lost), then queues it again, uncharged. One held
/// `config.prefetchHoldMs` without a free slot is handed back (`handBackExpired`).
extension WorkerAgent {
    /// An assignment sent ahead: held (or started now, if a slot is free), or refused.
    func hold(_ task: TaskAssignment) {
        func reject(_ reason: String, permanent: Bool? = nil) {
            connection?.send(.reject(.init(id: task.id, attempt: task.attempt, reason: reason, permanent: permanent)))
        }
        if let problem = task.problem() { return reject(problem, permanent: true) }
        guard !stopping else { return reject("worker is shutting down") }
        if let runner = runners[task.id] {
            if runner.attempt != task.attempt { reject("attempt \(runner.attempt) of this task is still ending here") }
            return
        }
        if let entry = workspace.tasks[task.id] {
            if entry.task.attempt != task.attempt { reject("attempt \(entry.task.attempt) of this task is still ending here") }
            return
        }
        if let refusal = held.hold(task, nowMs: clocks.monotonic()) {
            if held.run(of: task.id)?.attempt != task.attempt { reject(refusal) }
            return
        }
        startHeld()
    }

    /// Hands back what is held `PrefetchHold.maxHoldMs` or longer without a free slot: the
    /// scheduler queues it again, uncharged, and places it where a slot is free. Then arms the
    /// timer for the next one, or stops it when nothing is held.
    func handBackExpired() {
        startHeld()
        for task in held.expired(nowMs: clocks.monotonic()) {
            logger.info("handing back task \(task.id): held \(held.maxHoldMs) ms without a free slot")
            connection?.send(.reject(.init(id: task.id, attempt: task.attempt,
                                           reason: "held \(held.maxHoldMs) ms without a free slot: handed back")))
        }
        armHoldTimer()
    }

    /// The hold timer in step with `held`: armed at the oldest entry's expiry, stopped when
    /// nothing is held (created at the first hold, closed when the worker stops).
    func armHoldTimer() {
        guard let due = held.nextExpiryMs, !stopping else {
            holdTimer?.stop()
            return
        }
        if holdTimer == nil { holdTimer = try? UVTimer(loop: loop) }
        // None (the loop cannot make one): held entries still start when a slot frees.
        guard let holdTimer else { return }
        holdTimer.start(afterMs: UInt64(max(0, due - clocks.monotonic()))) { [weak self] in self?.handBackExpired() }
    }

    /// Starts held assignments, oldest first, while a slot is free. Each goes the way of any
    /// assignment (`startTask`: health, room, preparation), `taskStarted` included.
    func startHeld() {
        while !held.isEmpty, !stopping, var task = held.next(busy: busySlots, slots: config.slots, registered: registered) {
            task.prefetch = nil
            startTask(task)
        }
        armHoldTimer()
    }

    /// A kill of a held run: it never starts; its result says so (`cancelled`).
    func killHeld(_ task: TaskAssignment, reason: String) {
        armHoldTimer()
        var metrics = RunMetrics()
        metrics.node = config.name
        metrics.runtime = task.spec.runtime
        metrics.model = task.spec.model
        finished(unstarted(task, .cancelled, "killed by scheduler before it started (held for a slot): \(reason)", metrics: metrics))
    }

    /// The connection ended: what is held never started, and the scheduler queues it again
    /// once this worker registers without it (or is lost).
    func dropHeld() {
        guard !held.isEmpty else { return }
        let dropped = held.removeAll()
        armHoldTimer()
        logger.notice("dropping \(dropped.count) held assignment(s): the connection to the scheduler ended before a slot freed")
    }

    /// Refuses everything held (the worker stops): the scheduler queues them again at once.
    func refuseHeld(_ reason: String) {
        for task in held.removeAll() {
            connection?.send(.reject(.init(id: task.id, attempt: task.attempt, reason: reason)))
        }
        armHoldTimer()
    }
}
