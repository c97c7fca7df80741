import SwarmProtocol

/// Task dependencies (issue 13 item 4): `after` (the dependency must succeed) and `afterAny`
/// (it must end, in any state).
///
/// A task with a dependency that has not ended is `queued` and held (`TaskRecord.isHeld`):
/// out of the placement queue, so placement never looks at it and it costs a placement round
/// nothing. `DependencyIndex` counts its unmet dependencies. When a task ends (the
/// `.taskEnded` directive, whichever path ended it), `settled` visits that task's dependents
/// only: each whose last unmet dependency it was goes into the placement queue at its
/// submission place; each that needed it to succeed and it did not ends `dependency_failed`,
/// which ends their own dependents the same way, transitively. A dependency waiting out a
/// retry backoff is `queued`, not ended: its dependents keep waiting.
///
/// Tasks that have ended may not be in memory (issue 14: finished tasks live only in the
/// store). The core never takes an id it does not hold for unknown: the shell looks the ids of
/// `unknownDependencies(of:)` up in its store and passes their final states as `ended`
/// (to `submit`, `submitBatch`, and the restoring `init`). While every task is in memory that
/// look-up finds nothing, and an id neither held nor in `ended` is refused.
extension ClusterState {
    /// The dependency ids `specs` name that are neither held in memory nor the id of one of
    /// `specs`, each once: the ones the shell looks up in its store (`ended`).
    public func unknownDependencies(of specs: [TaskSpec]) -> [String] {
        var batch = Set<String>()
        for spec in specs { if let id = spec.id { batch.insert(id) } }
        var seen = Set<String>()
        var result: [String] = []
        for spec in specs {
            for dependency in spec.dependencies where tasks[dependency.id] == nil && !batch.contains(dependency.id) {
                if seen.insert(dependency.id).inserted { result.append(dependency.id) }
            }
        }
        return result
    }

    /// Refuses specs naming a dependency that is not held, not in `ended` and not in the
    /// batch (`batch`: the ids of the specs being submitted), or whose dependencies within the
    /// batch form a cycle. `label(i)` prefixes the error of spec `i` ("task 3: ").
    func checkDependencies(_ specs: [TaskSpec], ended: [String: TaskState],
                           label: (Int) -> String) throws(SchedulerError) {
        var batch: [String: Int] = [:]
        for (index, spec) in specs.enumerated() { if let id = spec.id { batch[id] = index } }
        var hasEdges = false
        for (index, spec) in specs.enumerated() {
            for dependency in spec.dependencies {
                if dependency.id == spec.id {
                    throw .invalidTask("\(label(index))a task cannot depend on itself ('\(dependency.id)')")
                }
                if batch[dependency.id] != nil { hasEdges = true; continue }
                if tasks[dependency.id] == nil && ended[dependency.id] == nil {
                    throw .invalidTask("\(label(index))dependency '\(dependency.id)' is not a known task (nor one of this batch)")
                }
            }
        }
        guard hasEdges, let cycle = DependencyCycle.find(specs, batch: batch) else { return }
        throw .invalidTask("\(label(cycle.first!))the dependencies form a cycle: \(cycle.map { specs[$0].id! }.joined(separator: " -> ")) -> \(specs[cycle.first!].id!)")
    }

    /// Task `id` was just inserted, held (`waitsForDependencies`): it waits for those of its
    /// dependencies that have not ended, goes into the placement queue at once when none is
    /// left, or ends `dependency_failed` when an `after` one has already ended otherwise than
    /// `succeeded`. A dependency neither held nor in `ended` counts as having been met (only a
    /// restored task can have one: the store forgot a dependency it had already waited for).
    /// Returns whether the task ended.
    ///
    /// `restoring`: a dependency found failed does not end the task here but is deferred
    /// (`DependencyIndex.deferEnd`), once per dependency, and the task waits for it: a cascade
    /// a restart interrupted goes on in slices from the first `schedule`, as before the restart.
    @discardableResult
    mutating func wireDependencies(_ id: String, ended: [String: TaskState], at: Int64, restoring: Bool = false) -> Bool {
        guard let record = tasks[id], record.info.state == .queued else { return false }
        var pending: [(id: String, anyEnd: Bool)] = []
        for dependency in record.spec.dependencies {
            guard let state = tasks[dependency.id]?.info.state ?? ended[dependency.id] else { continue }
            if !state.isTerminal {
                pending.append(dependency)
            } else if !dependency.anyEnd && state != .succeeded {
                guard restoring else {
                    endDependencyFailed(id, dependency: dependency.id, state: state, cause: tasks[dependency.id]?.info.reason, at: at)
                    return true
                }
                // Its first waiter defers it (nothing else waits for a task that has ended).
                if !hasDependents(dependency.id) {
                    dependencies.deferEnd(.init(id: dependency.id, state: state, reason: tasks[dependency.id]?.info.reason))
                }
                pending.append(dependency)
            }
        }
        dependencies.wait(id, sequence: record.sequence, for: pending)
        if pending.isEmpty { releaseDependent(id) }
        return false
    }

    /// Tasks one call ends `dependency_failed` at most, about (a task's own dependents are
    /// visited whole): the ends of a cascade past it, and of the tasks that end after them, are
    /// deferred to the next turns (`settleDeferred`). Each end costs the shell a record saved
    /// and its waiters told; 1,000 keep a turn short (see the README's bounds), where a chain
    /// of 100,000 failing at once held the loop for half a minute.
    static let settleSlice = 1_000

    /// `directives` with what the tasks they end cause: for each `.taskEnded`, that task's
    /// dependents released or ended `dependency_failed` (each such end appended, and followed
    /// in turn), up to `settleSlice` such ends; the visits left over are deferred. O(the
    /// dependents of the tasks visited).
    mutating func settled(_ directives: [SchedulerDirective], at: Int64) -> [SchedulerDirective] {
        guard dependencies.dependencyCount > 0 else { return directives }
        var all = directives
        var budget = Self.settleSlice
        followEnds(&all, from: 0, budget: &budget, at: at)
        return all
    }

    /// Whether a cascade goes on in a later turn (the shell asks for one: `schedule` runs
    /// `settleDeferred`).
    public var isSettling: Bool { dependencies.hasDeferred }

    /// The next slice of a deferred cascade (up to `settleSlice` ends, the rest deferred
    /// again), oldest first: the directives of what it ended. `schedule` runs it first, so
    /// what it releases is placed in the same round.
    mutating func settleDeferred(at: Int64) -> [SchedulerDirective] {
        var all: [SchedulerDirective] = []
        var budget = Self.settleSlice
        while budget > 0, let end = dependencies.nextDeferred() {
            budget -= visitDependents(of: end, into: &all, at: at)
        }
        followEnds(&all, from: 0, budget: &budget, at: at)
        return all
    }

    /// Visits the dependents of each `.taskEnded` of `all` from `start` on (and of the ends
    /// that appends), while `budget` lasts; the ends past it are deferred.
    private mutating func followEnds(_ all: inout [SchedulerDirective], from start: Int, budget: inout Int, at: Int64) {
        var next = start
        while next < all.count {
            defer { next += 1 }
            guard case .taskEnded(let id) = all[next], let record = tasks[id], record.info.state.isTerminal else { continue }
            let end = DependencyIndex.Ended(id: id, state: record.info.state, reason: record.info.reason)
            guard budget > 0 else {
                if hasDependents(id) { dependencies.deferEnd(end) }
                continue
            }
            budget -= visitDependents(of: end, into: &all, at: at)
        }
    }

    /// `end`'s dependents released, or ended `dependency_failed` (appended to `all`); returns
    /// how many ended. O(its dependents).
    private mutating func visitDependents(of end: DependencyIndex.Ended, into all: inout [SchedulerDirective], at: Int64) -> Int {
        let (released, failed) = dependencies.ended(end.id, succeeded: end.state == .succeeded)
        for dependent in released { releaseDependent(dependent) }
        var count = 0
        for dependent in failed where endDependencyFailed(dependent, dependency: end.id, state: end.state, cause: end.reason, at: at) {
            all.append(.taskEnded(id: dependent))
            count += 1
        }
        return count
    }

    /// Ends waiting tasks found ended at submit or restore (`wireDependencies`) and their
    /// dependents, keeping the directives for the next `schedule` to hand out (the only moment
    /// the shell takes directives after a submit).
    mutating func settleLater(_ ended: [String], at: Int64) {
        guard !ended.isEmpty else { return }
        undelivered += settled(ended.map { .taskEnded(id: $0) }, at: at)
    }

    /// Whether tasks wait (or waited) for `id`: its end may release some.
    public func hasDependents(_ id: String) -> Bool {
        dependencies.dependents[id] != nil
    }

    /// "waiting for build-3 (running)", "... and 4 more": the first dependency (as named,
    /// `after` first) that has not ended, and how many others have not.
    func dependencyReason(_ id: String) -> String {
        guard let record = tasks[id] else { return "waiting for its dependencies" }
        let more = dependencies.unmetCount(id) - 1
        for dependency in record.spec.dependencies {
            guard let state = tasks[dependency.id]?.info.state, !state.isTerminal else { continue }
            return "waiting for \(dependency.id) (\(state.rawValue))" + (more > 0 ? " and \(more) more" : "")
        }
        return "waiting for its dependencies"
    }

    /// A waiting task's dependencies are all met: into the placement queue, at its place.
    /// Changed in place: nothing the store keeps changes, so the task is not written again (a
    /// layer of 100 released at once would be 100 rows in the turn that places its first
    /// tasks), and the record is not copied (about 6 µs each, most of a layer's release).
    private mutating func releaseDependent(_ id: String) {
        let released = tasks.updateUnsaved(id) { record -> (request: PlacementRequest, sequence: UInt64, held: Bool, unresolved: Bool)? in
            guard record.info.state == .queued, record.waitsForDependencies else { return nil }
            record.waitsForDependencies = false
            let unresolved = record.request.model == nil && (record.spec.model != nil || record.spec.runtime != nil)
            return (record.request, record.sequence, record.isHeld, unresolved)
        }
        guard var release = released ?? nil else { return }
        // Its model is known now (a runtime's default): that is kept, so the task is written.
        if release.unresolved, var record = tasks[id], let model = resolvedModel(for: record.spec) {
            record.request.model = model
            record.info.metrics.model = model
            tasks[id] = record
            release.request = record.request
        }
        if !release.held && !treeCancelPending.contains(id) {
            queue.push(id: id, request: release.request, sequence: release.sequence)
        }
    }

    /// Ends waiting task `id` as `dependency_failed`: its `after` dependency ended `state`.
    /// Returns false when it was not waiting (it ended otherwise meanwhile).
    /// `cause`: the dependency's own reason.
    @discardableResult
    private mutating func endDependencyFailed(_ id: String, dependency: String, state: TaskState, cause: String?, at: Int64) -> Bool {
        guard var record = tasks[id], record.info.state == .queued, record.waitsForDependencies else { return false }
        dependencies.forget(id)
        record.waitsForDependencies = false
        record.info.state = .dependencyFailed
        record.info.reason = Self.dependencyFailedReason(dependency, state, cause: cause)
        record.info.finishedAt = at
        tasks[id] = record
        return true
    }

    /// "dependency build-3 failed"; downstream of that, "dependency test-3 dependency_failed
    /// (build-3 failed)": the task named, and the first failure of the chain (whose name is in
    /// the named task's own reason). Bounded: never the whole chain.
    static func dependencyFailedReason(_ dependency: String, _ state: TaskState, cause: String?) -> String {
        let line = "dependency \(dependency) \(state.rawValue)"
        guard state == .dependencyFailed, let cause, cause.hasPrefix("dependency ") else { return line }
        if let open = cause.firstIndex(of: "("), cause.hasSuffix(")") {
            return line + " " + cause[open...]
        }
        return line + " (" + cause.dropFirst("dependency ".count) + ")"
    }
}

/// A cycle among the dependencies inside one batch (the only place one can arise: a task
/// may name only tasks that exist or are in its batch).
enum DependencyCycle {
    /// The batch positions of one cycle, in order (each depends on the next, the last on the
    /// first), or nil. `batch`: id -> position. O(tasks + dependencies), no recursion.
    static func find(_ specs: [TaskSpec], batch: [String: Int]) -> [Int]? {
        let edges: [[Int]] = specs.map { spec in spec.dependencies.compactMap { batch[$0.id] } }
        // 0: not visited, 1: on the current path, 2: done.
        var color = [UInt8](repeating: 0, count: specs.count)
        for start in specs.indices where color[start] == 0 {
            var path: [(node: Int, next: Int)] = [(start, 0)]
            color[start] = 1
            while let top = path.last {
                if top.next == edges[top.node].count {
                    color[top.node] = 2
                    path.removeLast()
                    continue
                }
                path[path.count - 1].next += 1
                let to = edges[top.node][top.next]
                if color[to] == 1 {
                    let from = path.firstIndex { $0.node == to }!
                    return path[from...].map(\.node)
                }
                if color[to] == 0 {
                    color[to] = 1
                    path.append((to, 0))
                }
            }
        }
        return nil
    }
}
