import SwarmProtocol

/// The work-in / work-out life of one task on a worker around its run (issue 11): **preparing**
/// (git worktree, task directory, inputs fetched and unpacked) -> **running** (a `TaskRunner`,
/// unchanged) -> **collecting** (git collect, artifacts globbed and uploaded) -> the result.
/// Pure: events in, actions out, `nowMs` (monotonic: the collection deadline, `prepareMs`,
/// `collectMs`) given with each event and the wall clock beside it (`handle(_:at:)`, only to
/// date a result); `WorkerAgent+Workspace` carries
/// the actions out. Only tasks that need it (`TaskPipeline.needed`) go through it: a plain
/// task takes the worker's direct path.
///
/// The result is never lost nor held forever: a failed preparation ends the run `spawn_failed`
/// with the reason; in collecting, whatever fails or is not done by the deadline is listed in
/// `skippedArtifacts` and the result is finished anyway.
struct TaskPipeline: Sendable {
    enum Phase: Equatable, Sendable { case preparing, running, collecting, finished }

    /// One step of preparing, in this order. The shell runs it and answers `.prepared`.
    enum PrepareStep: Equatable, Sendable {
        /// `repo` tasks: `GitWorkspace.prepare` makes the worktree that is the task directory.
        case gitWorktree
        /// The task directory made (`WORKROOT/ID`) or checked (`workdir`); the context file.
        case directory
        /// Every input blob in the worker's cache, hash checked, and unpacked at its DEST.
        case inputs
    }

    /// One step of collecting, in this order. The shell runs it and answers with its event.
    enum CollectStep: Equatable, Sendable {
        /// `repo` tasks: `GitWorkspace.collect` (auto-commit, bundle): `.gitCollected`.
        case gitCollect
        /// The artifact patterns globbed in the task directory, matches hashed: `.artifactsFound`.
        case artifacts
    }

    /// A file to upload: the ref the result will carry, and where the file is on this worker.
    struct Upload: Equatable, Sendable {
        var ref: ArtifactRef
        var file: String
    }

    enum Event: Sendable {
        case prepared(PrepareStep, problem: String?, nowMs: Int64)
        case runEnded(TaskResult, nowMs: Int64)
        /// `bundle`: the bundle to upload (new commits), if any; `problem`: why collect failed.
        case gitCollected(GitOutcome?, bundle: Upload?, problem: String?, nowMs: Int64)
        case artifactsFound([Upload], skipped: [SkippedArtifact], nowMs: Int64)
        /// Upload number `index` (of `.upload`) ended: nil, the scheduler holds it; else why not.
        case uploaded(index: Int, problem: String?, nowMs: Int64)
        /// Before the process exists: ends the run at once with `state` (nothing is spawned).
        /// While it runs or is collected, the shell's runner handles kills: ignored here.
        case killRequested(reason: String, state: TaskState, nowMs: Int64)
        /// The worker is stopping: collection gets at most `stopCollectMs` more.
        case stopping(nowMs: Int64)
        /// The time asked for by `armDeadline` (or any time: idempotent).
        case deadline(nowMs: Int64)
    }

    enum Action: Equatable, Sendable {
        case prepare(PrepareStep)
        /// Every preparing step is done: start the process.
        case spawn
        case collect(CollectStep)
        case upload(index: Int, Upload)
        /// Deliver `.deadline` at this monotonic time (replaces an earlier request).
        case armDeadline(atMs: Int64)
        /// Write, record and send this result; the pipeline is over.
        case finish(TaskResult)
    }

    struct Limits: Sendable, Equatable {
        /// Longest collection (git collect, globbing, every upload) before what is left is skipped.
        var collectMs: Int64 = 900_000
        /// Collection time left once the worker is stopping.
        var stopCollectMs: Int64 = 10_000
        /// Uploads of one task in flight at once.
        var parallelUploads = 4
    }

    let assignment: TaskAssignment
    let limits: Limits
    private(set) var phase: Phase = .preparing
    private let prepareSteps: [PrepareStep]
    private let collectSteps: [CollectStep]
    private var stepIndex = 0
    /// What a failure before the run reports (node, runtime, model...).
    private let metrics: RunMetrics
    private var runResult: TaskResult?
    private var deadlineMs: Int64 = .max
    private var uploads: [Upload] = []
    private var nextUpload = 0
    private var inFlight: Set<Int> = []
    private var artifacts: [ArtifactRef] = []
    private var skipped: [SkippedArtifact] = []
    private var git: GitOutcome?
    private var stopped = false
    /// For the result's `prepareMs` / `collectMs`: when the pipeline took the task (nil: not
    /// told, then neither is measured), when preparing ended, when the run ended, and the
    /// latest time an event brought.
    private var startedMs: Int64?
    private var preparedMs: Int64?
    private var runEndedMs: Int64?
    private var lastNowMs: Int64?
    /// The wall clock at the latest event: a result that ends here is dated by it.
    private var wallAt: Int64 = 0
    /// Bytes of input blobs fetched from the scheduler for this run (the shell adds them as
    /// the blob cache hands fetched blobs over): the result's `inputBytesFetched`.
    var inputBytesFetched: Int64 = 0

    /// Whether a task goes through the pipeline at all; `artifactPatterns`: its own and its
    /// runtime's (`LaunchPlan`). Optional fields only: free for a plain task.
    static func needed(_ spec: TaskSpec, artifactPatterns: [String]) -> Bool {
        spec.workdir != nil || spec.inputBlobs?.isEmpty == false || spec.repo != nil || !artifactPatterns.isEmpty
    }

    /// `collectsArtifacts`: there are patterns to glob (the task's or its runtime's).
    init(assignment: TaskAssignment, metrics: RunMetrics, collectsArtifacts: Bool, limits: Limits = Limits()) {
        self.assignment = assignment
        self.metrics = metrics
        self.limits = limits
        let spec = assignment.spec
        var steps: [PrepareStep] = spec.repo != nil ? [.gitWorktree] : []
        steps.append(.directory)
        if spec.inputBlobs?.isEmpty == false { steps.append(.inputs) }
        prepareSteps = steps
        var collect: [CollectStep] = spec.repo != nil ? [.gitCollect] : []
        if collectsArtifacts { collect.append(.artifacts) }
        collectSteps = collect
    }

    /// The first action: the first preparing step. `nowMs`: when the task was taken, from
    /// which the result's `prepareMs` counts (nil: not measured).
    mutating func start(nowMs: Int64? = nil) -> [Action] {
        startedMs = nowMs
        return [.prepare(prepareSteps[0])]
    }

    /// Applies one event. `at`: the wall clock (unix ms) at the event, only for the
    /// `finishedAt` of a run that ends here; nil: the event's `nowMs` stands for it (tests).
    mutating func handle(_ event: Event, at: Int64? = nil) -> [Action] {
        wallAt = at ?? event.nowMs
        // A hurried stop's deadline comes at `.max`: no time to measure by.
        if event.nowMs != .max { lastNowMs = event.nowMs }
        switch (phase, event) {
        case (.finished, _):
            return []
        case (.preparing, .prepared(let step, let problem, let now)):
            guard step == prepareSteps[stepIndex] else { return [] }
            if let problem { return finishUnstarted(.spawnFailed, problem) }
            stepIndex += 1
            if stepIndex < prepareSteps.count { return [.prepare(prepareSteps[stepIndex])] }
            phase = .running
            preparedMs = now
            return [.spawn]
        case (.preparing, .killRequested(let reason, let state, _)):
            return finishUnstarted(state, reason)
        case (.running, .runEnded(let result, let now)), (.preparing, .runEnded(let result, let now)):
            runResult = result
            runEndedMs = now
            if preparedMs == nil { preparedMs = now }
            phase = .collecting
            stepIndex = 0
            guard !collectSteps.isEmpty else { return finish() }
            deadlineMs = now + limits.collectMs
            return [.armDeadline(atMs: deadlineMs), .collect(collectSteps[0])]
        case (.collecting, .gitCollected(let outcome, let bundle, let problem, _)):
            guard stepIndex < collectSteps.count, collectSteps[stepIndex] == .gitCollect else { return [] }
            git = outcome
            if let bundle { uploads.append(bundle) }
            if let problem { skipped.append(SkippedArtifact(path: "swarm-\(assignment.id).bundle", size: nil, reason: problem)) }
            return nextCollectStep()
        case (.collecting, .artifactsFound(let found, let notTaken, _)):
            guard stepIndex < collectSteps.count, collectSteps[stepIndex] == .artifacts else { return [] }
            uploads += found
            skipped += notTaken
            return nextCollectStep()
        case (.collecting, .uploaded(let index, let problem, _)):
            guard inFlight.remove(index) != nil else { return [] }
            let upload = uploads[index]
            if let problem {
                skipped.append(SkippedArtifact(path: upload.ref.path, size: upload.ref.size, reason: "not uploaded: \(problem)"))
            } else {
                artifacts.append(upload.ref)
            }
            return startUploads()
        case (.collecting, .stopping(let now)):
            stopped = true
            guard now + limits.stopCollectMs < deadlineMs else { return [] }
            deadlineMs = now + limits.stopCollectMs
            return [.armDeadline(atMs: deadlineMs)]
        case (.collecting, .deadline(let now)):
            guard now >= deadlineMs else { return [.armDeadline(atMs: deadlineMs)] }
            return cutCollection(now: now)
        default:
            return []
        }
    }

    /// Tasks holding a slot without a process (reported as running, like one).
    var holdsSlotWithoutProcess: Bool { phase == .preparing || phase == .collecting }

    private mutating func nextCollectStep() -> [Action] {
        stepIndex += 1
        if stepIndex < collectSteps.count { return [.collect(collectSteps[stepIndex])] }
        return startUploads()
    }

    /// Starts uploads up to the parallel limit; finishes once every one has ended.
    private mutating func startUploads() -> [Action] {
        guard stepIndex >= collectSteps.count else { return [] }
        var actions: [Action] = []
        while nextUpload < uploads.count && inFlight.count < limits.parallelUploads {
            inFlight.insert(nextUpload)
            actions.append(.upload(index: nextUpload, uploads[nextUpload]))
            nextUpload += 1
        }
        if inFlight.isEmpty && nextUpload == uploads.count { actions += finish() }
        return actions
    }

    /// The deadline passed: what is not done is skipped, with the reason, and the result goes.
    private mutating func cutCollection(now: Int64) -> [Action] {
        let why = stopped ? "the worker stopped before collection finished"
            : "collection did not finish within \(TaskSupervisor.seconds(limits.collectMs))"
        if stepIndex < collectSteps.count {
            let step = collectSteps[stepIndex]
            skipped.append(SkippedArtifact(path: step == .gitCollect ? "swarm-\(assignment.id).bundle" : "*",
                                           size: nil, reason: "\(step == .gitCollect ? "git collect" : "artifact search") stopped: \(why)"))
            if step == .gitCollect && collectSteps.contains(.artifacts) {
                skipped.append(SkippedArtifact(path: "*", size: nil, reason: "artifacts not searched: \(why)"))
            }
        }
        for index in inFlight.sorted() + Array(nextUpload..<uploads.count) {
            let ref = uploads[index].ref
            skipped.append(SkippedArtifact(path: ref.path, size: ref.size, reason: "not uploaded: \(why)"))
        }
        inFlight = []
        nextUpload = uploads.count
        stepIndex = collectSteps.count
        return finish()
    }

    private mutating func finish() -> [Action] {
        guard var result = runResult else { return [] }
        phase = .finished
        if collectSteps.contains(.artifacts) { result.artifacts = artifacts.sorted { $0.path < $1.path } }
        else if !artifacts.isEmpty { result.artifacts = artifacts }
        if !skipped.isEmpty { result.skippedArtifacts = skipped }
        if git != nil { result.git = git }
        measure(&result.metrics)
        return [.finish(result)]
    }

    /// The pipeline's own figures in the result: time preparing (to the spawn, or to the end
    /// of a run that never started), input bytes fetched (tasks with inputs), time collecting
    /// (tasks with something to collect). None unless `start` was given the time.
    private func measure(_ metrics: inout RunMetrics) {
        guard let start = startedMs else { return }
        if let end = preparedMs ?? lastNowMs { metrics.prepareMs = max(0, end - start) }
        if prepareSteps.contains(.inputs) { metrics.inputBytesFetched = inputBytesFetched }
        if !collectSteps.isEmpty, let start = runEndedMs, let end = lastNowMs { metrics.collectMs = max(0, end - start) }
    }

    /// Ends a run that never started: no process, no pid, no start time.
    private mutating func finishUnstarted(_ state: TaskState, _ reason: String) -> [Action] {
        phase = .finished
        var result = TaskResult(id: assignment.id, state: state, exitCode: nil, signal: nil, reason: reason, output: "",
                                pid: nil, attempt: assignment.attempt, startedAt: nil, finishedAt: wallAt)
        result.submittedAt = assignment.submittedAt
        result.placedAt = assignment.placedAt
        result.metrics = metrics
        measure(&result.metrics)
        return [.finish(result)]
    }
}

extension TaskPipeline.Event {
    /// The monotonic time the event brings.
    var nowMs: Int64 {
        switch self {
        case .prepared(_, _, let now), .runEnded(_, let now), .gitCollected(_, _, _, let now), .artifactsFound(_, _, let now),
             .uploaded(_, _, let now), .killRequested(_, _, let now), .stopping(let now), .deadline(let now):
            return now
        }
    }
}
