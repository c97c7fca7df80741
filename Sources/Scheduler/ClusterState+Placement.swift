import SwarmProtocol

/// Placement: which queued task goes where, and why the others wait.
///
/// `schedule` takes tasks in queue order (priority desc, then submission) class by class
/// (`PlacementQueue`) and finds each the best usable node among the node groups its class
/// fits (`NodeIndex`). A class that cannot place its first task is parked for the round, so
/// tasks behind it in other classes keep being placed. Each placement costs O(log queued +
/// log classes + log nodes + feasible groups); each round adds O(parked classes + held nodes +
/// nodes with old runs). `Placement.place` on a snapshot is the reference it agrees with.
extension ClusterState {
    /// What placement needs of a spec. The one place spec fields become placement inputs.
    static func placementRequest(for spec: TaskSpec, model: String?) -> PlacementRequest {
        PlacementRequest(runtime: spec.runtime, model: model, constraints: spec.constraints ?? [:],
                         priority: spec.priority ?? 0)
    }

    /// Sets which runtimes a worker has (name -> healthy) and whether it runs plain commands.
    /// Unknown nodes are ignored. Placement uses the new values from the next `schedule`.
    public mutating func setRuntimes(node name: String, runtimes: [String: Bool], allowsCommands: Bool) {
        guard nodes[name] != nil else { return }
        nodes[name]?.runtimes = runtimes
        nodes[name]?.allowsCommands = allowsCommands
        reindex(name, regroup: true)
    }

    /// Places queued tasks while any node has a free slot, in queue order, skipping those
    /// that must wait (they keep their place). `nowMs` (monotonic) ends holds; `at` (wall) is
    /// the `placedAt` of what is placed. `limit`: at most that many are placed (the others
    /// stay queued, in order, for the next round).
    public mutating func schedule(nowMs: Int64, at: Int64, limit: Int = .max) -> [SchedulerDirective] {
        releaseHolds(nowMs: nowMs)
        releaseBackoffs(nowMs: nowMs)
        // A cascade of dependency ends goes on, a slice a round, before placement: what it
        // releases is placed in this round.
        let cascade = isSettling ? settleDeferred(at: at) : []
        // A node still killing (or waiting for the result of) an old run of a task gets no new
        // run of it: one id, one process and one attempt number per node at a time.
        let oldRuns = oldRunSlots()
        var directives: [SchedulerDirective] = []
        var skipped: [String] = []
        var placed = 0
        while placed < limit, index.usableCount > 0, let (c, id) = queue.top {
            // A task not queued, or held (dependencies, backoff), is dropped here, never run.
            guard let record = tasks[id], record.info.state == .queued, !record.isHeld else {
                queue.popTop()
                continue
            }
            if let model = queue.classes[c].key.model, let limit = settings.modelLimits[model],
               modelRunning[model, default: 0] >= limit {
                queue.park(c)
                continue
            }
            let groups = feasibleGroups(c)
            var choice: Int?
            if !avoiding.isEmpty, let avoid = avoiding[id].flatMap({ nodes[$0]?.slot }) {
                // A retry: a node other than the one its last run failed on, if one can take it now.
                choice = index.best(in: groups, excluding: (oldRuns[id] ?? []) + [avoid]).slot
            }
            if choice == nil, !oldRuns.isEmpty, let excluded = oldRuns[id] {
                let found = index.best(in: groups, excluding: excluded)
                if found.slot == nil && found.excludedUsable {
                    // Only this task is held back: let the ones behind it go.
                    queue.popTop()
                    skipped.append(id)
                    continue
                }
                choice = found.slot
            } else if choice == nil {
                choice = index.best(in: groups)
            }
            guard let slot = choice else {
                queue.park(c)
                continue
            }
            queue.popTop()
            if record.specBytes > FrameBudget.maxSpecBytes {
                // Only a task accepted under older limits (restored): its assignment could not
                // reach a worker. It alone fails; the slot stays free.
                directives.append(endUnsendable(id, bytes: record.specBytes, at: at))
                continue
            }
            if let directive = assign(id, to: slot, at: at) {
                directives.append(directive)
                placed += 1
            }
        }
        queue.unparkAll()
        for id in skipped {
            if let record = tasks[id] { queue.push(id: id, request: record.request, sequence: record.sequence) }
        }
        // What no free slot fits may be sent ahead to a busy worker (ClusterState+Prefetch.swift).
        directives += prefetchRound(at: at, limit: limit - placed)
        // Ends found at submit or restore are handed out here, the shell's next stop.
        let found = undelivered
        undelivered = []
        return found + cascade + settled(directives, at: at)
    }

    /// How many tasks of `model` are running (assigned) cluster-wide now.
    public func runningCount(model: String) -> Int {
        modelRunning[model, default: 0]
    }

    /// Why a task is still queued, or nil if it is not queued. `unplaceable` means no
    /// registered worker that is not lost could ever run it (it stays queued all the same).
    /// Judged on the state as of now; O(nodes).
    public func waitReason(for id: String, nowMs: Int64? = nil) -> WaitReason? {
        waitReasons(for: [id], nowMs: nowMs)[id]
    }

    /// `waitReason(for:)` for many tasks at once: O(nodes) per distinct placement class,
    /// not per task. Tasks that are not queued are left out. `nowMs` (monotonic) tells how
    /// long a retry's backoff has left (nil: its whole length is said).
    public func waitReasons(for ids: [String], nowMs: Int64? = nil) -> [String: WaitReason] {
        let snapshot = nodeSnapshots()
        var byClass: [PlacementQueue.ClassKey: WaitReason] = [:]
        var result: [String: WaitReason] = [:]
        for id in ids {
            guard let record = tasks[id], record.info.state == .queued else { continue }
            if record.info.node != nil, isPrefetched(id) {
                result[id] = prefetchedWaitReason(id)
                continue
            }
            if record.waitsForDependencies {
                result[id] = WaitReason(reason: dependencyReason(id), unplaceable: false)
                continue
            }
            if let backoff = record.retry.backoff {
                result[id] = WaitReason(reason: backoffReason(id, backoff, nowMs: nowMs), unplaceable: false)
                continue
            }
            let key = PlacementQueue.ClassKey(record.request)
            let held = nodesWithOldRuns.filter { nodes[$0]?.dying[id] != nil || nodes[$0]?.stale[id] != nil }
            if held.isEmpty, let known = byClass[key] {
                result[id] = known
                continue
            }
            let reason = waitReason(key.request, on: snapshot, notOn: held)
            if held.isEmpty { byClass[key] = reason }
            result[id] = reason
        }
        if !avoiding.isEmpty {
            for id in ids {
                guard let node = avoiding[id], tasks[id]?.isHeld == false, let why = result[id], !why.unplaceable else { continue }
                result[id] = WaitReason(reason: why.reason + "; a retry: it goes to a worker other than \(node), where it failed, when one is free",
                                        unplaceable: false)
            }
        }
        return result
    }

    /// What placement sees of every node now (held nodes have no free slots).
    func nodeSnapshots() -> [NodeSnapshot] {
        nodes.values.sorted { $0.name < $1.name }.map {
            NodeSnapshot(name: $0.name, slots: $0.slots, freeSlots: $0.holdUntilMs != 0 ? 0 : $0.freeSlots,
                         state: $0.state, connected: $0.connected, labels: $0.labels,
                         runtimes: $0.runtimes, allowsCommands: $0.allowsCommands)
        }
    }

    private func waitReason(_ request: PlacementRequest, on snapshot: [NodeSnapshot], notOn held: Set<String>) -> WaitReason {
        func decide(_ nodes: [NodeSnapshot]) -> PlacementDecision {
            Placement.place(request, on: nodes, policy: settings.placementPolicy,
                            modelLimits: settings.modelLimits, modelRunning: modelRunning)
        }
        var nodes = snapshot
        for i in nodes.indices where held.contains(nodes[i].name) { nodes[i].freeSlots = 0 }
        switch decide(nodes) {
        case .unplaceable(let reason):
            return WaitReason(reason: reason, unplaceable: true)
        case .wait(let reason):
            if !held.isEmpty, case .place = decide(snapshot) {
                return WaitReason(reason: "an earlier run of it is still ending on worker \(held.sorted().joined(separator: ", "))",
                                  unplaceable: false)
            }
            return WaitReason(reason: reason, unplaceable: false)
        case .place:
            return WaitReason(reason: "waiting for the next placement round", unplaceable: false)
        }
    }

    // MARK: Bookkeeping

    /// Brings the node's entry in the index (and the held / old-runs sets) in step with its
    /// record. `regroup` when its labels, runtimes or command permission may have changed.
    mutating func reindex(_ name: String, regroup: Bool = false) {
        guard let node = nodes[name] else { return }
        if regroup {
            index.setGroup(node.slot, NodeIndex.GroupKey(labels: node.labels, runtimes: node.runtimes,
                                                         allowsCommands: node.allowsCommands))
        }
        let usable = node.state == .ready && node.connected && node.holdUntilMs == 0
        index.setFree(node.slot, usable ? node.freeSlots : 0)
        if node.holdUntilMs != 0 { heldNodes.insert(name) } else if !heldNodes.isEmpty { heldNodes.remove(name) }
        reindexPrefetch(name)
        if !node.dying.isEmpty || !node.stale.isEmpty {
            nodesWithOldRuns.insert(name)
        } else if !nodesWithOldRuns.isEmpty {
            nodesWithOldRuns.remove(name)
        }
    }

    /// A run of task `id` stopped counting as running (its assignment was removed).
    mutating func released(_ id: String) {
        guard let model = tasks[id]?.request.model else { return }
        modelRunning[model, default: 0] -= 1
        if modelRunning[model] == 0 { modelRunning[model] = nil }
    }

    private mutating func releaseHolds(nowMs: Int64) {
        guard !heldNodes.isEmpty else { return }
        for name in heldNodes where (nodes[name]?.holdUntilMs ?? 0) <= nowMs {
            nodes[name]?.holdUntilMs = 0
            reindex(name)
        }
    }

    /// Task id -> slots of the nodes still ending an earlier run of it.
    func oldRunSlots() -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for name in nodesWithOldRuns {
            guard let node = nodes[name] else { continue }
            for id in node.dying.keys { result[id, default: []].append(node.slot) }
            for id in node.stale.keys { result[id, default: []].append(node.slot) }
        }
        return result
    }

    /// The node groups class `c` fits, judging groups created since it last looked.
    private mutating func feasibleGroups(_ c: Int) -> [Int] {
        let seen = queue.classes[c].groupsSeen
        if seen < index.groupCount {
            let request = queue.classes[c].key.request
            let added = (seen..<index.groupCount).filter {
                let key = index.groupKeys[$0]
                return request.fits(labels: key.labels, runtimes: key.runtimes, allowsCommands: key.allowsCommands)
            }
            queue.addFeasible(c, groups: added, upTo: index.groupCount)
        }
        return queue.classes[c].feasibleGroups
    }

    /// `prefetch`: sent ahead to a node whose slots are all busy (ClusterState+Prefetch.swift):
    /// the task stays `queued` until the worker reports it started.
    mutating func assign(_ id: String, to slot: Int, at: Int64, prefetch: Bool = false) -> SchedulerDirective? {
        let nodeName = index.names[slot]
        guard let record = tasks[id] else { return nil }
        let attempt = record.info.attempts + 1
        let spec = Self.assignedSpec(record)
        let model = record.request.model
        let submittedAt = record.info.submittedAt
        // Changed in place through the table's modify accessor (which records the new run).
        tasks.place(id) { Self.markPlaced(&$0, on: nodeName, attempt: attempt, at: at) }
        if !avoiding.isEmpty { avoiding[id] = nil }
        nodes[nodeName]?.assigned[id] = attempt
        if let model { modelRunning[model, default: 0] += 1 }
        var assignment = TaskAssignment(id: id, attempt: attempt, spec: spec, submittedAt: submittedAt, placedAt: at)
        if prefetch {
            tasks[id]!.info.state = .queued
            nodes[nodeName]?.prefetched.insert(id)
            assignment.prefetch = true
            reindexPrefetch(nodeName)
        } else {
            index.setFree(slot, index.free[slot] - 1)
            if index.free[slot] == 0 { reindexPrefetch(nodeName) }
        }
        return .assign(node: nodeName, assignment)
    }

    private mutating func endUnsendable(_ id: String, bytes: Int, at: Int64) -> SchedulerDirective {
        tasks[id]!.info.state = .failed
        tasks[id]!.info.reason = "its spec is \(bytes) bytes as JSON, over the \(FrameBudget.maxSpecBytes) an assignment may carry: no worker could read it"
        tasks[id]!.info.finishedAt = at
        return .taskEnded(id: id)
    }

    private static func markPlaced(_ record: inout TaskRecord, on node: String, attempt: Int, at: Int64) {
        record.retry.avoidNode = nil
        record.runs.append(TaskRun(attempt: attempt, node: node, placedAt: at))
        if record.runs.count > TaskRun.maxKept { record.runs.removeFirst(record.runs.count - TaskRun.maxKept) }
        markPlaced(&record.info, on: node, attempt: attempt, at: at)
    }

    /// What a placement changes in a task's info; also how a restart brings an info written
    /// before its task's last placement up to date (`TaskStore.snapshot`).
    static func markPlaced(_ info: inout TaskInfo, on node: String?, attempt: Int, at: Int64?) {
        info.state = .running
        info.node = node
        info.attempts = attempt
        info.placedAt = at
        // Nothing of an earlier run shows on the new one.
        info.startedAt = nil
        info.exitCode = nil
        info.signal = nil
        info.output = nil
        info.artifacts = nil
        info.skippedArtifacts = nil
        info.git = nil
        info.reason = nil
        info.finishedAt = nil
        let (runtime, model) = (info.metrics.runtime, info.metrics.model)
        info.metrics = RunMetrics()
        info.metrics.node = node
        info.metrics.runtime = runtime
        info.metrics.model = model
    }

    // MARK: Checks

    /// Everything the placement bookkeeping must agree on, recomputed from the records; empty
    /// when all is well. For tests (O(tasks + nodes)).
    func placementInvariantViolations() -> [String] {
        var problems: [String] = []
        for node in nodes.values {
            let usable = node.state == .ready && node.connected && node.holdUntilMs == 0
            let expected = usable ? node.freeSlots : 0
            if index.free[node.slot] != expected {
                problems.append("index has \(index.free[node.slot]) free on \(node.name), expected \(expected)")
            }
            if node.holdUntilMs != 0 && !heldNodes.contains(node.name) { problems.append("\(node.name) held but not listed") }
            if (!node.dying.isEmpty || !node.stale.isEmpty) && !nodesWithOldRuns.contains(node.name) {
                problems.append("\(node.name) has old runs but is not listed")
            }
        }
        var running: [String: Int] = [:]
        for node in nodes.values {
            for id in node.assigned.keys { if let model = tasks[id]?.request.model { running[model, default: 0] += 1 } }
        }
        if running != modelRunning { problems.append("model counts \(modelRunning), expected \(running)") }
        // A tree cancel's pending tasks are out of the queue until their slice.
        let queued = tasks.values.filter {
            $0.info.state == .queued && !$0.isHeld && !isPrefetched($0.info.id) && !treeCancelPending.contains($0.info.id)
        }.count
        for node in nodes.values {
            if !node.prefetched.isSubset(of: Set(node.assigned.keys)) { problems.append("\(node.name) has prefetched runs it is not assigned") }
            if let bad = node.prefetched.first(where: { tasks[$0]?.info.state != .queued }) {
                problems.append("\(bad) is prefetched to \(node.name) but \(tasks[bad]?.info.state.rawValue ?? "gone")")
            }
        }
        if queued != queue.count { problems.append("queue holds \(queue.count), \(queued) tasks are queued and not held") }
        let held = tasks.values.filter { $0.retry.backoff != nil }
        if let bad = held.first(where: { $0.info.state != .queued }) { problems.append("\(bad.info.id) is \(bad.info.state.rawValue) with a backoff") }
        if held.count != backoffs.count { problems.append("\(held.count) tasks in backoff, \(backoffs.count) timers") }
        let waiting = tasks.values.filter(\.waitsForDependencies)
        if let bad = waiting.first(where: { $0.info.state != .queued || dependencies.unmetCount($0.info.id) == 0 }) {
            problems.append("\(bad.info.id) is \(bad.info.state.rawValue) waiting for \(dependencies.unmetCount(bad.info.id)) dependencies")
        }
        if waiting.count != dependencies.waitingCount {
            problems.append("\(waiting.count) tasks wait for dependencies, the index counts \(dependencies.waitingCount)")
        }
        return problems
    }
}
