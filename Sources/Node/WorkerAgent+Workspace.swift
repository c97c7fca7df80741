import Foundation
import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// The shell of `TaskPipeline`: carries out its actions (directories, inputs, the run,
/// artifacts, uploads, deadlines) for tasks with work in or out.
extension WorkerAgent {
    /// Takes a task with inputs, a repo, a workdir or artifacts into the pipeline (from
    /// `startTask`, once its launch plan is made): it holds its slot from now on.
    func startPipeline(_ task: TaskAssignment, _ plan: LaunchPlan, _ context: RunnerContext) {
        let core = TaskPipeline(assignment: task, metrics: context.metrics,
                                collectsArtifacts: !plan.artifactPatterns.isEmpty, limits: config.pipelineLimits)
        let entry = PipelineTask(core: core, task: task, plan: plan, context: context)
        workspace.tasks[task.id] = entry
        if task.spec.repo != nil { workspace.worktrees[entry.run] = plan.workDir }
        apply(entry, entry.core.start(nowMs: clocks.monotonic()))
    }

    /// Feeds `event` (its `nowMs` monotonic) to the task's core, with the wall clock to date a
    /// result by, and carries out what it says.
    func pipelineEvent(_ entry: PipelineTask, _ event: TaskPipeline.Event) {
        apply(entry, entry.core.handle(event, at: clocks.wall()))
    }

    private func apply(_ entry: PipelineTask, _ actions: [TaskPipeline.Action]) {
        for action in actions {
            switch action {
            case .prepare(let step): prepare(entry, step)
            case .spawn: spawnPipelineTask(entry)
            case .collect(let step): collect(entry, step)
            case .upload(let index, let upload): uploadArtifact(entry, index, upload)
            case .armDeadline(let at):
                if entry.deadlineTimer == nil { entry.deadlineTimer = try? UVTimer(loop: loop) }
                entry.deadlineTimer?.start(afterMs: UInt64(max(0, at - clocks.monotonic()))) { [weak self, unowned entry] in
                    guard let self else { return }
                    self.pipelineEvent(entry, .deadline(nowMs: self.clocks.monotonic()))
                }
            case .finish(let result): finishPipeline(entry, result)
            }
        }
    }

    private func prepare(_ entry: PipelineTask, _ step: TaskPipeline.PrepareStep) {
        switch step {
        case .gitWorktree:
            if let problem = sharedDirectoryProblem(entry) {
                return pipelineEvent(entry, .prepared(.gitWorktree, problem: problem, nowMs: clocks.monotonic()))
            }
            prepareWorktree(entry)
        case .directory:
            let problem = sharedDirectoryProblem(entry) ?? prepareDirectory(entry)
            pipelineEvent(entry, .prepared(.directory, problem: problem, nowMs: clocks.monotonic()))
        case .inputs: requestInputs(entry)
        }
    }

    /// A worker with `--work-dir` runs every task in that one shared directory: inputs would be
    /// replaced under a running task by the next task's unpack and removed by the first result,
    /// and a worktree would take the shared directory over (and delete it on release). As
    /// `workdir` with `inputs` or `repo` is refused at submit, such a task ends `spawn_failed`.
    private func sharedDirectoryProblem(_ entry: PipelineTask) -> String? {
        let spec = entry.task.spec
        guard spec.workdir == nil, let shared = config.workDir, spec.repo != nil || spec.inputBlobs?.isEmpty == false else { return nil }
        let what = spec.repo != nil ? "a --repo task" : "a task with inputs"
        return "worker \(config.name) runs every task in one shared directory \(PeerText.safe(shared, limit: 300)) (--work-dir): \(what) needs its own directory"
    }

    /// The task directory: a `workdir` must exist (it is never made); `WORKROOT/ID` is made.
    /// Then the context file. Nil, or why the run cannot start.
    private func prepareDirectory(_ entry: PipelineTask) -> String? {
        if let dir = entry.task.spec.workdir {
            let shown = PeerText.safe(dir, limit: 300)
            guard dir.hasPrefix("/") else { return "workdir \(shown) is not an absolute path (on worker \(config.name))" }
            var info = stat()
            guard stat(dir, &info) == 0 else {
                return errno == ENOENT ? "workdir \(shown) does not exist on worker \(config.name)"
                    : "workdir \(shown) cannot be used on worker \(config.name): \(String(cString: strerror(errno)))"
            }
            guard info.st_mode & S_IFMT == S_IFDIR else { return "workdir \(shown) is not a directory on worker \(config.name)" }
        }
        do { try entry.plan.prepare() } catch {
            return "cannot prepare the task's directory on worker \(config.name): \(error)"
        }
        return nil
    }

    private func spawnPipelineTask(_ entry: PipelineTask) {
        guard !stopping else {
            return pipelineEvent(entry, .killRequested(reason: "worker \(config.name) shut down before the task started",
                                                       state: .lost, nowMs: clocks.monotonic()))
        }
        entry.hasProcess = true
        workspace.withProcess += 1
        launch(entry.task, entry.context) { [weak self, entry] result in
            guard let self else { return }
            self.runners[result.id] = nil
            entry.hasProcess = false
            self.workspace.withProcess -= 1
            if let runtime = result.metrics.runtime, result.state == .spawnFailed || result.state == .failed {
                self.health.taskFailed(runtime, nowMs: self.clocks.monotonic())
            }
            self.pipelineEvent(entry, .runEnded(result, nowMs: self.clocks.monotonic()))
            // Killed by a stop: its collection gets the stop's short while, not the full one.
            if self.stopping { self.pipelineEvent(entry, .stopping(nowMs: self.clocks.monotonic())) }
        }
    }

    private func collect(_ entry: PipelineTask, _ step: TaskPipeline.CollectStep) {
        switch step {
        case .gitCollect: collectWorktree(entry)
        case .artifacts:
            var limits = ArtifactCollector.Limits()
            limits.maxBytes = config.maxArtifactBytesPerTask
            // Off the loop: hashing what matched reads every byte of it.
            let root = entry.plan.workDir, patterns = entry.plan.artifactPatterns
            workspace.offLoop(loop, { [limits] in ArtifactCollector.collect(root: root, patterns: patterns, limits: limits) }) { [weak self, entry] found in
                guard let self else { return }
                self.pipelineEvent(entry, .artifactsFound(found.uploads, skipped: found.skipped, nowMs: self.clocks.monotonic()))
            }
        }
    }

    private func uploadArtifact(_ entry: PipelineTask, _ index: Int, _ upload: TaskPipeline.Upload) {
        guard let blobs = workspace.blobs else {
            return pipelineEvent(entry, .uploaded(index: index, problem: "worker \(config.name) cannot upload blobs", nowMs: clocks.monotonic()))
        }
        blobs.upload(file: upload.file, sha256: upload.ref.sha256, size: upload.ref.size) { [weak self, entry] problem in
            guard let self else { return }
            self.pipelineEvent(entry, .uploaded(index: index, problem: problem, nowMs: self.clocks.monotonic()))
        }
    }

    private func finishPipeline(_ entry: PipelineTask, _ result: TaskResult) {
        var result = result
        if let worktreeMs = entry.worktreeMs { result.metrics.worktreeMs = worktreeMs }
        if let reused = entry.worktreeReused { result.metrics.worktreeReused = reused }
        entry.deadlineTimer?.close()
        entry.deadlineTimer = nil
        if workspace.tasks[entry.task.id] === entry { workspace.tasks[entry.task.id] = nil }
        if let inputs = entry.task.spec.inputBlobs, !inputs.isEmpty {
            applyCache(workspace.cache.release(entry.run))
            // A repo task's worktree goes as a whole on release; a workdir task has no inputs.
            if entry.task.spec.repo == nil, entry.task.spec.workdir == nil {
                workspace.inputCopies[entry.run] = (entry.plan.workDir, inputs.map(\.dest))
            }
        }
        finished(result)
        // The freed slot: a due probe may take it before the scheduler hears it is free.
        startDueProbes()
    }

    /// A `kill` for a task in the pipeline without a process: preparing ends now (nothing is
    /// spawned); collecting goes on (the run is over, like a kill while draining).
    func killPipelineTask(_ kill: Message.Kill) {
        guard let entry = workspace.tasks[kill.id], entry.task.attempt == kill.attempt, !entry.hasProcess else { return }
        pipelineEvent(entry, .killRequested(reason: "killed by scheduler: \(kill.reason)", state: .cancelled, nowMs: clocks.monotonic()))
    }

    /// The worker is stopping: preparing tasks end `lost` (run again elsewhere), collecting
    /// ones get a short while more. (Running ones are killed with the other runners.)
    func stopPipelines() {
        for entry in Array(workspace.tasks.values) where !entry.hasProcess {
            pipelineEvent(entry, .killRequested(reason: "worker \(config.name) shut down while the task was being prepared",
                                                state: .lost, nowMs: clocks.monotonic()))
            pipelineEvent(entry, .stopping(nowMs: clocks.monotonic()))
        }
    }

    /// A hurried stop: collections end now, with what is not uploaded listed as skipped.
    func hurryPipelines() {
        for entry in Array(workspace.tasks.values) where !entry.hasProcess {
            pipelineEvent(entry, .deadline(nowMs: .max))
        }
    }

    /// The scheduler holds the result of `run`: what the run's workspace kept can go.
    func releaseWorkspace(_ run: RunRef) {
        if !workspace.inputCopies.isEmpty, let copies = workspace.inputCopies.removeValue(forKey: run) {
            workspace.offLoop(loop, { Self.removeInputCopies(copies.dests, in: copies.root) }) { _ in }
        }
        guard !workspace.worktrees.isEmpty, let dir = workspace.worktrees.removeValue(forKey: run) else { return }
        unlink("\(config.dataDir)/bundles/\(run.id).bundle")
        releaseWorktree(run, dir: dir)
    }

    // MARK: Git (issue 11 item 4: `GitWorkspace` plugs in here)

    /// Makes the git workspace; the worktrees a previous worker process left are removed (their
    /// runs are over: bundles are uploaded before results are written, and results are re-sent
    /// from the results directory).
    func startGitWorkspace() {
        let git = GitWorkspace(loop: loop, dataDir: config.dataDir, logger: logger, workerName: config.name)
        git.checkoutSlots = config.checkoutSlots ?? GitWorkspace.defaultCheckoutSlots
        workspace.git = git
        var info = stat()
        if stat(git.mirrorsDir, &info) == 0 { git.pruneStale(keeping: []) {} }
    }

    /// `repo` tasks: make the worktree (the task directory, `entry.plan.workDir`), keep the
    /// base commit in `entry.gitBase`, answer `.prepared(.gitWorktree, problem)`.
    private func prepareWorktree(_ entry: PipelineTask) {
        guard let git = workspace.git, let repo = entry.task.spec.repo else {
            return pipelineEvent(entry, .prepared(.gitWorktree, problem: "worker \(config.name) has no git workspace", nowMs: clocks.monotonic()))
        }
        let dir = entry.plan.workDir
        git.prepare(id: entry.task.id, repo: repo, ref: entry.task.spec.ref, dir: dir) { [weak self, entry] outcome in
            guard let self else { return }
            guard self.workspace.tasks[entry.task.id] === entry else {
                // Ended (killed) while its worktree was being made: it goes now.
                if case .success = outcome {
                    _ = git.takeCreationMs(id: entry.task.id)
                    _ = git.takeReused(id: entry.task.id)
                    git.release(id: entry.task.id, dir: dir)
                }
                return
            }
            switch outcome {
            case .success(let base):
                entry.gitBase = base
                entry.worktreeMs = git.takeCreationMs(id: entry.task.id)
                entry.worktreeReused = git.takeReused(id: entry.task.id)
                self.pipelineEvent(entry, .prepared(.gitWorktree, problem: nil, nowMs: self.clocks.monotonic()))
            case .failure(let failure):
                self.pipelineEvent(entry, .prepared(.gitWorktree, problem: "git worktree of \(PeerText.safe(repo, limit: 200)) on worker \(self.config.name): \(failure)", nowMs: self.clocks.monotonic()))
            }
        }
    }

    /// `repo` tasks after the run: auto-commit and bundle (`GitWorkspace.collect`), inputs and
    /// the context file left out of the commit; then `gitCollected`.
    private func collectWorktree(_ entry: PipelineTask) {
        guard let git = workspace.git, let base = entry.gitBase else {
            return gitCollected(entry, outcome: nil, bundle: nil, problem: "the task's worktree was not made")
        }
        let excluding = (entry.task.spec.inputBlobs ?? []).map(\.dest) + [".swarm/context"]
        let bundle = gitBundlePath(entry)
        git.collect(id: entry.task.id, dir: entry.plan.workDir, base: base, excluding: excluding, bundlePath: bundle) { [weak self, entry] outcome in
            guard let self, self.workspace.tasks[entry.task.id] === entry else { return }
            switch outcome {
            case .success(let (git, wrote)): self.gitCollected(entry, outcome: git, bundle: wrote ? bundle : nil, problem: nil)
            case .failure(let failure): self.gitCollected(entry, outcome: nil, bundle: nil, problem: failure.description)
            }
        }
    }

    /// Where a `repo` task's bundle is written (outside the worktree, so it is no artifact of
    /// it; removed once the scheduler holds the result). The caller makes `DATA/bundles`.
    func gitBundlePath(_ entry: PipelineTask) -> String {
        "\(config.dataDir)/bundles/\(entry.task.id).bundle"
    }

    /// What `GitWorkspace.collect` answered: the outcome, the bundle written (nil: no new
    /// commits) or why collect failed. The bundle is hashed (off the loop: it may be large)
    /// and uploaded with the artifacts as `swarm-ID.bundle`, kind `gitBundle`; a failure is
    /// listed as skipped.
    func gitCollected(_ entry: PipelineTask, outcome: GitOutcome?, bundle path: String?, problem: String?) {
        guard let path else {
            return pipelineEvent(entry, .gitCollected(outcome, bundle: nil, problem: problem, nowMs: clocks.monotonic()))
        }
        workspace.offLoop(loop, { ArtifactCollector.hashFile(path) }) { [weak self, entry] hashed in
            guard let self, self.workspace.tasks[entry.task.id] === entry else { return }
            switch hashed {
            case .success(let (sha256, size)):
                let ref = ArtifactRef(path: "swarm-\(entry.task.id).bundle", size: size, sha256: sha256, kind: "gitBundle")
                self.pipelineEvent(entry, .gitCollected(outcome, bundle: .init(ref: ref, file: path), problem: problem, nowMs: self.clocks.monotonic()))
            case .failure(let error):
                self.pipelineEvent(entry, .gitCollected(outcome, bundle: nil, problem: "cannot read the bundle: \(error)", nowMs: self.clocks.monotonic()))
            }
        }
    }

    /// Removes the worktree and its branch (the scheduler holds the result).
    private func releaseWorktree(_ run: RunRef, dir: String) {
        workspace.git?.release(id: run.id, dir: dir)
    }
}
