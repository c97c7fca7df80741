import SwarmProtocol

/// Errors the scheduler returns to clients.
public enum SchedulerError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidTask(String)
    case duplicateId(String)
    case unknownTask(String)
    case workerNameInUse(String)
    case invalidRegistration(String)

    public var description: String {
        switch self {
        case .invalidTask(let reason): "invalid task: \(reason)"
        case .duplicateId(let id): "a task with id '\(id)' already exists"
        case .unknownTask(let id): "no task with id '\(id)'"
        case .workerNameInUse(let name): "a worker named '\(name)' is already connected"
        case .invalidRegistration(let reason): "invalid registration: \(reason)"
        }
    }

    public var code: ErrorCode {
        switch self {
        case .invalidTask: .invalidTask
        case .duplicateId: .duplicateId
        case .unknownTask: .unknownTask
        case .workerNameInUse, .invalidRegistration: .badMessage
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

    public init(lostAfterMs: Int64 = 10_000, heartbeatMs: Int = 1_000, maxAttempts: Int = 3) {
        self.lostAfterMs = lostAfterMs
        self.heartbeatMs = heartbeatMs
        self.maxAttempts = maxAttempts
    }
}

/// The whole cluster as the scheduler knows it: a pure value. Every input carries `nowMs`
/// (unix milliseconds); every output is a list of directives for the shell to carry out.
public struct ClusterState: Sendable {
    struct NodeRecord: Sendable {
        var name: String
        var slots: Int
        var labels: [String: String]
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
        /// No placements here before this time (set when the worker refuses one).
        var holdUntilMs: Int64 = 0
        /// The worker said it is stopping.
        var leaving = false
        var completed = 0

        var freeSlots: Int { max(0, slots - assigned.count - dying.count) }
    }

    struct TaskRecord: Sendable {
        var spec: TaskSpec
        var info: TaskInfo
        var sequence: UInt64
    }

    public let settings: SchedulerSettings
    private(set) var nodes: [String: NodeRecord] = [:]
    private(set) var tasks = TaskTable()
    private(set) var queue = TaskQueue()
    private var nextSequence: UInt64 = 0
    /// Submission order, for listings.
    private var order: [String] = []

    public init(settings: SchedulerSettings = SchedulerSettings()) {
        self.settings = settings
    }

    public var queuedCount: Int { queue.count }

    // MARK: Clients

    /// Accepts a task into the queue and returns its id.
    public mutating func submit(_ spec: TaskSpec, nowMs: Int64) throws(SchedulerError) -> String {
        if let problem = spec.problem() { throw .invalidTask(problem) }
        var id = spec.id ?? TaskID.generate(nowMs: nowMs)
        while spec.id == nil && tasks[id] != nil { id = TaskID.generate(nowMs: nowMs) }
        if tasks[id] != nil { throw .duplicateId(id) }
        var stored = spec
        stored.id = id
        nextSequence += 1
        tasks[id] = TaskRecord(spec: stored,
                               info: TaskInfo(id: id, state: .queued, command: spec.command, submittedAt: nowMs),
                               sequence: nextSequence)
        queue.push(id: id, sequence: nextSequence)
        order.append(id)
        return id
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
                     lastSeenMsAgo: max(0, nowMs - node.lastSeenMs), completed: node.completed)
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
        var node = nodes[name] ?? NodeRecord(name: name, slots: slots, labels: labels, lastSeenMs: nowMs)
        node.slots = slots
        node.labels = labels
        node.connected = true
        node.lastSeenMs = nowMs
        node.address = address
        node.holdUntilMs = 0
        node.leaving = false
        node.state = .ready
        let reported = Set(running).union(finished)
        for (id, attempt) in node.assigned.sorted(by: { $0.key < $1.key }) where !reported.contains(RunRef(id: id, attempt: attempt)) {
            node.assigned[id] = nil
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
                if let ended = requeue(id, reason: "worker \(name) left", nowMs: nowMs) { directives.append(ended) }
            }
        }
        nodes[name] = node
        return directives
    }

    public mutating func taskStarted(node name: String, run: RunRef, startedAt: Int64) {
        guard nodes[name]?.assigned[run.id] == run.attempt, tasks[run.id]?.info.attempts == run.attempt else { return }
        tasks[run.id]?.info.startedAt = startedAt
    }

    /// A worker reports how a run ended. It is always acknowledged (so the worker stops
    /// resending); it counts only for the task's current run on that worker. A run ended as
    /// `lost` (its worker shut down under it) goes back to the queue.
    public mutating func taskFinished(node name: String, result: TaskResult, nowMs: Int64) -> [SchedulerDirective] {
        var directives: [SchedulerDirective] = [.ackResult(node: name, run: RunRef(id: result.id, attempt: result.attempt))]
        guard var node = nodes[name] else { return directives }
        if node.dying[result.id] == result.attempt || node.stale[result.id] == result.attempt {
            node.dying[result.id] = nil
            node.stale[result.id] = nil
            nodes[name] = node
            return directives
        }
        guard node.assigned[result.id] == result.attempt, var record = tasks[result.id],
              record.info.attempts == result.attempt, !record.info.state.isTerminal else {
            return directives
        }
        node.assigned[result.id] = nil
        if result.state == .lost {
            nodes[name] = node
            if let ended = requeue(result.id, reason: result.reason ?? "its worker shut down", nowMs: nowMs) {
                directives.append(ended)
            }
            return directives
        }
        node.completed += 1
        nodes[name] = node
        record.info.exitCode = result.exitCode
        record.info.signal = result.signal
        record.info.output = result.output
        record.info.startedAt = result.startedAt ?? record.info.startedAt
        record.info.state = result.state.isTerminal ? result.state : .failed
        record.info.reason = result.reason
        record.info.finishedAt = result.finishedAt
        tasks[result.id] = record
        directives.append(.taskEnded(id: result.id))
        return directives
    }

    /// A worker refused a run; the task goes back to the queue without using an attempt, and
    /// the worker gets no new placement for a second (so a refusal cannot become a hot loop).
    public mutating func taskRejected(node name: String, run: RunRef, nowMs: Int64) {
        guard nodes[name]?.assigned[run.id] == run.attempt, var record = tasks[run.id] else { return }
        nodes[name]?.assigned[run.id] = nil
        nodes[name]?.holdUntilMs = nowMs + 1_000
        record.info.attempts = max(0, record.info.attempts - 1)
        tasks[run.id] = record
        requeue(run.id, reason: nil, nowMs: nowMs)
    }

    // MARK: Time and placement

    /// Marks workers silent past `lostAfterMs` as lost and requeues their tasks.
    public mutating func tick(nowMs: Int64) -> [SchedulerDirective] {
        var directives: [SchedulerDirective] = []
        for name in nodes.keys.sorted() {
            // A worker that said goodbye and went is not lost: it stays `draining`, disconnected.
            guard var node = nodes[name], node.state != .lost, !(node.leaving && !node.connected),
                  nowMs - node.lastSeenMs > settings.lostAfterMs else { continue }
            node.state = .lost
            // Its connection is closed by the shell; when it comes back it registers anew and
            // its leftover runs are killed then.
            node.connected = false
            let orphans = node.assigned.keys.sorted()
            node.assigned = [:]
            node.dying = [:]
            node.stale = [:]
            nodes[name] = node
            directives.append(.nodeLost(name: name))
            for id in orphans {
                if let ended = requeue(id, reason: "worker \(name) was lost", nowMs: nowMs) { directives.append(ended) }
            }
        }
        return directives
    }

    /// Places queued tasks while any node has a free slot, in queue order.
    public mutating func schedule(nowMs: Int64) -> [SchedulerDirective] {
        var directives: [SchedulerDirective] = []
        var snapshot = nodes.values.map {
            NodeSnapshot(name: $0.name, slots: $0.slots, freeSlots: $0.holdUntilMs > nowMs ? 0 : $0.freeSlots,
                         state: $0.state, connected: $0.connected)
        }
        // A node still killing (or waiting for the result of) an old run of a task gets no new
        // run of it: one id, one process and one attempt number per node at a time.
        let blockedIds = Set(nodes.values.flatMap { Array($0.dying.keys) + Array($0.stale.keys) })
        var skipped: [String] = []
        while let id = queue.first, let record = tasks[id] {
            var candidates = snapshot
            var excluded = false
            if blockedIds.contains(id) {
                for i in candidates.indices {
                    let node = nodes[candidates[i].name]
                    if node?.dying[id] != nil || node?.stale[id] != nil {
                        excluded = excluded || candidates[i].freeSlots > 0
                        candidates[i].freeSlots = 0
                    }
                }
            }
            guard case .place(let nodeName) = Placement.place(record.spec, on: candidates) else {
                // Only this task is held back: let the ones behind it go.
                if excluded { queue.popFirst(); skipped.append(id); continue }
                break
            }
            queue.popFirst()
            var info = record.info
            info.state = .running
            info.node = nodeName
            info.attempts += 1
            info.placedAt = nowMs
            // Nothing of an earlier run shows on the new one.
            info.startedAt = nil
            info.exitCode = nil
            info.signal = nil
            info.output = nil
            info.reason = nil
            info.finishedAt = nil
            tasks[id]?.info = info
            nodes[nodeName]?.assigned[id] = info.attempts
            if let i = snapshot.firstIndex(where: { $0.name == nodeName }) { snapshot[i].freeSlots -= 1 }
            directives.append(.assign(node: nodeName, TaskAssignment(
                id: id, command: record.spec.command, env: record.spec.env, attempt: info.attempts)))
        }
        for id in skipped { if let record = tasks[id] { queue.push(id: id, sequence: record.sequence) } }
        return directives
    }

    /// Puts a task back in the queue, or ends it as `lost` once it has used its attempts.
    @discardableResult
    private mutating func requeue(_ id: String, reason: String?, nowMs: Int64) -> SchedulerDirective? {
        guard var record = tasks[id], !record.info.state.isTerminal else { return nil }
        if let reason, record.info.attempts >= settings.maxAttempts {
            // `node` stays: where it last ran.
            record.info.state = .lost
            record.info.reason = "\(reason); gave up after \(record.info.attempts) attempts"
            record.info.finishedAt = nowMs
            tasks[id] = record
            return .taskEnded(id: id)
        }
        record.info.state = .queued
        record.info.node = nil
        record.info.startedAt = nil
        if let reason { record.info.reason = reason }
        tasks[id] = record
        queue.push(id: id, sequence: record.sequence)
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
            tasks.restore(TaskRecord(spec: task.spec, info: task.info, sequence: task.sequence))
            order.append(id)
            nextSequence = max(nextSequence, task.sequence)
            switch task.info.state {
            case .queued:
                queue.push(id: id, sequence: task.sequence)
            case .running:
                guard let name = task.info.node, task.info.attempts > 0 else { orphans.append(id); continue }
                // Unknown until it registers: disconnected, holding only its runs.
                var node = nodes[name] ?? NodeRecord(name: name, slots: 0, labels: [:], lastSeenMs: nowMs)
                node.connected = false
                node.assigned[id] = task.info.attempts
                node.slots = node.assigned.count
                nodes[name] = node
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
