import SwarmProtocol

/// Assignment prefetch (issue 17): a slot's turnover without a round trip.
///
/// A durable slot turns over through worker exit -> result -> scheduler -> commit -> assign
/// -> worker -> spawn; `xargs` starts the next command the moment one exits. So when no worker
/// has a free slot that fits a queued task, `schedule` may send it ahead to a worker whose
/// slots are all busy (at most `settings.prefetch` beyond its slots), which holds it and starts
/// it the moment a slot frees, then reports `taskStarted` as for any run.
///
/// The rules that keep it safe:
/// - A prefetched run is in its node's `assigned` (slot arithmetic, model limits, requeues on
///   loss all see it) and in `prefetched` until the worker reports it started. Its task stays
///   `queued` (with `node` set) meanwhile: it is not counted as running anywhere, so `running`
///   never exceeds a node's slots. `taskStarted` flips it to `running`.
/// - Placement fills free slots first: only tasks no free slot fits reach `prefetchRound`.
/// - A prefetched run that never started is withdrawn, not lost: back to the queue with its
///   attempt number given back, not charged to the node-loss budget (`withdrawPrefetched`).
/// - A worker hands back a run it held `--prefetch-hold` (1 s) without a free slot (a refusal):
///   withdrawn the same way and placed normally, so a slot free elsewhere takes it at once. That
///   worker gets no more sent ahead until one of its runs ends (`prefetchPaused`).
/// - The store saves it as `queued` with `node` set and a running run entry: a restart puts it
///   back on its node as prefetched (`isSavedPrefetch`), and the worker's registration says
///   whether it started there meanwhile (kept, `running`) or not (withdrawn, queued again).
extension ClusterState {
    /// Whether task `id` is sent ahead to a worker that has not started it.
    func isPrefetched(_ id: String) -> Bool {
        guard let name = tasks[id]?.info.node else { return false }
        return nodes[name]?.prefetched.contains(id) == true
    }

    /// The saved form of a prefetched task: `queued`, with the node and the current run placed.
    static func isSavedPrefetch(_ info: TaskInfo, runs: [TaskRun]) -> Bool {
        guard info.state == .queued, info.node != nil, info.attempts > 0, let last = runs.last else { return false }
        return last.attempt == info.attempts && last.state == .running && last.node == info.node
    }

    /// Brings `prefetchRoom` in step with node `name`: usable, holds prefetched assignments,
    /// has not handed one back since its last run ended (`prefetchPaused`), no free slot, and
    /// fewer than its slots plus `settings.prefetch` runs.
    mutating func reindexPrefetch(_ name: String) {
        if nodes[name]?.startedEarly.isEmpty == false { promoteStarted(name) }
        guard settings.prefetch > 0, let node = nodes[name] else {
            if !prefetchRoom.isEmpty { prefetchRoom.remove(name) }
            return
        }
        let load = node.assigned.count + node.dying.count + node.dropping.count + node.probing
        let room = node.holdsPrefetched && !node.prefetchPaused && node.state == .ready && node.connected && node.holdUntilMs == 0
            && node.freeSlots == 0 && load < node.slots + settings.prefetch
        if room { prefetchRoom.insert(name) } else if !prefetchRoom.isEmpty { prefetchRoom.remove(name) }
    }

    /// Sends queued tasks ahead, in queue order, to workers with prefetch room. Called by
    /// `schedule` once free slots are used up (every task left is one no free slot fits).
    /// The node a task goes to: one it fits, not ending an old run of it, another than where a
    /// retry failed if there is one, with the fewest runs for its slots (then by name).
    /// O(nodes with room) per task placed; nothing when none has room.
    mutating func prefetchRound(at: Int64, limit: Int) -> [SchedulerDirective] {
        guard limit > 0, !prefetchRoom.isEmpty, queue.count > 0 else { return [] }
        let oldRuns = oldRunSlots()
        var directives: [SchedulerDirective] = []
        var skipped: [String] = []
        var placed = 0
        while placed < limit, !prefetchRoom.isEmpty, let (c, id) = queue.top {
            guard let record = tasks[id], record.info.state == .queued, !record.isHeld else {
                queue.popTop()
                continue
            }
            if let model = record.request.model, let cap = settings.modelLimits[model], modelRunning[model, default: 0] >= cap {
                queue.park(c)
                continue
            }
            let excluded = Set((oldRuns[id] ?? []).map { index.names[$0] })
            let fitting = prefetchRoom.filter { name in
                guard !excluded.contains(name), let node = nodes[name] else { return false }
                return record.request.fits(labels: node.labels, runtimes: node.runtimes, allowsCommands: node.allowsCommands)
            }
            let avoid = avoiding.isEmpty ? nil : avoiding[id]
            let preferred = fitting.count > 1 && avoid != nil ? fitting.filter { $0 != avoid } : fitting
            guard let name = preferred.min(by: { lighter($0, than: $1) }), let slot = nodes[name]?.slot else {
                if !excluded.isEmpty, prefetchRoom.contains(where: { excluded.contains($0) }) {
                    queue.popTop()
                    skipped.append(id)
                } else {
                    queue.park(c)
                }
                continue
            }
            queue.popTop()
            if record.specBytes > FrameBudget.maxSpecBytes { continue }  // `schedule` ends it: never here
            if let directive = assign(id, to: slot, at: at, prefetch: true) {
                directives.append(directive)
                placed += 1
            }
        }
        queue.unparkAll()
        for id in skipped {
            if let record = tasks[id] { queue.push(id: id, request: record.request, sequence: record.sequence) }
        }
        return directives
    }

    /// Fewer runs for its slots first, then the smaller name: the same answer for the same state.
    private func lighter(_ a: String, than b: String) -> Bool {
        guard let x = nodes[a], let y = nodes[b] else { return a < b }
        let (lx, ly) = (x.assigned.count - x.slots, y.assigned.count - y.slots)
        return lx != ly ? lx < ly : a < b
    }

    /// The worker started prefetched run `id`: its task is running from now, or once the
    /// scheduler counts a slot free for it (`promoteStarted`).
    mutating func prefetchStarted(_ id: String, node name: String) {
        guard let node = nodes[name], node.prefetched.contains(id), tasks[id]?.info.state == .queued else { return }
        if node.running >= node.slots {
            nodes[name]?.startedEarly.insert(id)
            return
        }
        nodes[name]?.prefetched.remove(id)
        nodes[name]?.startedEarly.remove(id)
        tasks[id]!.info.state = .running
    }

    /// Started runs that waited for the scheduler to count their slot free: running now, while
    /// slots allow (`reindex` calls it when a node's runs change).
    mutating func promoteStarted(_ name: String) {
        guard let node = nodes[name], !node.startedEarly.isEmpty else { return }
        let waiting = node.startedEarly.filter { node.prefetched.contains($0) }
        nodes[name]?.startedEarly = waiting
        for id in waiting.sorted() where nodes[name]!.running < nodes[name]!.slots {
            prefetchStarted(id, node: name)
        }
    }

    /// A prefetched run of `id` that never started leaves node `name` (its worker lost, left,
    /// restarted, or refused it): the task goes back to the queue with its attempt number
    /// given back and nothing charged (it never ran). A cancel asked for meanwhile ends it.
    /// Returns the end, if it ended.
    mutating func withdrawPrefetched(_ id: String, from name: String, at: Int64) -> SchedulerDirective? {
        nodes[name]?.prefetched.remove(id)
        nodes[name]?.startedEarly.remove(id)
        guard var record = tasks[id], !record.info.state.isTerminal else { return nil }
        if record.runs.last?.attempt == record.info.attempts { record.runs.removeLast() }
        record.info.attempts = max(0, record.info.attempts - 1)
        tasks[id] = record
        return requeue(id, reason: nil, at: at)
    }

    /// Cancel of a prefetched task: it ends `cancelled` now, as any queued one; its worker is
    /// told to drop it (or kill it, had it just started), and its run holds the slot, not
    /// running, until the worker reports it (`dropping`).
    mutating func cancelPrefetched(_ id: String, at: Int64) -> [SchedulerDirective] {
        guard var record = tasks[id], let name = record.info.node, let attempt = nodes[name]?.assigned[id] else { return [] }
        nodes[name]?.assigned[id] = nil
        nodes[name]?.prefetched.remove(id)
        nodes[name]?.startedEarly.remove(id)
        nodes[name]?.dropping[id] = attempt
        released(id)
        record.info.state = .cancelled
        record.info.reason = "cancelled before it ran (held on worker \(name) for a slot)"
        record.info.finishedAt = at
        Self.endRun(&record, .cancelled, reason: record.info.reason, at: at)
        tasks[id] = record
        reindex(name)
        return settled([.kill(node: name, run: RunRef(id: id, attempt: attempt), reason: "cancelled by user"), .taskEnded(id: id)], at: at)
    }

    /// Why a prefetched task is still `queued`.
    func prefetchedWaitReason(_ id: String) -> WaitReason {
        WaitReason(reason: "prefetched to worker \(tasks[id]?.info.node ?? "?"): starts there when one of its slots frees",
                   unplaceable: false)
    }
}
