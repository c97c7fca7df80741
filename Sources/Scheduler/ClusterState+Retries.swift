import SwarmProtocol

/// What a task has used of its retries and node-loss budget, and the backoff it waits out.
/// Saved with the task (the store's `retry` column), so a restarted scheduler goes on with it.
public struct RetryState: Codable, Equatable, Sendable {
    /// Retries made (`--retries` counts these).
    public var used = 0
    /// Runs lost to worker trouble (lost, left, restarted without it, health): the node-loss
    /// budget, `SchedulerSettings.maxAttempts`, counts these. Starts again at 0 when a run
    /// given up as `lost` or `health_failed` is retried (`retryOn` naming them).
    public var losses = 0
    /// Set while the task waits out its backoff (it is `queued`, out of the placement queue).
    public var backoff: Backoff?
    /// The node its last run failed on, until its retry is placed: placement prefers another.
    public var avoidNode: String?

    public struct Backoff: Codable, Equatable, Sendable {
        /// The whole wait, in ms. Only the length is kept: a restarted scheduler waits it
        /// whole again, from its first placement round (no monotonic time is ever saved).
        public var delayMs: Int64
        /// How the run before it ended, and where.
        public var after: TaskState
        public var node: String?

        public init(delayMs: Int64, after: TaskState, node: String?) {
            self.delayMs = delayMs
            self.after = after
            self.node = node
        }
    }

    public init(used: Int = 0, losses: Int = 0, backoff: Backoff? = nil, avoidNode: String? = nil) {
        self.used = used
        self.losses = losses
        self.backoff = backoff
        self.avoidNode = avoidNode
    }
}

/// Retries (issue 13): a run that ends in a state its spec retries on, while retries are left,
/// sends the task back to `queued` to wait out a backoff (`RetryPolicy`), then into the
/// placement queue at its old place (its submission order), preferring another node.
extension ClusterState {
    /// After a run of `id` ended `state` on `node` (the record already says so): whether the
    /// task is retried. If so it is `queued`, waiting out its backoff, which the next
    /// `schedule` starts; if not, nothing changes (the caller ends it).
    mutating func retry(_ id: String, after state: TaskState, on node: String?) -> Bool {
        guard var record = tasks[id], !record.cancelRequested, record.info.state == state else { return false }
        let policy = RetryPolicy(record.spec)
        guard policy.retries(state, used: record.retry.used) else { return false }
        record.retry.used += 1
        let delay = policy.backoffMs(retry: record.retry.used, unit: jitter.unit())
        record.retry.backoff = RetryState.Backoff(delayMs: delay, after: state, node: node)
        record.retry.avoidNode = node
        if state == .lost || state == .healthFailed { record.retry.losses = 0 }
        let attempt = record.info.attempts
        record.info.state = .queued
        record.info.reason = "retry \(record.retry.used) of \(policy.retries): attempt \(attempt) ended \(state.rawValue)\(node.map { " on \($0)" } ?? "")"
        // The run's own figures are in its `runs` entry; the task shows the next run's.
        record.info.node = nil
        record.info.exitCode = nil
        record.info.signal = nil
        record.info.startedAt = nil
        record.info.finishedAt = nil
        tasks[id] = record
        backoffs.add(id, delayMs: delay)
        if let node { avoiding[id] = node }
        return true
    }

    /// Starts the backoffs added since the last round (from `nowMs`) and puts the tasks whose
    /// backoff has ended back into the placement queue. O(log n) per task released.
    mutating func releaseBackoffs(nowMs: Int64) {
        guard !backoffs.isEmpty else { return }
        backoffs.arm(nowMs: nowMs)
        for id in backoffs.popDue(nowMs: nowMs) {
            guard var record = tasks[id], record.info.state == .queued, record.isHeld else { continue }
            record.retry.backoff = nil
            if record.request.model == nil, let model = resolvedModel(for: record.spec) {
                record.request.model = model
                record.info.metrics.model = model
            }
            tasks[id] = record
            if !treeCancelPending.contains(id) { queue.push(id: id, request: record.request, sequence: record.sequence) }
        }
    }

    /// When (monotonic ms) the first backoff ends: the shell runs a placement round then.
    public var nextBackoffDueMs: Int64? { backoffs.nextDueMs }

    /// "retrying in 40 s after failed on w2": the time left (`nowMs` given and the backoff
    /// started), else its whole length.
    func backoffReason(_ id: String, _ backoff: RetryState.Backoff, nowMs: Int64?) -> String {
        var left = backoff.delayMs
        if let nowMs, let due = backoffs.dueMs(id) { left = max(0, due - nowMs) }
        return "retrying in \(Self.seconds(left)) after \(backoff.after.rawValue)\(backoff.node.map { " on \($0)" } ?? "")"
    }

    /// `40 s`, `2.5 s`: whole seconds from 10 s up, tenths below (rounded up: never "0 s"
    /// while time is left).
    static func seconds(_ ms: Int64) -> String {
        if ms >= 10_000 { return "\((ms + 999) / 1000) s" }
        let tenths = (ms + 99) / 100
        return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
    }

    // MARK: Node-loss requeues

    /// Puts a task back in the queue after its worker's trouble (lost, left, restarted
    /// without it; `reason` nil: refused, see `taskRejected`), or ends it (as `finalState`,
    /// `lost` by default) once it has had `maxAttempts` such runs: the node-loss budget,
    /// separate from `--retries`. A task that ends so may still be retried (`retryOn`
    /// naming `lost` or `health_failed`). A cancelled task ends `cancelled` instead. Its
    /// current run, if any, ends as `runState`. `at` (wall): when that run and the task end.
    /// Not discardable: an end dropped here would never reach the task's dependents and waiters.
    mutating func requeue(_ id: String, reason: String?, at: Int64, finalState: TaskState = .lost,
                          runState: TaskState = .lost) -> SchedulerDirective? {
        guard var record = tasks[id], !record.info.state.isTerminal else { return nil }
        if record.cancelRequested {
            record.info.state = .cancelled
            record.info.reason = "cancelled (its run ended: \(reason ?? "refused"))"
            record.info.finishedAt = at
            Self.endRun(&record, .cancelled, reason: record.info.reason, at: at)
            tasks[id] = record
            return .taskEnded(id: id)
        }
        if reason != nil { record.retry.losses += 1 }
        if let reason, record.retry.losses >= settings.maxAttempts {
            // `node` stays: where it last ran.
            record.info.state = finalState
            record.info.reason = "\(reason); gave up after \(record.info.attempts) attempts"
            record.info.finishedAt = at
            Self.endRun(&record, finalState, reason: record.info.reason, at: at)
            tasks[id] = record
            if retry(id, after: finalState, on: record.info.node) { return nil }
            return .taskEnded(id: id)
        }
        if let reason { Self.endRun(&record, runState, reason: reason, at: at) }
        record.info.state = .queued
        record.info.node = nil
        record.info.startedAt = nil
        if let reason { record.info.reason = reason }
        if record.request.model == nil, let model = resolvedModel(for: record.spec) {
            // Placed before its runtime's default was known: it is known now.
            record.request.model = model
            record.info.metrics.model = model
        }
        tasks[id] = record
        queue.push(id: id, request: record.request, sequence: record.sequence)
        return nil
    }

    /// Ends the record's current run (its last, if still running) as `state`.
    static func endRun(_ record: inout TaskRecord, _ state: TaskState, reason: String?, at: Int64,
                       exitCode: Int? = nil, signal: Int? = nil, startedAt: Int64? = nil, runMs: Int64? = nil) {
        guard let last = record.runs.indices.last, record.runs[last].state == .running,
              record.runs[last].attempt == record.info.attempts else { return }
        record.runs[last].state = state
        record.runs[last].reason = reason
        record.runs[last].finishedAt = at
        record.runs[last].exitCode = exitCode
        record.runs[last].signal = signal
        record.runs[last].runMs = runMs
        // The worker's word when `taskStarted` did not come (or came too late).
        if record.runs[last].startedAt == nil, let startedAt { record.runs[last].startedAt = startedAt }
    }
}
