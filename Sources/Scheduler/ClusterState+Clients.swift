import SwarmProtocol

/// What clients ask of the scheduler: submit, submitBatch, a task, the listing, cancel.
extension ClusterState {
    // MARK: Clients

    /// Accepts a task into the queue and returns its id. `at` (wall) is its `submittedAt`.
    /// `ended`: the final states of dependencies not held in memory, as the shell's store
    /// knows them (`unknownDependencies(of:)`; ClusterState+Dependencies.swift). `archive`:
    /// the tasks that left memory, so that no id is reused.
    public mutating func submit(_ spec: TaskSpec, at: Int64, ended: [String: TaskState] = [:],
                                archive: TaskArchive = .none) throws(SchedulerError) -> String {
        try submit(spec, request: nil, at: at, ended: ended, archive: archive)
    }

    /// `submit`, with the placement request given rather than read from the spec (nil: read
    /// it from the spec). For tests and the placement benchmark while the spec cannot carry
    /// runtime, model, constraints and priority.
    @_spi(PlacementInput)
    public mutating func submit(_ spec: TaskSpec, request given: PlacementRequest?, at: Int64,
                                ended: [String: TaskState] = [:],
                                archive: TaskArchive = .none) throws(SchedulerError) -> String {
        if let problem = spec.problem() { throw .invalidTask(problem) }
        var id = spec.id ?? TaskID.generate(at: at)
        while spec.id == nil && tasks[id] != nil { id = TaskID.generate(at: at) }
        // An id is never reused, also not one of a task that left memory.
        if tasks[id] != nil || archive.contains(id) { throw .duplicateId(id) }
        var stored = spec
        stored.id = id
        let bytes = try admission(stored)
        try checkDependencies([stored], ended: ended, label: { _ in "" })
        insert(stored, specBytes: bytes, request: given, at: at)
        if wireDependencies(id, ended: ended, at: at) { settleLater([id], at: at) }
        return id
    }

    /// Queues a spec that passed every check (its id set and free); one with dependencies is
    /// held until `wireDependencies` has looked at them.
    private mutating func insert(_ stored: TaskSpec, specBytes: Int, request given: PlacementRequest?, at: Int64) {
        let id = stored.id!
        nextSequence += 1
        var info = TaskInfo(id: id, state: .queued, command: stored.command, submittedAt: at)
        info.parent = stored.parent
        info.priority = stored.priority ?? 0
        info.labels = stored.labels
        // Names only: the values stay sealed in the spec (`SecretSealing`).
        info.secretEnv = stored.secretEnv.map { secrets in secrets.mapValues { _ in TaskInfo.hiddenValue } }
        info.after = stored.after
        info.afterAny = stored.afterAny
        info.metrics.runtime = stored.runtime
        // Resolved now (a runtime's default as workers report it), so limits and listings see it.
        let model = given == nil ? resolvedModel(for: stored) : stored.model
        info.metrics.model = model
        if let runtime = stored.runtime, model == nil, given == nil { runtimeCatalog.unresolved[runtime, default: []].insert(id) }
        let request = given ?? Self.placementRequest(for: stored, model: model)
        let waits = stored.hasDependencies
        tasks[id] = TaskRecord(spec: stored, info: info, sequence: nextSequence, request: request, specBytes: specBytes,
                               waitsForDependencies: waits)
        if !waits { queue.push(id: id, request: request, sequence: nextSequence) }
        order.append(OrderEntry(sequence: nextSequence, id: id))
        linkIntoTree(id)
    }

    /// The task with its runs (`TaskInfo.runs`), from memory or else `archive`.
    public func task(_ id: String, archive: TaskArchive = .none) throws(SchedulerError) -> TaskInfo {
        if let record = tasks[id] {
            var info = record.info
            info.runs = record.runs
            return info
        }
        guard let old = archive.task(id) else { throw .unknownTask(id) }
        var info = old.info
        info.runs = old.runs
        return info
    }

    /// The tasks in memory in submission order, without their output.
    public func listTasks() -> [TaskInfo] {
        order.compactMap { entry in
            guard var info = tasks[entry.id]?.info else { return nil }
            info.output = nil
            return info
        }
    }

    /// Tasks in memory (in flight and recently finished): bounded by the in-flight ones plus
    /// `settings.inMemoryFinished`.
    public var tasksInMemory: Int { tasks.count }

    /// Submits many tasks at once, all or nothing. A task whose id exists with the same spec
    /// is not submitted again (it is listed in `existing`); with another spec it is an error.
    /// Dependencies may name any task of the batch (not in a cycle). `at` (wall) is their
    /// `submittedAt`; `ended` and `archive` as for `submit`.
    public mutating func submitBatch(_ specs: [TaskSpec], at: Int64, ended: [String: TaskState] = [:],
                                     archive: TaskArchive = .none) throws(SchedulerError) -> (ids: [String], existing: [String]) {
        // Before any work: a batch's edges are bounded (`Bounds.batchDependencies`).
        if let problem = Bounds.batchDependencyProblem(specs) { throw .invalidTask(problem) }
        var seen: Set<String> = []
        var sizes: [Int] = []
        sizes.reserveCapacity(specs.count)
        // A generated id is at most this long: the size measured with it is an upper bound.
        let placeholder = String(repeating: "x", count: TaskID.maxGeneratedLength)
        for (index, spec) in specs.enumerated() {
            if let problem = spec.problem() { throw .invalidTask("task \(index + 1): \(problem)") }
            var sized = spec
            sized.id = spec.id ?? placeholder
            do { sizes.append(try admission(sized)) } catch {
                guard case .invalidTask(let reason) = error else { throw error }
                throw .invalidTask("task \(index + 1): \(reason)")
            }
            guard let id = spec.id else { continue }
            if !seen.insert(id).inserted { throw .invalidTask("task \(index + 1): id '\(id)' appears twice in the batch") }
            if let existing = tasks[id]?.spec ?? archive.task(id)?.spec, existing != spec { throw .duplicateId(id) }
        }
        let given = specs.compactMap(\.id)
        if let problem = FrameBudget.batchReplyProblem(givenIds: given, generated: specs.count - given.count) {
            throw .invalidTask(problem)
        }
        try checkDependencies(specs, ended: ended, label: { "task \($0 + 1): " })
        var ids: [String] = []
        var existing: [String] = []
        var inserted: [String] = []
        for (index, spec) in specs.enumerated() {
            if let id = spec.id, tasks[id] != nil || archive.contains(id) {
                ids.append(id)
                existing.append(id)
                continue
            }
            var stored = spec
            var id = spec.id ?? TaskID.generate(at: at)
            while spec.id == nil && tasks[id] != nil { id = TaskID.generate(at: at) }
            stored.id = id
            insert(stored, specBytes: sizes[index], request: nil, at: at)
            ids.append(id)
            if spec.hasDependencies { inserted.append(id) }
        }
        // Wired once all are in: a task may name one later in the batch.
        settleLater(inserted.filter { wireDependencies($0, ended: ended, at: at) }, at: at)
        return (ids, existing)
    }

    /// Cancels a task: a queued one ends now; a running one is killed on its worker (its
    /// result then says `cancelled`). Ending tasks cannot be cancelled. `at` (wall): a queued
    /// one's `finishedAt`.
    /// `dequeued`: the caller took it out of the placement queue already (`cancelTree`).
    public mutating func cancel(_ id: String, at: Int64, dequeued: Bool = false) throws(SchedulerError) -> [SchedulerDirective] {
        guard var record = tasks[id] else { throw .unknownTask(id) }
        if record.info.state.isTerminal { throw .alreadyEnded(id, record.info.state) }
        // A prefetched one ends now too; its worker is told to drop it (ClusterState+Prefetch.swift).
        if record.info.state == .queued && isPrefetched(id) { return cancelPrefetched(id, at: at) }
        if record.info.state == .queued {
            if !dequeued { queue.remove(id: id, request: record.request) }
            record.info.state = .cancelled
            record.info.reason = record.waitsForDependencies ? "cancelled while waiting for its dependencies"
                : record.isHeld ? "cancelled while waiting to retry" : "cancelled before it ran"
            record.info.finishedAt = at
            record.retry.backoff = nil
            backoffs.remove(id)
            avoiding[id] = nil
            if record.waitsForDependencies { dependencies.forget(id) }
            record.waitsForDependencies = false
            tasks[id] = record
            return settled([.taskEnded(id: id)], at: at)
        }
        guard !record.cancelRequested else { return [] }
        record.cancelRequested = true
        record.info.reason = Self.cancelRequestedReason
        tasks[id] = record
        guard let node = record.info.node, nodes[node]?.assigned[id] == record.info.attempts else { return [] }
        return [.kill(node: node, run: RunRef(id: id, attempt: record.info.attempts), reason: "cancelled by user")]
    }

    static let cancelRequestedReason = "cancel requested"
}
