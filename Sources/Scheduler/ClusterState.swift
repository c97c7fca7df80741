import SwarmProtocol

/// Errors the scheduler returns to clients.
public enum SchedulerError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidTask(String)
    case duplicateId(String)
    case unknownTask(String)
    case workerNameInUse(String)
    case invalidRegistration(String)
    case alreadyEnded(String, TaskState)
    case unknownNode(String)
    /// `rerun` of a task that has not finished.
    case notEnded(String, TaskState)

    public var description: String {
        switch self {
        case .invalidTask(let reason): "invalid task: \(reason)"
        case .duplicateId(let id): "a task with id '\(id)' already exists"
        case .unknownTask(let id): "no task with id '\(id)'"
        case .workerNameInUse(let name): "a worker named '\(name)' is already connected"
        case .invalidRegistration(let reason): "invalid registration: \(reason)"
        case let .alreadyEnded(id, state): "task '\(id)' has already ended (\(state.rawValue))"
        case .unknownNode(let name): "no worker named '\(name)'"
        case let .notEnded(id, state): "task '\(id)' has not finished (\(state.rawValue)): only a finished task can be rerun"
        }
    }

    public var code: ErrorCode {
        switch self {
        case .invalidTask: .invalidTask
        case .duplicateId: .duplicateId
        case .unknownTask: .unknownTask
        case .workerNameInUse, .invalidRegistration: .badMessage
        case .alreadyEnded: .taskEnded
        case .unknownNode: .unknownNode
        case .notEnded: .invalidTask
        }
    }
}

/// What the scheduler's shell must do after a state change.
public enum SchedulerDirective: Equatable, Sendable {
    case assign(node: String, TaskAssignment)
    case ackResult(node: String, run: RunRef)
    /// The node has a run that is no longer the task's current one: kill it there.
    case kill(node: String, run: RunRef, reason: String)
    /// A task reached a terminal state (wake its waiters).
    case taskEnded(id: String)
    case nodeLost(name: String)
}

/// Scheduler settings that the state machine uses.
public struct SchedulerSettings: Sendable {
    public var lostAfterMs: Int64 = 10_000
    public var heartbeatMs: Int = 1_000
    /// Runs per task before it is given up as `lost` (after node losses).
    public var maxAttempts = 3
    /// How placement ranks the nodes a task fits on.
    public var placementPolicy: PlacementPolicy = .spread
    /// Cluster-wide limits on running tasks per model (model name -> most running at once).
    /// A model not listed has no limit; a limit of 0 makes its tasks unplaceable.
    public var modelLimits: [String: Int] = [:]
    /// The heartbeats per second the scheduler aims to receive from all workers together:
    /// past `heartbeatMs * maxHeartbeatsPerSecond / 1000` workers, intervals grow (Nomad's rule).
    public var maxHeartbeatsPerSecond = 50
    /// The packed inputs of one task together (the sum of its `inputBlobs` sizes) at most
    /// (cluster.json `scheduler.maxInputBytesPerTask`).
    public var maxInputBytesPerTask = BlobLimits.defaultInputBytesPerTask
    /// Finished tasks kept in memory at most (cluster.json
    /// `scheduler.retention.inMemoryFinished`): past it the oldest finished leave memory once
    /// saved, and are read from the store (`TaskArchive`). Nil: every task stays (a scheduler
    /// without a store, which would otherwise forget them).
    public var inMemoryFinished: Int?
    /// Assignments a worker may hold beyond its slots (cluster.json `scheduler.prefetch`):
    /// when no worker has a free slot that fits a queued task, it may be sent ahead to a
    /// worker whose slots are all busy, which starts it the moment one frees (no round trip).
    /// Only to workers that say they hold such assignments (`Register.prefetch`); 0: never.
    public var prefetch = SchedulerSettings.defaultPrefetch
    /// `prefetch` when cluster.json and the flags say nothing.
    public static let defaultPrefetch = 1
    /// The most `prefetch` may be set to (per worker).
    public static let maxPrefetch = 64
    /// Seeds the retry backoff's jitter (`RetryPolicy`): the same seed, the same waits (tests).
    /// Nil: a random seed.
    public var retrySeed: UInt64?

    /// The heartbeat interval for a cluster of `nodes` workers, before jitter: the base
    /// interval, or longer, so that all workers together send at most
    /// `maxHeartbeatsPerSecond` heartbeats per second.
    public func heartbeatInterval(nodes: Int) -> Int {
        max(heartbeatMs, (max(0, nodes) * 1000 + maxHeartbeatsPerSecond - 1) / max(1, maxHeartbeatsPerSecond))
    }

    /// How long a worker told to beat every `intervalMs` may stay silent before it is lost:
    /// `lostAfterMs`, or three of its intervals if that is longer.
    public func lostAfter(intervalMs: Int) -> Int64 {
        max(lostAfterMs, 3 * Int64(intervalMs))
    }

    public init(lostAfterMs: Int64 = 10_000, heartbeatMs: Int = 1_000, maxAttempts: Int = 3,
                placementPolicy: PlacementPolicy = .spread, modelLimits: [String: Int] = [:]) {
        self.lostAfterMs = lostAfterMs
        self.heartbeatMs = heartbeatMs
        self.maxAttempts = maxAttempts
        self.placementPolicy = placementPolicy
        self.modelLimits = modelLimits
    }
}

/// The whole cluster as the scheduler knows it: a pure value. Inputs that measure time carry
/// `nowMs` (monotonic milliseconds: liveness, `--lost-after`, holds); inputs that date
/// something carry `at` (wall-clock unix milliseconds: `submittedAt`, `placedAt`,
/// `finishedAt`, generated ids). No duration is measured on `at`, so stepping the wall clock
/// loses no worker and lifts no hold. Every output is a list of directives for the shell.
/// Placement (`schedule`, wait reasons) is in ClusterState+Placement.swift.
public struct ClusterState: Sendable {
    struct NodeRecord: Sendable {
        var name: String
        /// Its slot in the `NodeIndex`.
        var slot: Int
        var slots: Int
        var labels: [String: String]
        /// Runtimes it has, by name, and whether each is healthy.
        var runtimes: [String: Bool] = [:]
        /// Whether it runs plain commands (tasks without a runtime).
        var allowsCommands = true
        var state: NodeState = .ready
        var connected = true
        /// Monotonic: when the scheduler last heard from it (or restored it, or forgave a stall).
        var lastSeenMs: Int64
        var address: String?
        /// Runs placed here that count: task id -> attempt.
        var assigned: [String: Int] = [:]
        /// Runs being killed here (no longer the task's current run): they hold their slot
        /// until the worker reports them gone, so the node is never over-committed.
        var dying: [String: Int] = [:]
        /// Runs that ended here but are no longer current (e.g. from before a scheduler restart)
        /// whose results are still on their way: ignored when they come, and no new run of
        /// that task goes to this node before they have (the two would share an attempt number).
        var stale: [String: Int] = [:]
        /// No placements here before this monotonic time (set when the worker refuses one); 0
        /// once the hold has been released by `schedule`.
        var holdUntilMs: Int64 = 0
        /// The worker said it is stopping.
        var leaving = false
        /// A user drained it (`swarm drain`): it stays draining across reconnects.
        var drained = false
        var completed = 0
        /// The heartbeat interval the worker was given at registration.
        var heartbeatMs = 0
        /// Runtimes and their health as the worker last reported them.
        var runtimeStatus: [RuntimeStatus] = []
        /// Slots the worker's health probes hold.
        var probing = 0
        /// The worker holds prefetched assignments until a slot frees (`Register.prefetch`).
        var holdsPrefetched = false
        /// The worker handed back (refused) a prefetched run, one held too long without a free
        /// slot: no more are sent ahead to it until one of its runs ends (a result from it), so
        /// a worker whose slots stay busy for minutes does not take and return the queue's head
        /// every hold period. In memory: a registration clears it.
        var prefetchPaused = false
        /// Runs of `assigned` sent ahead (prefetched) whose start the worker has not reported:
        /// their tasks show `queued`. They count in `assigned` (so in the slot arithmetic) but
        /// not as running.
        var prefetched: Set<String> = []
        /// Prefetched runs the worker says started while the scheduler still counts all slots
        /// running (their slot's result not in yet, e.g. resent after a reconnect): running once
        /// that result comes (`promoteStarted`), so `running` never exceeds `slots`.
        var startedEarly: Set<String> = []
        /// Prefetched runs cancelled before they started (their tasks ended `cancelled`): the
        /// worker is told to drop them; they hold their slot, not counted running, until it
        /// reports them (or registers again, or is lost).
        var dropping: [String: Int] = [:]

        var freeSlots: Int { max(0, slots - assigned.count - dying.count - dropping.count - probing) }
        /// Runs that have (or may have) a process here: assigned and started, and dying.
        var running: Int { assigned.count - prefetched.count + dying.count }
    }

    struct TaskRecord: Sendable {
        var spec: TaskSpec
        var info: TaskInfo
        var sequence: UInt64
        var request: PlacementRequest
        /// A user cancelled it while it ran: its run is being killed; it never runs again.
        var cancelRequested = false
        /// Its spec's size as JSON (`FrameBudget`), measured when it was accepted.
        var specBytes = 0
        /// Retries and node-loss requeues so far, and the backoff it waits out (saved).
        var retry = RetryState()
        /// Its runs, oldest first, at most `TaskRun.maxKept`: written where runs begin and
        /// end (placement, results, requeues, refusals); `TaskTable` turns their changes into
        /// the store's run history.
        var runs: [TaskRun] = []

        /// It has dependencies that have not all ended (`DependencyIndex` counts them): it
        /// stays `queued`, held. Not saved: a restart finds it again from its spec.
        var waitsForDependencies = false

        /// Queued, but out of the placement queue until something it waits for happens: its
        /// retry backoff, or its dependencies (ClusterState+Dependencies.swift).
        var isHeld: Bool { retry.backoff != nil || waitsForDependencies }
    }

    public let settings: SchedulerSettings
    // Internal rather than private(set) so that ClusterState+Placement.swift can update them;
    // nothing else in the module does.
    var nodes: [String: NodeRecord] = [:]
    /// Workers a user drained (`swarm drain`), by name, whether connected or not: saved, so a
    /// worker that registers after a scheduler restart is draining again until `undrain`.
    public internal(set) var drainedNames: Set<String> = []
    /// `drainedNames` changed since the last `takeChanges()`.
    var drainsChanged = false
    var tasks = TaskTable()
    var queue = PlacementQueue()
    /// Usable nodes, grouped and ranked for placement; kept in step by `reindex`.
    var index: NodeIndex
    /// Running (assigned) tasks per model, cluster-wide.
    var modelRunning: [String: Int] = [:]
    /// Nodes with a hold (`holdUntilMs != 0`) that `schedule` has to release in time.
    var heldNodes: Set<String> = []
    /// Nodes with dying or stale runs: their tasks get no new run there yet.
    var nodesWithOldRuns: Set<String> = []
    /// Usable nodes with no free slot that may take a prefetched assignment now
    /// (ClusterState+Prefetch.swift); kept in step by `reindex`. Empty when prefetch is off.
    var prefetchRoom: Set<String> = []
    // The next three are changed only by ClusterState's own files (restore, results).
    var nextSequence: UInt64 = 0
    /// Submission order of the tasks in memory, for listings (entries of tasks that left
    /// memory are skipped, and compacted away once they are half of it).
    var order: [OrderEntry] = []
    /// Entries of `order` whose task left memory.
    var orderHoles = 0
    /// Counters for `swarm stats`.
    var stats = StatsLedger()
    /// Runtime definitions as workers report them (ClusterState+Admission.swift).
    var runtimeCatalog = RuntimeCatalog()
    /// Tasks waiting out a retry backoff (ClusterState+Retries.swift).
    var backoffs = BackoffTimers()
    /// Retried tasks not placed yet -> the node their last run failed on (placement prefers
    /// another).
    var avoiding: [String: String] = [:]
    /// The backoff's jitter.
    var jitter: RetryJitter
    /// Which held tasks wait for which (ClusterState+Dependencies.swift).
    var dependencies = DependencyIndex()
    /// Ends found at submit or restore (`dependency_failed`), for the next `schedule` to
    /// hand to the shell.
    var undelivered: [SchedulerDirective] = []
    /// Parent -> children, and the roots (ClusterState+Trees.swift).
    var tree = TaskTree()
    /// Queued tasks of a `cancel --recursive` under way, not ended yet (`TreeCancelJob`): out
    /// of the placement queue, kept out of it, and taking no children. After a restart they
    /// are found again from `treeCancelRoots` (ClusterState+TreeCancel.swift).
    var treeCancelPending: Set<String> = []
    /// The roots of the tree cancels under way, one entry per cancel (saved with the turn that
    /// began it, removed with its last slice), so a scheduler restarted mid-cancel resumes it
    /// rather than queueing the rest of the tree again.
    public internal(set) var treeCancelRoots: [String] = []
    /// `treeCancelRoots` changed since the last `takeChanges()`.
    var treeCancelsChanged = false
    /// Where listings named by a task retention deleted go on (ClusterState+Listing.swift).
    var purgedCursors = PurgedCursors()

    public init(settings: SchedulerSettings = SchedulerSettings()) {
        self.settings = settings
        self.index = NodeIndex(policy: settings.placementPolicy)
        self.jitter = RetryJitter(seed: settings.retrySeed ?? UInt64.random(in: 0...UInt64.max))
    }

    public var queuedCount: Int { queue.count }

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

    /// Every node; `nowMs` (monotonic) gives their `lastSeenMsAgo`.
    public func listNodes(nowMs: Int64) -> [NodeInfo] {
        nodes.values.sorted { $0.name < $1.name }.map { node in
            NodeInfo(name: node.name, slots: node.slots, freeSlots: node.freeSlots,
                     running: node.running, state: node.state, labels: node.labels,
                     address: node.address, connected: node.connected,
                     lastSeenMsAgo: max(0, nowMs - node.lastSeenMs), completed: node.completed,
                     runtimes: node.runtimeStatus, allowsCommands: node.allowsCommands,
                     prefetched: node.prefetched.count)
        }
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

    /// Runs of cancelled tasks still going on `node` (told again when it reconnects).
    public func cancelKills(node name: String) -> [SchedulerDirective] {
        guard let node = nodes[name] else { return [] }
        return node.assigned.sorted { $0.key < $1.key }.compactMap { id, attempt in
            tasks[id]?.cancelRequested == true
                ? .kill(node: name, run: RunRef(id: id, attempt: attempt), reason: "cancelled by user") : nil
        }
    }

    /// `swarm drain`: nothing new is placed on the node; what runs there finishes.
    public mutating func drain(node name: String) throws(SchedulerError) {
        guard var node = nodes[name] else { throw .unknownNode(name) }
        node.drained = true
        if node.state != .lost { node.state = .draining }
        nodes[name] = node
        reindex(name)
        if drainedNames.insert(name).inserted { drainsChanged = true }
    }

    /// `swarm undrain`: undoes `drain`. A connected worker that is not stopping is `ready`
    /// again (the caller runs a placement round); a lost or disconnected one comes back
    /// `ready` when it registers. Undraining a worker that is not drained changes nothing.
    /// A name the scheduler only knows as drained (saved before a restart, not registered
    /// since) is accepted too, so a drain can be undone before its worker comes back.
    public mutating func undrain(node name: String) throws(SchedulerError) {
        guard nodes[name] != nil || drainedNames.contains(name) else { throw .unknownNode(name) }
        if drainedNames.remove(name) != nil { drainsChanged = true }
        guard var node = nodes[name], node.drained else { return }
        node.drained = false
        if node.state == .draining && node.connected && !node.leaving { node.state = .ready }
        nodes[name] = node
        reindex(name)
    }

    /// The drained names a restart read from the store (before any worker registers).
    public mutating func restoreDrained(_ names: [String]) {
        drainedNames = Set(names)
        for name in names where nodes[name] != nil {
            nodes[name]?.drained = true
            if nodes[name]?.state != .lost { nodes[name]?.state = .draining }
            reindex(name)
        }
    }

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

    /// `swarm stats`: per worker and cluster-wide, by model.
    public func statistics() -> (cluster: StatsBlock, workers: [String: StatsBlock]) {
        var running: [String: [String?]] = [:]
        for node in nodes.values {
            running[node.name] = node.assigned.keys.filter { !node.prefetched.contains($0) }.map { tasks[$0]?.info.metrics.model }
        }
        return stats.report(running: running, health: nodes.mapValues(\.runtimeStatus))
    }
}
