import SwarmProtocol

/// What workers tell the scheduler: registration, liveness, runs started and ended, health.
extension ClusterState {
    // MARK: Workers

    /// A worker (re)connects. `running` and `finished` are the runs it has and the results it
    /// still holds: runs assigned to it in neither were never started there and go back to the
    /// queue; runs it has that are no longer current are killed there (and hold their slot
    /// until they are reported gone). `nowMs` (monotonic) counts as hearing from it; `at` (wall)
    /// dates what ends. `prefetch`: it holds assignments sent ahead (ClusterState+Prefetch.swift);
    /// such runs it does not report were dropped unstarted and are withdrawn (not charged), and
    /// those it reports running started while the scheduler was away.
    public mutating func register(node name: String, slots: Int, labels: [String: String],
                                  running: [RunRef], finished: [RunRef], address: String?,
                                  nowMs: Int64, at: Int64, prefetch: Bool = false) throws(SchedulerError) -> [SchedulerDirective] {
        // Names key the scheduler's tables and are shown and logged: the rule the worker's own
        // flag and cluster.json follow, enforced here too for peers that skip them.
        if let problem = WorkerName.problem(with: name) { throw .invalidRegistration(problem) }
        // Bounds.slots admits 0 (free slots, probes); a worker registers with at least one.
        guard slots >= 1 && slots <= Bounds.slots.upperBound else {
            throw .invalidRegistration("slots must be 1 to \(Bounds.slots.upperBound), got \(slots)")
        }
        if let existing = nodes[name], existing.connected { throw .workerNameInUse(name) }
        var directives: [SchedulerDirective] = []
        var node = nodes[name] ?? NodeRecord(name: name, slot: index.addNode(name), slots: slots, labels: labels, lastSeenMs: nowMs)
        node.drained = drainedNames.contains(name)
        node.slots = slots
        node.labels = labels
        node.connected = true
        node.lastSeenMs = nowMs
        node.address = address
        node.holdUntilMs = 0
        node.leaving = false
        node.state = node.drained ? .draining : .ready
        node.holdsPrefetched = prefetch
        node.prefetchPaused = false
        let reported = Set(running).union(finished)
        var withdrawn: [String] = []
        for (id, attempt) in node.assigned.sorted(by: { $0.key < $1.key }) where !reported.contains(RunRef(id: id, attempt: attempt)) {
            node.assigned[id] = nil
            released(id)
            if node.prefetched.contains(id) {
                withdrawn.append(id)
            } else if let ended = requeue(id, reason: "its worker restarted without it", at: at) {
                directives.append(ended)
            }
        }
        let runningNow = Set(running)
        let started = node.prefetched.filter { id in node.assigned[id].map { runningNow.contains(RunRef(id: id, attempt: $0)) } == true }
        node.dying = [:]
        node.stale = [:]
        node.dropping = [:]
        for run in running where node.assigned[run.id] != run.attempt {
            node.dying[run.id] = run.attempt
            directives.append(.kill(node: name, run: run, reason: "this run of the task is no longer current"))
        }
        for run in finished where node.assigned[run.id] != run.attempt {
            node.stale[run.id] = run.attempt
        }
        nodes[name] = node
        for id in withdrawn { if let ended = withdrawPrefetched(id, from: name, at: at) { directives.append(ended) } }
        for id in started.sorted() { prefetchStarted(id, node: name) }
        reindex(name, regroup: true)
        return settled(directives, at: at)
    }

    /// Any message from a worker is a sign of life (`nowMs`: monotonic). Returns how long the
    /// worker had been silent (ms since its last sign of life or forgiven stall), nil for a
    /// worker unknown or lost.
    @discardableResult
    public mutating func seen(node name: String, nowMs: Int64) -> Int64? {
        guard let last = nodes[name]?.lastSeenMs, nodes[name]?.state != .lost else { return nil }
        nodes[name]?.lastSeenMs = max(last, nowMs)
        return max(0, nowMs - last)
    }

    /// How long worker `name` may stay silent before it is lost (`SchedulerSettings.lostAfter`
    /// for its heartbeat interval), nil for a worker unknown.
    public func lostAfterMs(node name: String) -> Int64? {
        nodes[name].map { settings.lostAfter(intervalMs: $0.heartbeatMs) }
    }

    /// A heartbeat lists the runs the worker still has: a dying run missing from it has ended
    /// (its result, sent before this heartbeat, was already handled) and frees its slot.
    /// (Its `freeSlots` is informational: the scheduler counts slots itself, per run.)
    public mutating func heartbeat(node name: String, running: [RunRef]) {
        guard var node = nodes[name], !node.dying.isEmpty else { return }
        let present = Set(running)
        node.dying = node.dying.filter { present.contains(RunRef(id: $0.key, attempt: $0.value)) }
        nodes[name] = node
        reindex(name)
    }

    /// The scheduler itself was stalled (paused, swapped out): its workers' messages wait
    /// unread in its sockets, so their silence proves nothing. Counts every connected worker
    /// as seen at `nowMs` (monotonic).
    public mutating func forgiveStall(nowMs: Int64) {
        for (name, node) in nodes where node.connected && node.state != .lost {
            nodes[name]?.lastSeenMs = max(node.lastSeenMs, nowMs)
        }
    }

    /// The worker is stopping: nothing more is placed on it.
    public mutating func leaving(node name: String) {
        nodes[name]?.leaving = true
        nodes[name]?.state = .draining
        reindex(name)
    }

    /// The worker's connection dropped. Its tasks stay assigned: it keeps running them and
    /// reports back when it reconnects, unless it stays away past `lostAfterMs`. A worker
    /// that said it was leaving will not report back: what it still had is requeued now.
    /// `at` (wall) dates what ends.
    public mutating func disconnected(node name: String, at: Int64) -> [SchedulerDirective] {
        guard var node = nodes[name] else { return [] }
        node.connected = false
        var directives: [SchedulerDirective] = []
        if node.leaving {
            let orphans = node.assigned.keys.sorted()
            let unstarted = node.prefetched
            node.assigned = [:]
            node.dying = [:]
            node.prefetched = []
            node.dropping = [:]
            nodes[name] = node
            for id in orphans {
                released(id)
                let ended = unstarted.contains(id) ? withdrawPrefetched(id, from: name, at: at)
                    : requeue(id, reason: "worker \(name) left", at: at)
                if let ended { directives.append(ended) }
            }
        }
        nodes[name] = node
        reindex(name)
        return settled(directives, at: at)
    }

    /// A run started on its worker: its `startedAt`, and a prefetched one's task is `running`
    /// from now (ClusterState+Prefetch.swift).
    public mutating func taskStarted(node name: String, run: RunRef, startedAt: Int64) {
        guard Bounds.timestampMs.contains(startedAt), nodes[name]?.assigned[run.id] == run.attempt,
              tasks[run.id]?.info.attempts == run.attempt else { return }
        if nodes[name]?.prefetched.isEmpty == false { prefetchStarted(run.id, node: name) }
        guard var record = tasks[run.id] else { return }
        record.info.startedAt = startedAt
        if let last = record.runs.indices.last, record.runs[last].attempt == run.attempt { record.runs[last].startedAt = startedAt }
        tasks[run.id] = record
    }

    /// A worker reports how a run ended. It is always acknowledged (so the worker stops
    /// resending); it counts only for the task's current run on that worker. A run ended as
    /// `lost` (its worker shut down under it) goes back to the queue. `at` (wall) dates what
    /// ends here rather than on the worker. The tasks waiting for it are released, or end
    /// `dependency_failed` (ClusterState+Dependencies.swift).
    public mutating func taskFinished(node name: String, result: TaskResult, at: Int64) -> [SchedulerDirective] {
        settled(finish(node: name, result: result, at: at), at: at)
    }

    private mutating func finish(node name: String, result: TaskResult, at: Int64) -> [SchedulerDirective] {
        // A number out of range ends the run as failed, saying why (`TaskResult.problem`).
        let result = result.withValidNumbers(at: at)
        var directives: [SchedulerDirective] = [.ackResult(node: name, run: RunRef(id: result.id, attempt: result.attempt))]
        guard var node = nodes[name] else { return directives }
        // One of its slots turned over: it may be sent runs ahead again.
        node.prefetchPaused = false
        if node.dying[result.id] == result.attempt || node.stale[result.id] == result.attempt
            || node.dropping[result.id] == result.attempt {
            node.dying[result.id] = nil
            node.stale[result.id] = nil
            node.dropping[result.id] = nil
            nodes[name] = node
            reindex(name)
            return directives
        }
        guard node.assigned[result.id] == result.attempt, var record = tasks[result.id],
              record.info.attempts == result.attempt, !record.info.state.isTerminal else {
            return directives
        }
        node.assigned[result.id] = nil
        node.prefetched.remove(result.id)
        released(result.id)
        // Lost (its worker shut down under it) and health_failed (the runtime broke between
        // placement and start) are the worker's trouble, not the task's: it runs elsewhere.
        if (result.state == .lost || result.state == .healthFailed) && !record.cancelRequested {
            nodes[name] = node
            reindex(name)
            stats.runEnded(node: name, model: record.info.metrics.model, result: result, requeued: true)
            if let ended = requeue(result.id, reason: result.reason ?? "its worker shut down", at: at,
                                   finalState: result.state, runState: result.state) {
                directives.append(ended)
            }
            return directives
        }
        node.completed += 1
        nodes[name] = node
        reindex(name)
        record.info.exitCode = result.exitCode
        record.info.signal = result.signal
        record.info.output = result.output
        record.info.startedAt = result.startedAt ?? record.info.startedAt
        record.info.state = result.state.isTerminal ? result.state : .failed
        record.info.reason = result.reason
        record.info.finishedAt = result.finishedAt
        record.info.artifacts = result.artifacts
        record.info.skippedArtifacts = result.skippedArtifacts
        record.info.git = result.git
        var metrics = result.metrics
        metrics.node = name
        metrics.runtime = metrics.runtime ?? record.spec.runtime
        metrics.model = metrics.model ?? record.info.metrics.model
        record.info.metrics = metrics
        if record.cancelRequested && result.state != .succeeded {
            record.info.state = .cancelled
        }
        Self.endRun(&record, record.info.state, reason: result.reason, at: result.finishedAt,
                    exitCode: result.exitCode, signal: result.signal, startedAt: result.startedAt, runMs: result.metrics.runMs)
        tasks[result.id] = record
        stats.runEnded(node: name, model: metrics.model, result: result, requeued: false)
        // A retry puts it back in the queue (after its backoff): it has not ended.
        if !retry(result.id, after: record.info.state, on: name) { directives.append(.taskEnded(id: result.id)) }
        return directives
    }

    /// A worker refused a run; the task goes back to the queue without using an attempt, and
    /// the worker gets no new placement for a second (so a refusal cannot become a hot loop),
    /// or, for a prefetched run (handed back), none sent ahead until one of its runs ends.
    /// A `permanent` refusal (the worker could not read the assignment) ends the task `failed`
    /// with that reason instead: it would fail the same way anywhere, and the worker is fine.
    /// The hold counts from `nowMs` (monotonic); `at` (wall) dates what ends.
    @discardableResult
    public mutating func taskRejected(node name: String, run: RunRef, nowMs: Int64, at: Int64,
                                      permanent reason: String? = nil) -> [SchedulerDirective] {
        // A prefetched run cancelled while the worker handed it back: the refusal is its end
        // there (no result follows), so its slot is free.
        if nodes[name]?.dropping[run.id] == run.attempt {
            nodes[name]?.dropping[run.id] = nil
            reindex(name)
            return []
        }
        guard nodes[name]?.assigned[run.id] == run.attempt, var record = tasks[run.id] else { return [] }
        nodes[name]?.assigned[run.id] = nil
        // A prefetched run handed back (held too long, or the worker stops): nothing more is
        // sent ahead to it until one of its runs ends; its free slots, once it has some, are
        // used at once (no hold: a refusal of a placement on a free slot sets that).
        let handedBack = nodes[name]?.prefetched.remove(run.id) != nil
        if reason == nil { if handedBack { nodes[name]?.prefetchPaused = true } else { nodes[name]?.holdUntilMs = nowMs + 1_000 } }
        released(run.id)
        reindex(name)
        if let reason {
            record.info.state = record.cancelRequested ? .cancelled : .failed
            // A worker's text, bounded: it lands in every status reply of the task.
            record.info.reason = "worker \(name) could not take it: \(reason.prefix(1024))"
            record.info.finishedAt = at
            Self.endRun(&record, record.info.state, reason: record.info.reason, at: at)
            tasks[run.id] = record
            return settled([.taskEnded(id: run.id)], at: at)
        }
        // The run never started: it is withdrawn, and its attempt number used again.
        if record.runs.last?.attempt == record.info.attempts { record.runs.removeLast() }
        record.info.attempts = max(0, record.info.attempts - 1)
        tasks[run.id] = record
        // A cancel asked for while the assignment was on its way ends it here: that end goes
        // where every end goes (its dependents, waiters, logs, credential).
        return settled(requeue(run.id, reason: nil, at: at).map { [$0] } ?? [], at: at)
    }

    // MARK: Time and placement

    /// Marks workers silent past their lost-after (`SchedulerSettings.lostAfter`: more than
    /// that many monotonic ms between their last message and `nowMs`) as lost and requeues
    /// their tasks. `at` (wall) dates the tasks that end for it. A step of the wall clock
    /// changes nothing here.
    public mutating func tick(nowMs: Int64, at: Int64) -> [SchedulerDirective] {
        var directives: [SchedulerDirective] = []
        for name in nodes.keys.sorted() {
            // A worker that said goodbye and went is not lost: it stays `draining`, disconnected.
            guard var node = nodes[name], node.state != .lost, !(node.leaving && !node.connected),
                  nowMs - node.lastSeenMs > settings.lostAfter(intervalMs: node.heartbeatMs) else { continue }
            node.state = .lost
            // Its connection is closed by the shell; when it comes back it registers anew and
            // its leftover runs are killed then.
            node.connected = false
            let orphans = node.assigned.keys.sorted()
            let unstarted = node.prefetched
            node.assigned = [:]
            node.dying = [:]
            node.stale = [:]
            node.prefetched = []
            node.dropping = [:]
            nodes[name] = node
            reindex(name)
            directives.append(.nodeLost(name: name))
            for id in orphans {
                released(id)
                // Never started there: back to the queue, not charged as a loss.
                let ended = unstarted.contains(id) ? withdrawPrefetched(id, from: name, at: at)
                    : requeue(id, reason: "worker \(name) was lost", at: at)
                if let ended { directives.append(ended) }
            }
        }
        return settled(directives, at: at)
    }

    // MARK: Agent engine

    /// A worker reported its runtimes' health and the slots its probes hold.
    public mutating func setHealth(node name: String, runtimes: [RuntimeStatus], allowsCommands: Bool? = nil, probing: Int? = nil) {
        // Figures out of range are refused at the edge; a report with them never gets in.
        guard var node = nodes[name], RuntimeStatus.problem(of: runtimes) == nil else { return }
        node.runtimeStatus = runtimes
        if let probing { node.probing = max(0, min(probing, node.slots)) }
        nodes[name] = node
        resolvePendingModels(after: runtimes, node: name)
        // Placement sees runtime -> healthy (and regroups the node if that changed).
        setRuntimes(node: name, runtimes: Dictionary(runtimes.map { ($0.name, $0.healthy) }, uniquingKeysWith: { a, b in a && b }),
                    allowsCommands: allowsCommands ?? node.allowsCommands)
    }

    /// The heartbeat interval for a worker registering now (the cluster's size counts it),
    /// plus `jitterFraction` (0 to 1) of a quarter of it, so workers that registered together
    /// do not beat together. The worker is judged lost against this interval.
    public mutating func assignHeartbeat(node name: String, jitterFraction: Double) -> Int {
        let interval = Self.jittered(currentHeartbeatBase, jitterFraction)
        nodes[name]?.heartbeatMs = interval
        return interval
    }

    /// Workers whose interval is now well below what the cluster's size asks for (below 80 %
    /// of it), with their new interval: the shell tells them (a repeated `registered`). Each
    /// worker is updated O(log n) times as a cluster grows to n.
    public mutating func heartbeatUpdates(jitter: () -> Double) -> [(node: String, heartbeatMs: Int)] {
        let base = currentHeartbeatBase
        var updates: [(node: String, heartbeatMs: Int)] = []
        for (name, node) in nodes where node.connected && node.state != .lost && node.heartbeatMs > 0
            && Double(node.heartbeatMs) < 0.8 * Double(base) {
            let interval = Self.jittered(base, jitter())
            nodes[name]?.heartbeatMs = interval
            updates.append((name, interval))
        }
        return updates.sorted { $0.node < $1.node }
    }

    private var currentHeartbeatBase: Int {
        settings.heartbeatInterval(nodes: nodes.values.filter { $0.connected && $0.state != .lost }.count)
    }

    private static func jittered(_ base: Int, _ fraction: Double) -> Int {
        base + Int(Double(base / 4) * min(1, max(0, fraction)))
    }

    /// A run's `silence_warning` or `extended`: counted on the task (current run only).
    public mutating func taskEvent(node name: String, run: RunRef, kind: String) {
        guard nodes[name]?.assigned[run.id] == run.attempt, var record = tasks[run.id],
              record.info.attempts == run.attempt else { return }
        switch kind {
        case "silence_warning": record.info.metrics.silenceWarnings += 1
        case "extended": record.info.metrics.extensions += 1
        default: return
        }
        tasks[run.id] = record
    }
}
