import SwarmProtocol

// MARK: Durability

extension ClusterState {
    /// The state as the store saved it, after a restart. Queued tasks go back into the queue
    /// in their order; a running task stays assigned to its worker as the same attempt,
    /// awaiting that worker: `register` then keeps the runs the worker reports (running, or
    /// finished with a result to deliver) and requeues the rest; a worker that does not come
    /// back within `lostAfterMs` of `nowMs` is lost like any other, its runs requeued.
    ///
    /// Nothing saved is a monotonic reading (those mean nothing after a restart, least of all
    /// after a reboot): the store keeps wall-clock timestamps for people, and every timer
    /// starts again here. A worker's `--lost-after` counts from `nowMs` (monotonic, this
    /// process's start), holds on refusing workers are not kept, and a task waiting out a
    /// retry backoff waits it whole again from the first placement round. `at` (wall) dates
    /// what ends here.
    ///
    /// `saved` need not be every task: a restart reads the tasks in flight and the most recent
    /// finished ones (`TaskStore.loadRestart`); the rest stay in the store (`TaskArchive`).
    /// `lastSequence` is the highest submission number the store has given (new tasks come
    /// after it, also after tasks not read back).
    /// A queued task with dependencies waits again for those that have not ended (the reverse
    /// index is rebuilt from the tasks that have not ended), or is released or ends
    /// `dependency_failed` by those that have: held in `saved`, or in `ended` (the final states
    /// the shell's store holds of dependencies not in `saved`: `unknownDependencies(of:)`).
    /// Those ends reach the shell from the first `schedule`.
    public init(settings: SchedulerSettings, restoring saved: [TaskSnapshot], lastSequence: UInt64 = 0,
                nowMs: Int64, at: Int64, ended: [String: TaskState] = [:]) {
        self.init(settings: settings)
        nextSequence = lastSequence
        var orphans: [String] = []
        var waiting: [String] = []
        for task in saved.sorted(by: { $0.sequence < $1.sequence }) {
            let id = task.info.id
            // The model it was resolved to at submit (a runtime's default) is in its metrics.
            let request = Self.placementRequest(for: task.spec, model: task.spec.model ?? task.info.metrics.model)
            if let runtime = task.spec.runtime, request.model == nil, !task.info.state.isTerminal {
                runtimeCatalog.unresolved[runtime, default: []].insert(id)
            }
            // Sent ahead to a worker that had not said it started (ClusterState+Prefetch.swift).
            let prefetched = Self.isSavedPrefetch(task.info, runs: task.runs)
            let waits = task.info.state == .queued && !prefetched && task.retry.backoff == nil && task.spec.hasDependencies
            let placed = task.info.state == .running || prefetched
            // A cancel asked for while it ran is remembered through its reason.
            tasks.restore(TaskRecord(spec: task.spec, info: task.info, sequence: task.sequence, request: request,
                                     cancelRequested: placed && task.info.reason == Self.cancelRequestedReason,
                                     specBytes: task.info.state.isTerminal ? 0 : FrameBudget.admissionSize(of: task.spec),
                                     retry: task.retry, runs: Array(task.runs.suffix(TaskRun.maxKept)),
                                     waitsForDependencies: waits))
            order.append(OrderEntry(sequence: task.sequence, id: id))
            linkIntoTree(id)
            nextSequence = max(nextSequence, task.sequence)
            if !task.info.state.isTerminal, let node = task.retry.avoidNode { avoiding[id] = node }
            switch task.info.state {
            case .queued where prefetched:
                // Kept on its node as prefetched: its registration says whether it started there.
                let name = task.info.node!
                var node = nodes[name] ?? NodeRecord(name: name, slot: index.addNode(name), slots: 0, labels: [:], lastSeenMs: nowMs)
                node.connected = false
                node.assigned[id] = task.info.attempts
                node.prefetched.insert(id)
                node.slots = node.assigned.count
                nodes[name] = node
                if let model = request.model { modelRunning[model, default: 0] += 1 }
                reindex(name, regroup: true)
            case .queued:
                if let backoff = task.retry.backoff {
                    // Waited out whole again, from the first placement round.
                    backoffs.add(id, delayMs: backoff.delayMs)
                } else if waits {
                    waiting.append(id)
                } else {
                    queue.push(id: id, request: request, sequence: task.sequence)
                }
            case .running:
                guard let name = task.info.node, task.info.attempts > 0 else { orphans.append(id); continue }
                // Unknown until it registers: disconnected, holding only its runs.
                var node = nodes[name] ?? NodeRecord(name: name, slot: index.addNode(name), slots: 0, labels: [:], lastSeenMs: nowMs)
                node.connected = false
                node.assigned[id] = task.info.attempts
                node.slots = node.assigned.count
                nodes[name] = node
                if let model = request.model { modelRunning[model, default: 0] += 1 }
                reindex(name, regroup: true)
            default:
                break
            }
        }
        // One whose cancel was asked for ends here (`requeue`), like any other end.
        let cancelled = orphans.filter { requeue($0, reason: "it was running on no known worker", at: at) != nil }
        // Once every task is back: a dependency may come later in submission order.
        settleLater(cancelled + waiting.filter { wireDependencies($0, ended: ended, at: at, restoring: true) }, at: at)
    }

    /// True when something changed since the last `takeChanges()`.
    public var hasChanges: Bool { tasks.hasChanges || drainsChanged || treeCancelsChanged }

    /// What changed since the last call (tasks and run history), for the store; forgets it.
    /// Then the oldest finished tasks past `settings.inMemoryFinished` leave memory: their
    /// last state is in these changes or saved before, so the store has them (`TaskArchive`).
    public mutating func takeChanges() -> StateChanges {
        var changes = tasks.takeChanges()
        if drainsChanged {
            changes.drainedNodes = drainedNames.sorted()
            drainsChanged = false
        }
        if treeCancelsChanged {
            changes.treeCancelRoots = treeCancelRoots
            treeCancelsChanged = false
        }
        if let keep = settings.inMemoryFinished {
            let dropped = tasks.evict(keeping: keep)
            orderHoles += dropped.count
            for id in dropped { avoiding[id] = nil }
            // Compacted once half of it is holes: O(1) amortised per task.
            if orderHoles > 1_024 && orderHoles * 2 > order.count {
                order.removeAll { tasks[$0.id] == nil }
                orderHoles = 0
            }
        }
        return changes
    }
}

// MARK: Retention

extension ClusterState {
    /// The finished tasks retention must keep for now (`TaskStore.purgeFinished`'s `keep`):
    /// those a task in flight names as its `parent` or as a dependency (`after`, `afterAny`),
    /// until it is done. A dependency must stay: a restart judges a queued dependent by the
    /// saved final state of each dependency, and one deleted would count as met.
    /// O(tasks in memory and their dependencies).
    public func referencedIds() -> Set<String> {
        var ids = Set<String>()
        for record in tasks.values where !record.info.state.isTerminal {
            if let parent = record.info.parent { ids.insert(parent) }
            for dependency in record.spec.dependencies { ids.insert(dependency.id) }
        }
        return ids
    }

    /// Whether retention must keep finished task `id` (see `referencedIds`).
    public func isReferenced(_ id: String) -> Bool { referencedIds().contains(id) }

    /// Finished tasks retention deleted from the store leave memory too (no change to save),
    /// and the children index (`TaskTree.drop`); `sequences` (each id's, when known) keep
    /// listings paging past them (`PurgedCursors`).
    public mutating func forget(_ ids: [String], sequences: [UInt64] = []) {
        let before = tasks.count
        for (i, id) in ids.enumerated() {
            if let sequence = i < sequences.count ? sequences[i] : tasks[id]?.sequence {
                purgedCursors.remember(id, sequence: sequence)
            }
            tasks.forget(id)
            // Only a finished task is deleted: one in flight (never, here) keeps its place.
            if tasks[id] == nil { tree.drop(id) }
        }
        orderHoles += before - tasks.count
    }
}
