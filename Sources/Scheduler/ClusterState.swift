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

    public var description: String {
        switch self {
        case .invalidTask(let reason): "invalid task: \(reason)"
        case .duplicateId(let id): "a task with id '\(id)' already exists"
        case .unknownTask(let id): "no task with id '\(id)'"
        case .workerNameInUse(let name): "a worker named '\(name)' is already connected"
        case .invalidRegistration(let reason): "invalid registration: \(reason)"
        case let .alreadyEnded(id, state): "task '\(id)' has already ended (\(state.rawValue))"
        case .unknownNode(let name): "no worker named '\(name)'"
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

/// The whole cluster as the scheduler knows it: a pure value. Every input carries `nowMs`
/// (unix milliseconds); every output is a list of directives for the shell to carry out.
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
        /// No placements here before this time (set when the worker refuses one); 0 once the
        /// hold has been released by `schedule`.
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

        var freeSlots: Int { max(0, slots - assigned.count - dying.count - probing) }
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
    }

    public let settings: SchedulerSettings
    // Internal rather than private(set) so that ClusterState+Placement.swift can update them;
    // nothing else in the module does.
    var nodes: [String: NodeRecord] = [:]
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
    private var nextSequence: UInt64 = 0
    /// Submission order, for listings.
    private(set) var order: [String] = []
    /// Counters for `swarm stats`.
    private(set) var stats = StatsLedger()
    /// Runtime definitions as workers report them (ClusterState+Admission.swift).
    var runtimeCatalog = RuntimeCatalog()

    public init(settings: SchedulerSettings = SchedulerSettings()) {
        self.settings = settings
        self.index = NodeIndex(policy: settings.placementPolicy)
    }

    public var queuedCount: Int { queue.count }

    // MARK: Clients

    /// Accepts a task into the queue and returns its id.
    public mutating func submit(_ spec: TaskSpec, nowMs: Int64) throws(SchedulerError) -> String {
        try submit(spec, request: nil, nowMs: nowMs)
    }

    /// `submit`, with the placement request given rather than read from the spec (nil: read
    /// it from the spec). For tests and the placement benchmark while the spec cannot carry
    /// runtime, model, constraints and priority.
    @_spi(PlacementInput)
    public mutating func submit(_ spec: TaskSpec, request given: PlacementRequest?, nowMs: Int64) throws(SchedulerError) -> String {
        if let problem = spec.problem() { throw .invalidTask(problem) }
        var id = spec.id ?? TaskID.generate(nowMs: nowMs)
        while spec.id == nil && tasks[id] != nil { id = TaskID.generate(nowMs: nowMs) }
        if tasks[id] != nil { throw .duplicateId(id) }
        var stored = spec
        stored.id = id
        let bytes = try admission(stored)
        insert(stored, specBytes: bytes, request: given, nowMs: nowMs)
        return id
    }

    /// Queues a spec that passed every check (its id set and free).
    private mutating func insert(_ stored: TaskSpec, specBytes: Int, request given: PlacementRequest?, nowMs: Int64) {
        let id = stored.id!
        nextSequence += 1
        var info = TaskInfo(id: id, state: .queued, command: stored.command, submittedAt: nowMs)
        info.parent = stored.parent
        info.priority = stored.priority ?? 0
        info.labels = stored.labels
        info.metrics.runtime = stored.runtime
        // Resolved now (a runtime's default as workers report it), so limits and listings see it.
        let model = given == nil ? resolvedModel(for: stored) : stored.model
        info.metrics.model = model
        if let runtime = stored.runtime, model == nil, given == nil { runtimeCatalog.unresolved[runtime, default: []].insert(id) }
        let request = given ?? Self.placementRequest(for: stored, model: model)
        tasks[id] = TaskRecord(spec: stored, info: info, sequence: nextSequence, request: request, specBytes: specBytes)
        queue.push(id: id, request: request, sequence: nextSequence)
        order.append(id)
    }

    public func task(_ id: String) throws(SchedulerError) -> TaskInfo {
        guard let record = tasks[id] else { throw .unknownTask(id) }
        return record.info
    }

    /// All tasks in submission order, without their output.
    public func listTasks() -> [TaskInfo] {
        order.compactMap { id in
            guard var info = tasks[id]?.info else { return nil }
            info.output = nil
            return info
        }
    }

    public func listNodes(nowMs: Int64) -> [NodeInfo] {
        nodes.values.sorted { $0.name < $1.name }.map { node in
            NodeInfo(name: node.name, slots: node.slots, freeSlots: node.freeSlots,
                     running: node.assigned.count + node.dying.count, state: node.state, labels: node.labels,
                     address: node.address, connected: node.connected,
                     lastSeenMsAgo: max(0, nowMs - node.lastSeenMs), completed: node.completed,
                     runtimes: node.runtimeStatus, allowsCommands: node.allowsCommands)
        }
    }

    // MARK: Workers

    /// A worker (re)connects. `running` and `finished` are the runs it has and the results it
    /// still holds: runs assigned to it in neither were never started there and go back to the
    /// queue; runs it has that are no longer current are killed there (and hold their slot
    /// until they are reported gone).
    public mutating func register(node name: String, slots: Int, labels: [String: String],
                                  running: [RunRef], finished: [RunRef], address: String?,
                                  nowMs: Int64) throws(SchedulerError) -> [SchedulerDirective] {
        guard slots >= 1 && slots <= 100_000 else { throw .invalidRegistration("slots must be 1 to 100000, got \(slots)") }
        if let existing = nodes[name], existing.connected { throw .workerNameInUse(name) }
        var directives: [SchedulerDirective] = []
        var node = nodes[name] ?? NodeRecord(name: name, slot: index.addNode(name), slots: slots, labels: labels, lastSeenMs: nowMs)
        node.slots = slots
        node.labels = labels
        node.connected = true
        node.lastSeenMs = nowMs
        node.address = address
        node.holdUntilMs = 0
        node.leaving = false
        node.state = node.drained ? .draining : .ready
        let reported = Set(running).union(finished)
        for (id, attempt) in node.assigned.sorted(by: { $0.key < $1.key }) where !reported.contains(RunRef(id: id, attempt: attempt)) {
            node.assigned[id] = nil
            released(id)
            if let ended = requeue(id, reason: "its worker restarted without it", nowMs: nowMs) { directives.append(ended) }
        }
        node.dying = [:]
        node.stale = [:]
        for run in running where node.assigned[run.id] != run.attempt {
            node.dying[run.id] = run.attempt
            directives.append(.kill(node: name, run: run, reason: "this run of the task is no longer current"))
        }
        for run in finished where node.assigned[run.id] != run.attempt {
            node.stale[run.id] = run.attempt
        }
        nodes[name] = node
        reindex(name, regroup: true)
        return directives
    }

    /// Any message from a worker is a sign of life.
    public mutating func seen(node name: String, nowMs: Int64) {
        guard nodes[name]?.state != .lost else { return }
        nodes[name]?.lastSeenMs = nowMs
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
    /// as seen now.
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
    public mutating func disconnected(node name: String, nowMs: Int64) -> [SchedulerDirective] {
        guard var node = nodes[name] else { return [] }
        node.connected = false
        var directives: [SchedulerDirective] = []
        if node.leaving {
            let orphans = node.assigned.keys.sorted()
            node.assigned = [:]
            node.dying = [:]
            nodes[name] = node
            for id in orphans {
                released(id)
                if let ended = requeue(id, reason: "worker \(name) left", nowMs: nowMs) { directives.append(ended) }
            }
        }
        nodes[name] = node
        reindex(name)
        return directives
    }

    public mutating func taskStarted(node name: String, run: RunRef, startedAt: Int64) {
        guard Bounds.timestampMs.contains(startedAt), nodes[name]?.assigned[run.id] == run.attempt,
              tasks[run.id]?.info.attempts == run.attempt else { return }
        tasks[run.id]?.info.startedAt = startedAt
    }

    /// A worker reports how a run ended. It is always acknowledged (so the worker stops
    /// resending); it counts only for the task's current run on that worker. A run ended as
    /// `lost` (its worker shut down under it) goes back to the queue.
    public mutating func taskFinished(node name: String, result: TaskResult, nowMs: Int64) -> [SchedulerDirective] {
        // A number out of range ends the run as failed, saying why (`TaskResult.problem`).
        let result = result.withValidNumbers(nowMs: nowMs)
        var directives: [SchedulerDirective] = [.ackResult(node: name, run: RunRef(id: result.id, attempt: result.attempt))]
        guard var node = nodes[name] else { return directives }
        if node.dying[result.id] == result.attempt || node.stale[result.id] == result.attempt {
            node.dying[result.id] = nil
            node.stale[result.id] = nil
            nodes[name] = node
            reindex(name)
            return directives
        }
        guard node.assigned[result.id] == result.attempt, var record = tasks[result.id],
              record.info.attempts == result.attempt, !record.info.state.isTerminal else {
            return directives
        }
        node.assigned[result.id] = nil
        released(result.id)
        // Lost (its worker shut down under it) and health_failed (the runtime broke between
        // placement and start) are the worker's trouble, not the task's: it runs elsewhere.
        if (result.state == .lost || result.state == .healthFailed) && !record.cancelRequested {
            nodes[name] = node
            reindex(name)
            stats.runEnded(node: name, model: record.info.metrics.model, result: result, requeued: true)
            if let ended = requeue(result.id, reason: result.reason ?? "its worker shut down", nowMs: nowMs, finalState: result.state) {
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
        var metrics = result.metrics
        metrics.node = name
        metrics.runtime = metrics.runtime ?? record.spec.runtime
        metrics.model = metrics.model ?? record.info.metrics.model
        record.info.metrics = metrics
        if record.cancelRequested && result.state != .succeeded {
            record.info.state = .cancelled
        }
        tasks[result.id] = record
        stats.runEnded(node: name, model: metrics.model, result: result, requeued: false)
        directives.append(.taskEnded(id: result.id))
        return directives
    }

    /// A worker refused a run; the task goes back to the queue without using an attempt, and
    /// the worker gets no new placement for a second (so a refusal cannot become a hot loop).
    /// A `permanent` refusal (the worker could not read the assignment) ends the task `failed`
    /// with that reason instead: it would fail the same way anywhere, and the worker is fine.
    @discardableResult
    public mutating func taskRejected(node name: String, run: RunRef, nowMs: Int64,
                                      permanent reason: String? = nil) -> [SchedulerDirective] {
        guard nodes[name]?.assigned[run.id] == run.attempt, var record = tasks[run.id] else { return [] }
        nodes[name]?.assigned[run.id] = nil
        if reason == nil { nodes[name]?.holdUntilMs = nowMs + 1_000 }
        released(run.id)
        reindex(name)
        if let reason {
            record.info.state = record.cancelRequested ? .cancelled : .failed
            // A worker's text, bounded: it lands in every status reply of the task.
            record.info.reason = "worker \(name) could not take it: \(reason.prefix(1024))"
            record.info.finishedAt = nowMs
            tasks[run.id] = record
            return [.taskEnded(id: run.id)]
        }
        record.info.attempts = max(0, record.info.attempts - 1)
        tasks[run.id] = record
        requeue(run.id, reason: nil, nowMs: nowMs)
        return []
    }

    // MARK: Time and placement

    /// Marks workers silent past `lostAfterMs` as lost and requeues their tasks.
    public mutating func tick(nowMs: Int64) -> [SchedulerDirective] {
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
            node.assigned = [:]
            node.dying = [:]
            node.stale = [:]
            nodes[name] = node
            reindex(name)
            directives.append(.nodeLost(name: name))
            for id in orphans {
                released(id)
                if let ended = requeue(id, reason: "worker \(name) was lost", nowMs: nowMs) { directives.append(ended) }
            }
        }
        return directives
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

    /// Cancels a task: a queued one ends now; a running one is killed on its worker (its
    /// result then says `cancelled`). Ending tasks cannot be cancelled.
    public mutating func cancel(_ id: String, nowMs: Int64) throws(SchedulerError) -> [SchedulerDirective] {
        guard var record = tasks[id] else { throw .unknownTask(id) }
        if record.info.state.isTerminal { throw .alreadyEnded(id, record.info.state) }
        if record.info.state == .queued {
            queue.remove(id: id, request: record.request)
            record.info.state = .cancelled
            record.info.reason = "cancelled before it ran"
            record.info.finishedAt = nowMs
            tasks[id] = record
            return [.taskEnded(id: id)]
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
    }

    /// Submits many tasks at once, all or nothing. A task whose id exists with the same spec
    /// is not submitted again (it is listed in `existing`); with another spec it is an error.
    public mutating func submitBatch(_ specs: [TaskSpec], nowMs: Int64) throws(SchedulerError) -> (ids: [String], existing: [String]) {
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
            if let existing = tasks[id], existing.spec != spec { throw .duplicateId(id) }
        }
        let given = specs.compactMap(\.id)
        if let problem = FrameBudget.batchReplyProblem(givenIds: given, generated: specs.count - given.count) {
            throw .invalidTask(problem)
        }
        var ids: [String] = []
        var existing: [String] = []
        for (index, spec) in specs.enumerated() {
            if let id = spec.id, tasks[id] != nil {
                ids.append(id)
                existing.append(id)
                continue
            }
            var stored = spec
            var id = spec.id ?? TaskID.generate(nowMs: nowMs)
            while spec.id == nil && tasks[id] != nil { id = TaskID.generate(nowMs: nowMs) }
            stored.id = id
            insert(stored, specBytes: sizes[index], request: nil, nowMs: nowMs)
            ids.append(id)
        }
        return (ids, existing)
    }

    /// `swarm stats`: per worker and cluster-wide, by model.
    public func statistics() -> (cluster: StatsBlock, workers: [String: StatsBlock]) {
        var running: [String: [String?]] = [:]
        for node in nodes.values {
            running[node.name] = node.assigned.keys.map { tasks[$0]?.info.metrics.model }
        }
        return stats.report(running: running, health: nodes.mapValues(\.runtimeStatus))
    }

    /// Puts a task back in the queue, or ends it (as `finalState`, `lost` by default) once
    /// it has used its attempts. A cancelled task ends `cancelled` instead.
    @discardableResult
    mutating func requeue(_ id: String, reason: String?, nowMs: Int64, finalState: TaskState = .lost) -> SchedulerDirective? {
        guard var record = tasks[id], !record.info.state.isTerminal else { return nil }
        if record.cancelRequested {
            record.info.state = .cancelled
            record.info.reason = "cancelled (its run ended: \(reason ?? "refused"))"
            record.info.finishedAt = nowMs
            tasks[id] = record
            return .taskEnded(id: id)
        }
        if let reason, record.info.attempts >= settings.maxAttempts {
            // `node` stays: where it last ran.
            record.info.state = finalState
            record.info.reason = "\(reason); gave up after \(record.info.attempts) attempts"
            record.info.finishedAt = nowMs
            tasks[id] = record
            return .taskEnded(id: id)
        }
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
}

// MARK: Durability

extension ClusterState {
    /// The state as the store saved it, after a restart. Queued tasks go back into the queue
    /// in their order; a running task stays assigned to its worker as the same attempt,
    /// awaiting that worker: `register` then keeps the runs the worker reports (running, or
    /// finished with a result to deliver) and requeues the rest; a worker that does not come
    /// back within `lostAfterMs` of `nowMs` is lost like any other, its runs requeued.
    public init(settings: SchedulerSettings, restoring saved: [TaskSnapshot], nowMs: Int64) {
        self.init(settings: settings)
        var orphans: [String] = []
        for task in saved.sorted(by: { $0.sequence < $1.sequence }) {
            let id = task.info.id
            // The model it was resolved to at submit (a runtime's default) is in its metrics.
            let request = Self.placementRequest(for: task.spec, model: task.spec.model ?? task.info.metrics.model)
            if let runtime = task.spec.runtime, request.model == nil, !task.info.state.isTerminal {
                runtimeCatalog.unresolved[runtime, default: []].insert(id)
            }
            // A cancel asked for while it ran is remembered through its reason.
            tasks.restore(TaskRecord(spec: task.spec, info: task.info, sequence: task.sequence, request: request,
                                     cancelRequested: task.info.state == .running && task.info.reason == Self.cancelRequestedReason,
                                     specBytes: task.info.state.isTerminal ? 0 : FrameBudget.admissionSize(of: task.spec)))
            order.append(id)
            nextSequence = max(nextSequence, task.sequence)
            switch task.info.state {
            case .queued:
                queue.push(id: id, request: request, sequence: task.sequence)
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
        for id in orphans { requeue(id, reason: "it was running on no known worker", nowMs: nowMs) }
    }

    /// True when something changed since the last `takeChanges()`.
    public var hasChanges: Bool { tasks.hasChanges }

    /// What changed since the last call (tasks and run history), for the store; forgets it.
    public mutating func takeChanges() -> StateChanges { tasks.takeChanges() }
}
