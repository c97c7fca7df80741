import SwarmProtocol

/// A task as the store keeps it: what was submitted, what clients see, and its place in
/// submission order.
public struct TaskSnapshot: Sendable, Equatable {
    public var spec: TaskSpec
    public var info: TaskInfo
    /// Submission order (1, 2, ...); a requeued task keeps its place by it.
    public var sequence: UInt64
    /// Its retries and node-loss requeues so far, and the backoff it waits out.
    public var retry: RetryState
    /// Its runs, oldest first (at most `TaskRun.maxKept`). The store writes them from
    /// `StateChanges.runs` (each change once) and reads them back into this (`loadTasks`).
    public var runs: [TaskRun]

    public init(spec: TaskSpec, info: TaskInfo, sequence: UInt64, retry: RetryState = RetryState(), runs: [TaskRun] = []) {
        self.spec = spec
        self.info = info
        self.sequence = sequence
        self.retry = retry
        self.runs = runs
    }
}

/// What happened to one run (task id + attempt), in the order it happened.
public enum RunChange: Sendable, Equatable {
    /// The run was placed on `node` (a new attempt).
    case placed(RunRef, node: String?, placedAt: Int64?)
    case started(RunRef, startedAt: Int64?)
    /// The run ended: with its outcome (`lost` when the task went back to the queue: worker
    /// lost, left, restarted without it), its exit code or signal. `finishedAt` nil: when it
    /// was noticed. Applies only to a run that is still running (an ended run keeps its first
    /// ending). `runMs`: its worker's monotonic measure of its duration, when it sent one.
    case ended(RunRef, state: TaskState, reason: String?, finishedAt: Int64?, exitCode: Int? = nil, signal: Int? = nil,
               runMs: Int64? = nil)
    /// The worker refused the run: it never started and its attempt number is used again.
    case withdrawn(RunRef)
}

/// Everything that changed in a `ClusterState` since the last `takeChanges()`: the tasks whose
/// record changed (their whole new record) and the runs' history.
public struct StateChanges: Sendable, Equatable {
    public var tasks: [TaskSnapshot] = []
    public var runs: [RunChange] = []
    /// Log text of tasks that ended (task id -> text), kept for `swarm logs` after restarts.
    public var logs: [String: String] = [:]
    /// The names of the drained workers, sorted, when a drain or undrain changed them (nil:
    /// unchanged): the store keeps the whole set, so a drain outlives a scheduler restart.
    public var drainedNodes: [String]?
    /// The roots of the tree cancels under way (`ClusterState.treeCancelRoots`) when one began
    /// or ended (nil: unchanged): a restart resumes them.
    public var treeCancelRoots: [String]?
    /// Ids among `tasks` that are new (submitted since the last changes were taken): the store
    /// inserts their rows straight away. A task not named here may be new too (its row is
    /// then inserted after an update that finds none).
    public var inserted: Set<String> = []
    /// Ids among `tasks` whose only change is a placement (`TaskTable.place`): the store
    /// writes their state, node and attempts columns (the new run is among `runs`), not their
    /// info; a restart redoes the placement on the info it reads (`TaskStore.snapshot`).
    public var placedOnly: Set<String> = []

    public init(tasks: [TaskSnapshot] = [], runs: [RunChange] = [], logs: [String: String] = [:],
                drainedNodes: [String]? = nil, inserted: Set<String> = []) {
        self.inserted = inserted
        self.tasks = tasks
        self.runs = runs
        self.logs = logs
        self.drainedNodes = drainedNodes
    }

    public var isEmpty: Bool { tasks.isEmpty && runs.isEmpty && logs.isEmpty && drainedNodes == nil && treeCancelRoots == nil }
}
