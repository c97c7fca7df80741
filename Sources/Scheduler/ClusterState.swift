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

/// The whole cluster as the scheduler knows it: a pure value. Inputs that measure time carry
/// `nowMs` (monotonic milliseconds: liveness, `--lost-after`, holds); inputs that date
/// something carry `at` (wall-clock unix milliseconds: `submittedAt`, `placedAt`,
/// `finishedAt`, generated ids). No duration is measured on `at`, so stepping the wall clock
/// loses no worker and lifts no hold. Every output is a list of directives for the shell.
/// Placement (`schedule`, wait reasons) is in ClusterState+Placement.swift; what clients ask
/// in ClusterState+Clients.swift; node listing and drains in ClusterState+Nodes.swift.
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
}
