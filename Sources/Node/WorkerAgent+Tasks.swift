import Foundation
import SwarmProtocol
import SwarmUV

extension WorkerAgent {
    /// Slots in use: tasks (with a process, or preparing/collecting) and health probes.
    var busySlots: Int { runners.count + probes.count + workspace.heldSlots }

    func startTask(_ task: TaskAssignment) {
        if task.prefetch == true { return hold(task) }
        func reject(_ reason: String, permanent: Bool? = nil) {
            connection?.send(.reject(.init(id: task.id, attempt: task.attempt, reason: reason, permanent: permanent)))
        }
        // An earlier run's result record and log are this id's too: written before anything new.
        flushFinishedFiles(task.id)
        if let runner = runners[task.id] {
            // Never two processes for one task id here (they share its log and journal entry).
            if runner.attempt != task.attempt { reject("attempt \(runner.attempt) of this task is still ending here") }
            return
        }
        if !workspace.tasks.isEmpty, let entry = workspace.tasks[task.id] {
            if entry.task.attempt != task.attempt { reject("attempt \(entry.task.attempt) of this task is still ending here") }
            return
        }
        // Ids become file names and numbers feed timers: checked here too (`TaskAssignment.problem`).
        // An assignment no worker could run is refused for good: the scheduler ends that task
        // rather than bouncing it between workers (each refusal holds a worker back a second).
        if let problem = task.problem() { return reject(problem, permanent: true) }
        guard !stopping else { return reject("worker is shutting down") }
        guard busySlots < config.slots else {
            return reject("all \(config.slots) slots are busy (\(probes.count) with health probes)")
        }
        let plan: LaunchPlan
        switch LaunchPlan.make(task: task, config: config, baseEnvironment: baseEnvironment, health: health,
                               logsDir: logsDir, execLimit: execLimit, clocks: clocks) {
        case .success(let p): plan = p
        case .failure(.refuse(let reason)): return reject(reason)
        case .failure(.fail(let state, let reason)):
            var metrics = RunMetrics()
            metrics.node = config.name
            metrics.runtime = task.spec.runtime
            metrics.model = task.spec.model
            return finished(unstarted(task, state, reason, metrics: metrics))
        }
        // No room for its log, result and journal records: it does not start (`DiskRoom`).
        if let problem = roomProblem() {
            return finished(unstarted(task, .spawnFailed, problem, metrics: plan.context.metrics))
        }
        claimWorkDir(task, workDir: plan.workDir)
        var context = plan.context
        let run = RunRef(id: task.id, attempt: task.attempt)
        context.onEvent = { [weak self] kind, detail in
            guard let self else { return }
            let event = Message.TaskEvent(id: run.id, attempt: run.attempt, kind: kind, at: self.clocks.wall(), detail: detail)
            // Held while the scheduler is away (the result carries the counts in any case).
            self.feed(.taskEvent(event))
        }
        context.onOutput = { [weak self] stream, bytes, at in
            // Also while the scheduler is away: sent after reconnecting, so `swarm logs` has
            // what was said meanwhile.
            self?.relayOutput(run, stream, bytes, at: at)
        }
        // Work in or out (issue 11): prepared, run and collected by the pipeline.
        if TaskPipeline.needed(task.spec, artifactPatterns: plan.artifactPatterns) {
            return startPipeline(task, plan, context)
        }
        do { try plan.prepare() } catch {
            context.argv = []  // reported as a spawn failure below, with the reason in the log
            context.onEvent("prepare_failed", "\(error)")
            var result = TaskResult(id: task.id, state: .spawnFailed, exitCode: nil, signal: nil,
                                    reason: "cannot prepare the task's directory: \(error)", output: "",
                                    pid: nil, attempt: task.attempt, startedAt: nil, finishedAt: clocks.wall())
            result.metrics = context.metrics
            return finished(result)
        }
        launch(task, context, defersLogClose: true) { [weak self] result in self?.runnerEnded(result) }
    }

    /// Starts the run's process; `ended` gets its result (the runner is in `runners` meanwhile).
    /// `defersLogClose`: the log is closed once the result is sent (`deliverFinished`).
    func launch(_ task: TaskAssignment, _ context: RunnerContext, defersLogClose: Bool = false,
                ended: @escaping (TaskResult) -> Void) {
        let runner = TaskRunner(loop: loop, assignment: task, context: context, onFinish: ended)
        runner.defersLogClose = defersLogClose
        runners[task.id] = runner
        let spawnStart = ContinuousClock.now
        let spawnFromBootMs = ProcessTable.bootMs()
        GapTrace.mark("w_launch", task.id)
        runner.start()
        GapTrace.mark("w_spawned", task.id)
        if let pid = runner.pid, runners[task.id] != nil {
            metrics.spawned(after: ContinuousClock.now - spawnStart)
            journalStarted(RunRef(id: task.id, attempt: task.attempt), pid: pid,
                           spawnBootMs: spawnFromBootMs...max(spawnFromBootMs, ProcessTable.bootMs()))
            connection?.send(.taskStarted(.init(id: task.id, attempt: task.attempt, pid: pid, startedAt: clocks.wall())))
        }
    }

    /// The result of a run that never got a process.
    func unstarted(_ task: TaskAssignment, _ state: TaskState, _ reason: String, metrics: RunMetrics) -> TaskResult {
        var result = TaskResult(id: task.id, state: state, exitCode: nil, signal: nil, reason: reason, output: "",
                                pid: nil, attempt: task.attempt, startedAt: nil, finishedAt: clocks.wall())
        result.submittedAt = task.submittedAt
        result.placedAt = task.placedAt
        result.metrics = metrics
        return result
    }

    /// Why no task can start now for lack of room in the data dir (or the work root, when it
    /// is elsewhere), nil when there is room. The worker logs each change once.
    func roomProblem() -> String? {
        var problem = diskRoom.problem(DiskRoom.measure(config.dataDir), directory: config.dataDir, worker: config.name)
        if problem == nil, let root = config.workRootDir {
            problem = diskRoom.problem(DiskRoom.measure(root), directory: root, worker: config.name)
        }
        switch diskRoom.observe(problem) {
        case .filled(let problem)?:
            logger.error("\(problem): tasks assigned here end spawn_failed until there is room")
        case .freed?:
            logger.notice("room again in the data dir of worker \(config.name): tasks start again")
            journal.rewriteIfDue()  // acknowledgements the full disk refused
        case nil:
            break
        }
        return problem
    }

    static func resultJSON(_ result: TaskResult) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(1024 + result.output.utf8.count)
        try? FastJSONEncoder().encode(result, appendingTo: &bytes)
        bytes.append(0x0A)
        return bytes
    }

    private func runnerEnded(_ result: TaskResult) {
        let runner = runners.removeValue(forKey: result.id)
        if let runtime = result.metrics.runtime, result.state == .spawnFailed || result.state == .failed {
            health.taskFailed(runtime, nowMs: clocks.monotonic())
        }
        // A due probe takes the freed slot before the scheduler hears it is free.
        startDueProbes()
        finished(result, runner: runner)
    }
}
