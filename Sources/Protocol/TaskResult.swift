import Foundation

/// What a worker is told to run: the task as submitted, which run this is, and when it was
/// submitted and placed (for the result's timestamps).
public struct TaskAssignment: Codable, Sendable, Equatable {
    public var id: String
    public var attempt: Int
    public var spec: TaskSpec
    public var submittedAt: Int64?
    public var placedAt: Int64?
    /// The task's credential (`SWARM_TASK_TOKEN`), from the scheduler: a worker holding only
    /// the worker token cannot derive it. Nil on a cluster without a token.
    public var taskToken: String?
    /// Sent ahead (prefetch): the worker's slots were all busy when the scheduler placed it.
    /// The worker holds it and starts it when a slot frees (it says `taskStarted` then); the
    /// task shows `queued` until. Sent only to workers that said they hold such assignments
    /// (`Register.prefetch`); nil: a slot is free for it, start now or refuse.
    public var prefetch: Bool?

    public var command: [String] { spec.command }
    public var env: [String: String]? { spec.env }

    public init(id: String, attempt: Int, spec: TaskSpec, submittedAt: Int64? = nil, placedAt: Int64? = nil) {
        self.id = id
        self.attempt = attempt
        self.spec = spec
        self.spec.id = id
        self.submittedAt = submittedAt
        self.placedAt = placedAt
    }

    /// A plain command.
    public init(id: String, command: [String], env: [String: String]?, attempt: Int) {
        self.init(id: id, attempt: attempt, spec: TaskSpec(id: id, command: command, env: env))
    }
}

/// What the engine measured of one run; part of results and of `TaskInfo` (its fields sit at
/// the top level of both). Every key is always encoded, null when unknown.
public struct RunMetrics: Codable, Sendable, Equatable {
    public var node: String?
    public var runtime: String?
    public var model: String?
    /// `simple`, `moderate` or `complex`, and the score it came from.
    public var complexity: String?
    public var complexityScore: Int?
    public var initialTimeoutMs: Int64?
    public var finalTimeoutMs: Int64?
    /// Deadline extensions applied (progress near the deadline).
    public var extensions: Int = 0
    public var silenceWarnings: Int = 0
    public var outputBytes: Int = 0
    public var outputBursts: Int = 0
    public var timeToFirstOutputMs: Int64?
    public var firstOutputAt: Int64?
    /// `inline` or `file` (context over the inline limit), null without context.
    public var contextMode: String?
    public var contextFile: String?
    public var workDir: String?
    public var logFile: String?
    /// Unix microseconds (the worker's clock) when the process was spawned, when it first
    /// printed, and when its exit was seen: for latencies finer than the millisecond fields.
    public var startedAtUs: Int64?
    public var firstOutputAtUs: Int64?
    public var exitedAtUs: Int64?
    /// Milliseconds from the spawn to the exit, on the worker's monotonic clock: the run's
    /// duration, which a step of any wall clock during the run does not change (`startedAt`
    /// and `finishedAt` only date it). Null when the process never ran.
    public var runMs: Int64?
    /// Work in / work out (issue 11), for tasks that went through the worker's pipeline (null
    /// for a plain task): milliseconds from taking the task to its spawn (git worktree, task
    /// directory, inputs fetched and unpacked), or to its end when preparing failed; bytes of
    /// input blobs this run fetched from the scheduler (0 when its worker's cache had them);
    /// milliseconds from the process's end to the result (git collect, artifacts hashed and
    /// uploaded; null when there was nothing to collect).
    public var prepareMs: Int64?
    public var inputBytesFetched: Int64?
    public var collectMs: Int64?
    /// A `repo` task: milliseconds its worker's git commands took to make its worktree
    /// (registration and checkout; waiting for the mirror's update, its queue or a checkout
    /// slot excluded, which `prepareMs` includes). Null otherwise.
    public var worktreeMs: Int64?
    /// A `repo` task: whether its worktree was a spare one (an ended task's, cleaned and kept
    /// by the worker) moved into place and checked out at the task's commit, rather than made
    /// new. Null otherwise.
    public var worktreeReused: Bool?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case node, runtime, model, complexity, complexityScore, initialTimeoutMs, finalTimeoutMs
        case extensions, silenceWarnings, outputBytes, outputBursts, timeToFirstOutputMs, firstOutputAt
        case contextMode, contextFile, workDir, logFile
        case startedAtUs, firstOutputAtUs, exitedAtUs, runMs
        case prepareMs, inputBytesFetched, collectMs, worktreeMs, worktreeReused
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        node = try c.decodeIfPresent(String.self, forKey: .node)
        runtime = try c.decodeIfPresent(String.self, forKey: .runtime)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        complexity = try c.decodeIfPresent(String.self, forKey: .complexity)
        complexityScore = try c.decodeIfPresent(Int.self, forKey: .complexityScore)
        initialTimeoutMs = try c.decodeIfPresent(Int64.self, forKey: .initialTimeoutMs)
        finalTimeoutMs = try c.decodeIfPresent(Int64.self, forKey: .finalTimeoutMs)
        extensions = try c.decodeIfPresent(Int.self, forKey: .extensions) ?? 0
        silenceWarnings = try c.decodeIfPresent(Int.self, forKey: .silenceWarnings) ?? 0
        outputBytes = try c.decodeIfPresent(Int.self, forKey: .outputBytes) ?? 0
        outputBursts = try c.decodeIfPresent(Int.self, forKey: .outputBursts) ?? 0
        timeToFirstOutputMs = try c.decodeIfPresent(Int64.self, forKey: .timeToFirstOutputMs)
        firstOutputAt = try c.decodeIfPresent(Int64.self, forKey: .firstOutputAt)
        contextMode = try c.decodeIfPresent(String.self, forKey: .contextMode)
        contextFile = try c.decodeIfPresent(String.self, forKey: .contextFile)
        workDir = try c.decodeIfPresent(String.self, forKey: .workDir)
        logFile = try c.decodeIfPresent(String.self, forKey: .logFile)
        startedAtUs = try c.decodeIfPresent(Int64.self, forKey: .startedAtUs)
        firstOutputAtUs = try c.decodeIfPresent(Int64.self, forKey: .firstOutputAtUs)
        exitedAtUs = try c.decodeIfPresent(Int64.self, forKey: .exitedAtUs)
        runMs = try c.decodeIfPresent(Int64.self, forKey: .runMs)
        prepareMs = try c.decodeIfPresent(Int64.self, forKey: .prepareMs)
        inputBytesFetched = try c.decodeIfPresent(Int64.self, forKey: .inputBytesFetched)
        collectMs = try c.decodeIfPresent(Int64.self, forKey: .collectMs)
        worktreeMs = try c.decodeIfPresent(Int64.self, forKey: .worktreeMs)
        worktreeReused = try c.decodeIfPresent(Bool.self, forKey: .worktreeReused)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(node, forKey: .node)
        try c.encode(runtime, forKey: .runtime)
        try c.encode(model, forKey: .model)
        try c.encode(complexity, forKey: .complexity)
        try c.encode(complexityScore, forKey: .complexityScore)
        try c.encode(initialTimeoutMs, forKey: .initialTimeoutMs)
        try c.encode(finalTimeoutMs, forKey: .finalTimeoutMs)
        try c.encode(extensions, forKey: .extensions)
        try c.encode(silenceWarnings, forKey: .silenceWarnings)
        try c.encode(outputBytes, forKey: .outputBytes)
        try c.encode(outputBursts, forKey: .outputBursts)
        try c.encode(timeToFirstOutputMs, forKey: .timeToFirstOutputMs)
        try c.encode(firstOutputAt, forKey: .firstOutputAt)
        try c.encode(contextMode, forKey: .contextMode)
        try c.encode(contextFile, forKey: .contextFile)
        try c.encode(workDir, forKey: .workDir)
        try c.encode(logFile, forKey: .logFile)
        try c.encode(startedAtUs, forKey: .startedAtUs)
        try c.encode(firstOutputAtUs, forKey: .firstOutputAtUs)
        try c.encode(exitedAtUs, forKey: .exitedAtUs)
        try c.encode(runMs, forKey: .runMs)
        try c.encode(prepareMs, forKey: .prepareMs)
        try c.encode(inputBytesFetched, forKey: .inputBytesFetched)
        try c.encode(collectMs, forKey: .collectMs)
        try c.encode(worktreeMs, forKey: .worktreeMs)
        try c.encode(worktreeReused, forKey: .worktreeReused)
    }
}

/// How a run ended, as reported by the worker that ran it and written to
/// `.swarm/results/{id}.json`. Every key is always present (null when unknown).
public struct TaskResult: Codable, Sendable, Equatable {
    public var id: String
    public var state: TaskState
    public var exitCode: Int?
    public var signal: Int?
    public var reason: String?
    /// The last 64 KiB of stdout and stderr, interleaved as they arrived.
    public var output: String
    public var pid: Int?
    public var attempt: Int
    public var submittedAt: Int64?
    public var placedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64
    public var metrics = RunMetrics()
    /// Files uploaded after the run (issue 11), those matched but not uploaded, and what a
    /// `repo` task's branch ended with. Nil when the task asked for none.
    public var artifacts: [ArtifactRef]?
    public var skippedArtifacts: [SkippedArtifact]?
    public var git: GitOutcome?

    /// The run this result belongs to.
    public var run: RunRef { RunRef(id: id, attempt: attempt) }

    public init(id: String, state: TaskState, exitCode: Int?, signal: Int?, reason: String?,
                output: String, pid: Int?, attempt: Int, startedAt: Int64?, finishedAt: Int64) {
        self.id = id
        self.state = state
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.output = output
        self.pid = pid
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, state, exitCode, signal, reason, output, pid, attempt, attempts
        case submittedAt, placedAt, startedAt, finishedAt, artifacts, skippedArtifacts, git
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        state = try c.decode(TaskState.self, forKey: .state)
        exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode)
        signal = try c.decodeIfPresent(Int.self, forKey: .signal)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        output = try c.decodeIfPresent(String.self, forKey: .output) ?? ""
        pid = try c.decodeIfPresent(Int.self, forKey: .pid)
        attempt = try c.decode(Int.self, forKey: .attempt)
        submittedAt = try c.decodeIfPresent(Int64.self, forKey: .submittedAt)
        placedAt = try c.decodeIfPresent(Int64.self, forKey: .placedAt)
        startedAt = try c.decodeIfPresent(Int64.self, forKey: .startedAt)
        finishedAt = try c.decode(Int64.self, forKey: .finishedAt)
        artifacts = try c.decodeIfPresent([ArtifactRef].self, forKey: .artifacts)
        skippedArtifacts = try c.decodeIfPresent([SkippedArtifact].self, forKey: .skippedArtifacts)
        git = try c.decodeIfPresent(GitOutcome.self, forKey: .git)
        metrics = try RunMetrics(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        // FastJSONEncoder (every `taskFinished` frame and journal record): without keyed containers.
        if let sink = encoder as? JSONSinkEncoder { return try writeJSON(into: sink.sink, depth: sink.depth) }
        try encodeKeyed(to: encoder)
    }

    /// Any other encoder; `writeJSON` writes the same keys in the same order.
    func encodeKeyed(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(state, forKey: .state)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(signal, forKey: .signal)
        try c.encode(reason, forKey: .reason)
        try c.encode(output, forKey: .output)
        try c.encode(pid, forKey: .pid)
        try c.encode(attempt, forKey: .attempt)
        // The same number under the name `TaskInfo` uses: runs so far, this one included.
        try c.encode(attempt, forKey: .attempts)
        try c.encode(submittedAt, forKey: .submittedAt)
        try c.encode(placedAt, forKey: .placedAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        // Null, never a missing key (as every other field): scripts read result files too.
        try c.encode(artifacts, forKey: .artifacts)
        try c.encode(skippedArtifacts, forKey: .skippedArtifacts)
        try c.encode(git, forKey: .git)
        try metrics.encode(to: encoder)
    }
}

/// A task as clients see it. Times are unix milliseconds. Absent values are `null`, never
/// missing keys, so scripts can rely on every field being there.
public struct TaskInfo: Codable, Sendable, Equatable {
    public var id: String
    public var state: TaskState
    public var command: [String]
    public var exitCode: Int?
    public var signal: Int?
    public var reason: String?
    public var attempts: Int
    public var submittedAt: Int64
    public var placedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// Last 64 KiB of output once the task has ended; null in listings and multi-task waits.
    public var output: String?
    public var parent: String?
    public var priority: Int
    public var labels: [String: String]?
    /// The names of its secret variables (`secretEnv`), each shown as `***`; null when none.
    /// The values never leave the scheduler but in the task's `assign`.
    public var secretEnv: [String: String]?
    /// What a secret's value is shown as.
    public static let hiddenValue = "***"
    /// The tasks it waits for (its spec's `after` and `afterAny`); null when none.
    public var after: [String]?
    public var afterAny: [String]?
    /// Why a queued task waits, and whether no registered worker could ever run it.
    public var waitReason: String?
    public var unplaceable: Bool
    /// The last run's uploaded files, the files it matched but did not upload, and a `repo`
    /// task's branch (issue 11); null when none.
    public var artifacts: [ArtifactRef]?
    public var skippedArtifacts: [SkippedArtifact]?
    public var git: GitOutcome?
    /// The measurements of the current (or last) run; `node` is where it runs or ran.
    public var metrics = RunMetrics()
    /// Every run kept, oldest first (at most `TaskRun.maxKept`; `attempts` counts them all):
    /// in `status` and single-task `wait` replies; null in listings and multi-task waits.
    public var runs: [TaskRun]?

    public var node: String? {
        get { metrics.node }
        set { metrics.node = newValue }
    }

    public init(id: String, state: TaskState, command: [String], node: String? = nil,
                exitCode: Int? = nil, signal: Int? = nil, reason: String? = nil, attempts: Int = 0,
                submittedAt: Int64, placedAt: Int64? = nil, startedAt: Int64? = nil,
                finishedAt: Int64? = nil, output: String? = nil) {
        self.id = id
        self.state = state
        self.command = command
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.attempts = attempts
        self.submittedAt = submittedAt
        self.placedAt = placedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.output = output
        self.priority = 0
        self.unplaceable = false
        self.metrics.node = node
    }

    enum CodingKeys: String, CodingKey {
        case id, state, command, exitCode, signal, reason, attempts
        case submittedAt, placedAt, startedAt, finishedAt, output
        case parent, priority, labels, secretEnv, waitReason, unplaceable, artifacts, skippedArtifacts, git, runs
        case after, afterAny
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        state = try c.decode(TaskState.self, forKey: .state)
        command = try c.decodeIfPresent([String].self, forKey: .command) ?? []
        exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode)
        signal = try c.decodeIfPresent(Int.self, forKey: .signal)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        attempts = try c.decode(Int.self, forKey: .attempts)
        submittedAt = try c.decode(Int64.self, forKey: .submittedAt)
        placedAt = try c.decodeIfPresent(Int64.self, forKey: .placedAt)
        startedAt = try c.decodeIfPresent(Int64.self, forKey: .startedAt)
        finishedAt = try c.decodeIfPresent(Int64.self, forKey: .finishedAt)
        output = try c.decodeIfPresent(String.self, forKey: .output)
        parent = try c.decodeIfPresent(String.self, forKey: .parent)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? 0
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
        secretEnv = try c.decodeIfPresent([String: String].self, forKey: .secretEnv)
        after = try c.decodeIfPresent([String].self, forKey: .after)
        afterAny = try c.decodeIfPresent([String].self, forKey: .afterAny)
        waitReason = try c.decodeIfPresent(String.self, forKey: .waitReason)
        unplaceable = try c.decodeIfPresent(Bool.self, forKey: .unplaceable) ?? false
        artifacts = try c.decodeIfPresent([ArtifactRef].self, forKey: .artifacts)
        skippedArtifacts = try c.decodeIfPresent([SkippedArtifact].self, forKey: .skippedArtifacts)
        git = try c.decodeIfPresent(GitOutcome.self, forKey: .git)
        runs = try c.decodeIfPresent([TaskRun].self, forKey: .runs)
        metrics = try RunMetrics(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        // FastJSONEncoder (the store's rows, frames): written without keyed containers.
        if let sink = encoder as? JSONSinkEncoder { return try writeJSON(into: sink.sink, depth: sink.depth) }
        try encodeKeyed(to: encoder)
    }

    /// Any other encoder; `writeJSON` writes the same keys in the same order.
    func encodeKeyed(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(state, forKey: .state)
        try c.encode(command, forKey: .command)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(signal, forKey: .signal)
        try c.encode(reason, forKey: .reason)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(submittedAt, forKey: .submittedAt)
        try c.encode(placedAt, forKey: .placedAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(output, forKey: .output)
        try c.encode(parent, forKey: .parent)
        try c.encode(priority, forKey: .priority)
        try c.encode(labels, forKey: .labels)
        try c.encode(secretEnv, forKey: .secretEnv)
        try c.encode(after, forKey: .after)
        try c.encode(afterAny, forKey: .afterAny)
        try c.encode(waitReason, forKey: .waitReason)
        try c.encode(unplaceable, forKey: .unplaceable)
        try c.encode(artifacts, forKey: .artifacts)
        try c.encode(skippedArtifacts, forKey: .skippedArtifacts)
        try c.encode(git, forKey: .git)
        try c.encode(runs, forKey: .runs)
        try metrics.encode(to: encoder)
    }
}
