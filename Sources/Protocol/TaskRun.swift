/// One run (attempt) of a task as `swarm status` shows it (issue 13): where it ran, how it
/// ended, when. A task keeps its last `TaskRun.maxKept` runs; `TaskInfo.attempts` counts
/// them all. Times are unix milliseconds (wall clock); every key is always encoded, null when
/// unknown.
public struct TaskRun: Codable, Sendable, Equatable {
    /// 1 for the first run.
    public var attempt: Int
    public var node: String?
    /// `running` while it runs; then how it ended (`lost` when its worker was lost or left and
    /// the task went back to the queue).
    public var state: TaskState
    public var exitCode: Int?
    public var signal: Int?
    public var reason: String?
    public var placedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// The run's duration as its worker measured it on its monotonic clock (`RunMetrics.runMs`),
    /// which a wall-clock step during the run does not change; nil when unknown (a run that
    /// never ran, a worker before it, a run ended as lost).
    public var runMs: Int64?

    /// Runs kept per task (the oldest are dropped first). With `RetryPolicy.maxRetries` and
    /// the node-loss budget a task can have more runs than this; its `attempts` still
    /// counts them all, and the runs kept carry their attempt numbers.
    public static let maxKept = 32

    public init(attempt: Int, node: String?, state: TaskState = .running, exitCode: Int? = nil, signal: Int? = nil,
                reason: String? = nil, placedAt: Int64? = nil, startedAt: Int64? = nil, finishedAt: Int64? = nil) {
        self.attempt = attempt
        self.node = node
        self.state = state
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.placedAt = placedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// Its worker's monotonic measure (`runMs`) when there is one; else from its start (or
    /// placement, if it never started) to its end on the wall dates; nil while it runs.
    public var durationMs: Int64? {
        guard let finishedAt else { return nil }
        if let runMs { return runMs }
        guard let from = startedAt ?? placedAt else { return nil }
        return max(0, finishedAt &- from)
    }

    enum CodingKeys: String, CodingKey {
        case attempt, node, state, exitCode, signal, reason, placedAt, startedAt, finishedAt, durationMs
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        attempt = try c.decode(Int.self, forKey: .attempt)
        node = try c.decodeIfPresent(String.self, forKey: .node)
        state = try c.decode(TaskState.self, forKey: .state)
        exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode)
        signal = try c.decodeIfPresent(Int.self, forKey: .signal)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        placedAt = try c.decodeIfPresent(Int64.self, forKey: .placedAt)
        startedAt = try c.decodeIfPresent(Int64.self, forKey: .startedAt)
        finishedAt = try c.decodeIfPresent(Int64.self, forKey: .finishedAt)
        // What `durationMs` said is kept as it was (it may have been the worker's measure).
        if finishedAt != nil { runMs = try c.decodeIfPresent(Int64.self, forKey: .durationMs) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(node, forKey: .node)
        try c.encode(state, forKey: .state)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(signal, forKey: .signal)
        try c.encode(reason, forKey: .reason)
        try c.encode(placedAt, forKey: .placedAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(durationMs, forKey: .durationMs)
    }
}
