import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// `TaskPipeline` (issue 11: preparing -> running -> collecting -> result) driven with
/// made-up events and times.
@Suite struct TaskPipelineTests {
    static let input = InputRef(dest: "src", sha256: String(repeating: "ab", count: 32), size: 100)

    static func assignment(inputs: Bool = true, repo: Bool = false, artifacts: Bool = false) -> TaskAssignment {
        var spec = TaskSpec(command: ["make"])
        if inputs { spec.inputBlobs = [input] }
        if repo { spec.repo = "/srv/repo.git" }
        if artifacts { spec.artifacts = ["out/*"] }
        return TaskAssignment(id: "t1", attempt: 2, spec: spec, submittedAt: 10, placedAt: 20)
    }

    static func pipeline(inputs: Bool = true, repo: Bool = false, artifacts: Bool = false,
                         limits: TaskPipeline.Limits = .init()) -> TaskPipeline {
        var metrics = RunMetrics()
        metrics.node = "w1"
        return TaskPipeline(assignment: assignment(inputs: inputs, repo: repo, artifacts: artifacts), metrics: metrics,
                            collectsArtifacts: artifacts, limits: limits)
    }

    static func finished(_ actions: [TaskPipeline.Action]) -> TaskResult? {
        for case .finish(let r) in actions { return r }
        return nil
    }

    static func runResult(_ state: TaskState = .succeeded) -> TaskResult {
        TaskResult(id: "t1", state: state, exitCode: 0, signal: nil, reason: nil, output: "ok", pid: 42,
                   attempt: 2, startedAt: 1_000, finishedAt: 2_000)
    }

    static func upload(_ path: String, size: Int64 = 5) -> TaskPipeline.Upload {
        .init(ref: ArtifactRef(path: path, size: size, sha256: String(repeating: "cd", count: 32)), file: "/w/t1/\(path)")
    }

    @Test func preparesInOrderThenSpawnsThenFinishesWithTheRunsResult() {
        var p = Self.pipeline()
        #expect(p.start() == [.prepare(.directory)])
        #expect(p.handle(.prepared(.inputs, problem: nil, nowMs: 1)).isEmpty, "out of order: ignored")
        #expect(p.handle(.prepared(.directory, problem: nil, nowMs: 1)) == [.prepare(.inputs)])
        #expect(p.holdsSlotWithoutProcess)
        #expect(p.handle(.prepared(.inputs, problem: nil, nowMs: 2)) == [.spawn])
        #expect(p.phase == .running)
        #expect(!p.holdsSlotWithoutProcess)
        // Kills of a running task go to its runner, not here.
        #expect(p.handle(.killRequested(reason: "x", state: .cancelled, nowMs: 3)).isEmpty)
        let end = p.handle(.runEnded(Self.runResult(), nowMs: 2_000))
        #expect(end == [.finish(Self.runResult())], "no artifacts, no repo: the result as the run ended")
        #expect(p.phase == .finished)
    }

    @Test func aKillWhilePreparingEndsTheRunWithoutASpawn() throws {
        var p = Self.pipeline()
        _ = p.start()
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        let actions = p.handle(.killRequested(reason: "killed by scheduler: cancelled by user", state: .cancelled, nowMs: 50))
        let result = try #require(Self.finished(actions))
        #expect(!actions.contains(.spawn))
        #expect(result.state == .cancelled)
        #expect(result.reason == "killed by scheduler: cancelled by user")
        #expect(result.pid == nil && result.startedAt == nil && result.exitCode == nil)
        #expect(result.finishedAt == 50 && result.attempt == 2 && result.submittedAt == 10 && result.placedAt == 20)
        #expect(result.metrics.node == "w1")
        // The fetch that ends later changes nothing.
        #expect(p.handle(.prepared(.inputs, problem: nil, nowMs: 60)).isEmpty)
        #expect(p.phase == .finished)
    }

    @Test func aFailedFetchEndsTheRunSpawnFailedWithTheReason() throws {
        var p = Self.pipeline()
        _ = p.start()
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        let reason = "input src (sha256 abab…) could not be fetched from the scheduler to worker w1: unknown blob"
        let result = try #require(Self.finished(p.handle(.prepared(.inputs, problem: reason, nowMs: 9))))
        #expect(result.state == .spawnFailed)
        #expect(result.reason == reason)
        #expect(p.handle(.runEnded(Self.runResult(), nowMs: 10)).isEmpty)
    }

    @Test func aMissingWorkdirIsASpawnFailure() throws {
        var p = Self.pipeline(inputs: false)
        #expect(p.start() == [.prepare(.directory)])
        let result = try #require(Self.finished(p.handle(.prepared(.directory, problem: "workdir /x does not exist on worker w1", nowMs: 3))))
        #expect(result.state == .spawnFailed && result.reason == "workdir /x does not exist on worker w1")
    }

    @Test func repoTasksMakeTheWorktreeFirstAndCollectGitBeforeArtifacts() throws {
        var p = Self.pipeline(repo: true, artifacts: true)
        #expect(p.start() == [.prepare(.gitWorktree)])
        #expect(p.handle(.prepared(.gitWorktree, problem: nil, nowMs: 1)) == [.prepare(.directory)])
        #expect(p.handle(.prepared(.directory, problem: nil, nowMs: 1)) == [.prepare(.inputs)])
        #expect(p.handle(.prepared(.inputs, problem: nil, nowMs: 1)) == [.spawn])
        let collect = p.handle(.runEnded(Self.runResult(.failed), nowMs: 2_000))
        #expect(collect == [.armDeadline(atMs: 2_000 + TaskPipeline.Limits().collectMs), .collect(.gitCollect)])
        let outcome = GitOutcome(branch: "swarm/t1", base: "b", head: "h", commits: 2)
        var bundle = Self.upload("swarm-t1.bundle", size: 900)
        bundle.ref.kind = "gitBundle"
        #expect(p.handle(.gitCollected(outcome, bundle: bundle, problem: nil, nowMs: 2_100)) == [.collect(.artifacts)])
        let uploads = p.handle(.artifactsFound([Self.upload("out/a")], skipped: [], nowMs: 2_200))
        #expect(uploads == [.upload(index: 0, bundle), .upload(index: 1, Self.upload("out/a"))])
        #expect(p.handle(.uploaded(index: 1, problem: nil, nowMs: 2_300)).isEmpty)
        let result = try #require(Self.finished(p.handle(.uploaded(index: 0, problem: nil, nowMs: 2_400))))
        #expect(result.state == .failed, "collection keeps the run's outcome")
        #expect(result.git == outcome)
        #expect(result.artifacts?.map(\.path) == ["out/a", "swarm-t1.bundle"])
        #expect(result.skippedArtifacts == nil)
    }

    @Test func aFailedGitCollectOrUploadIsListedAsSkippedAndTheResultStillGoes() throws {
        var p = Self.pipeline(inputs: false, repo: true, artifacts: true)
        _ = p.start()
        _ = p.handle(.prepared(.gitWorktree, problem: nil, nowMs: 1))
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        _ = p.handle(.runEnded(Self.runResult(), nowMs: 2_000))
        #expect(p.handle(.gitCollected(nil, bundle: nil, problem: "git commit failed: disk full", nowMs: 2_001)) == [.collect(.artifacts)])
        let notTaken = SkippedArtifact(path: "out/big", size: 1 << 40, reason: "over the limit")
        let uploads = p.handle(.artifactsFound([Self.upload("out/a"), Self.upload("out/b")], skipped: [notTaken], nowMs: 2_002))
        #expect(uploads.count == 2)
        #expect(p.handle(.uploaded(index: 0, problem: "scheduler refused: badBlob", nowMs: 2_003)).isEmpty)
        #expect(p.handle(.uploaded(index: 0, problem: nil, nowMs: 2_003)).isEmpty, "a second answer for one upload is ignored")
        let result = try #require(Self.finished(p.handle(.uploaded(index: 1, problem: nil, nowMs: 2_004))))
        #expect(result.artifacts?.map(\.path) == ["out/b"])
        #expect(result.skippedArtifacts == [
            SkippedArtifact(path: "swarm-t1.bundle", size: nil, reason: "git commit failed: disk full"),
            notTaken,
            SkippedArtifact(path: "out/a", size: 5, reason: "not uploaded: scheduler refused: badBlob"),
        ])
    }

    @Test func uploadsRunAFewAtATime() {
        var p = Self.pipeline(inputs: false, artifacts: true, limits: .init(parallelUploads: 2))
        _ = p.start()
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        _ = p.handle(.runEnded(Self.runResult(), nowMs: 2))
        let first = p.handle(.artifactsFound((0..<5).map { Self.upload("f\($0)") }, skipped: [], nowMs: 3))
        #expect(first == [.upload(index: 0, Self.upload("f0")), .upload(index: 1, Self.upload("f1"))])
        #expect(p.handle(.uploaded(index: 1, problem: nil, nowMs: 4)) == [.upload(index: 2, Self.upload("f2"))])
    }

    @Test func anUploadThatNeverEndsIsSkippedAtTheDeadline() throws {
        let limits = TaskPipeline.Limits(collectMs: 60_000, stopCollectMs: 5_000, parallelUploads: 1)
        var p = Self.pipeline(inputs: false, artifacts: true, limits: limits)
        _ = p.start()
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        #expect(p.handle(.runEnded(Self.runResult(), nowMs: 1_000)).first == .armDeadline(atMs: 61_000))
        _ = p.handle(.artifactsFound([Self.upload("a"), Self.upload("b")], skipped: [], nowMs: 1_001))
        // Early wake-ups re-arm; nothing is cut.
        #expect(p.handle(.deadline(nowMs: 30_000)) == [.armDeadline(atMs: 61_000)])
        let result = try #require(Self.finished(p.handle(.deadline(nowMs: 61_000))))
        #expect(result.state == .succeeded)
        #expect(result.artifacts == [])
        #expect(result.skippedArtifacts?.map(\.path) == ["a", "b"])
        #expect(result.skippedArtifacts?.allSatisfy { $0.reason == "not uploaded: collection did not finish within 60 s" } == true)
        #expect(p.handle(.uploaded(index: 0, problem: nil, nowMs: 62_000)).isEmpty)
    }

    @Test func aStoppingWorkerShortensCollectionAndEndsPreparingTasksLost() throws {
        let limits = TaskPipeline.Limits(collectMs: 60_000, stopCollectMs: 5_000, parallelUploads: 4)
        var p = Self.pipeline(inputs: false, artifacts: true, limits: limits)
        _ = p.start()
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        _ = p.handle(.runEnded(Self.runResult(), nowMs: 1_000))
        _ = p.handle(.artifactsFound([Self.upload("a")], skipped: [], nowMs: 1_001))
        #expect(p.handle(.stopping(nowMs: 2_000)) == [.armDeadline(atMs: 7_000)])
        let result = try #require(Self.finished(p.handle(.deadline(nowMs: 7_000))))
        #expect(result.skippedArtifacts == [SkippedArtifact(path: "a", size: 5, reason: "not uploaded: the worker stopped before collection finished")])

        var preparing = Self.pipeline()
        _ = preparing.start()
        let lost = try #require(Self.finished(preparing.handle(.killRequested(reason: "worker w1 shut down while the task was being prepared", state: .lost, nowMs: 5))))
        #expect(lost.state == .lost)
    }

    @Test func aCollectStepThatHangsIsCutAtTheDeadline() throws {
        var p = Self.pipeline(inputs: false, repo: true, artifacts: true, limits: .init(collectMs: 1_000))
        _ = p.start()
        _ = p.handle(.prepared(.gitWorktree, problem: nil, nowMs: 1))
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 1))
        _ = p.handle(.runEnded(Self.runResult(), nowMs: 10))
        let result = try #require(Self.finished(p.handle(.deadline(nowMs: 1_010))))
        #expect(result.skippedArtifacts?.map(\.path) == ["swarm-t1.bundle", "*"])
        #expect(p.handle(.gitCollected(nil, bundle: nil, problem: nil, nowMs: 2_000)).isEmpty)
    }

    @Test func onlyTasksWithWorkInOrOutTakeThePipeline() {
        #expect(!TaskPipeline.needed(TaskSpec(command: ["true"]), artifactPatterns: []))
        var spec = TaskSpec(command: ["true"])
        spec.workdir = "/tmp"
        #expect(TaskPipeline.needed(spec, artifactPatterns: []))
        #expect(TaskPipeline.needed(TaskSpec(command: ["true"]), artifactPatterns: ["*.log"]))
        spec = TaskSpec(command: ["true"])
        spec.inputBlobs = []
        #expect(!TaskPipeline.needed(spec, artifactPatterns: []))
    }
}
