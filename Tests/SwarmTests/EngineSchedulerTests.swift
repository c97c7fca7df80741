import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// The scheduler's side of the agent engine, pure: cancel, events, stats, health slots,
/// health_failed runs, batches and drains.
@Suite struct EngineSchedulerTests {
    static func cluster(slots: Int = 2) throws -> ClusterState {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: slots, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: 0)
        state.setHealth(node: "w1", runtimes: [RuntimeStatus(name: "claude", healthy: true)])
        return state
    }

    static func assigned(_ directives: [SchedulerDirective]) -> [TaskAssignment] {
        directives.compactMap { if case .assign(_, let a) = $0 { a } else { nil } }
    }

    static func result(_ a: TaskAssignment, _ state: TaskState, at: Int64 = 50) -> TaskResult {
        var r = TaskResult(id: a.id, state: state, exitCode: state == .succeeded ? 0 : nil, signal: nil, reason: nil,
                           output: "", pid: 10, attempt: a.attempt, startedAt: 10, finishedAt: at)
        r.metrics.model = a.spec.model
        r.metrics.extensions = 1
        r.metrics.silenceWarnings = state == .silenceKilled ? 1 : 0
        return r
    }

    @Test func assignmentsCarryTheWholeSpecAndItsTimes() throws {
        var state = try Self.cluster()
        var spec = TaskSpec(id: "a1", runtime: "claude", model: "opus", prompt: "hi")
        spec.context = .object(["k": .number(1)])
        spec.parent = "root"
        _ = try state.submit(spec, at: 5)
        let a = try #require(Self.assigned(state.schedule(nowMs: 7, at: 7)).first)
        #expect(a.spec == spec)
        #expect(a.submittedAt == 5 && a.placedAt == 7 && a.attempt == 1)
        let info = try state.task("a1")
        #expect(info.parent == "root" && info.metrics.model == "opus" && info.metrics.runtime == "claude" && info.node == "w1")
    }

    @Test func cancelEndsAQueuedTaskAndKillsARunningOne() throws {
        var state = try Self.cluster(slots: 1)
        _ = try state.submit(TaskSpec(id: "r", command: ["sleep", "9"]), at: 1)
        _ = try state.submit(TaskSpec(id: "q", command: ["true"]), at: 1)
        let run = try #require(Self.assigned(state.schedule(nowMs: 2, at: 2)).first)
        #expect(try state.cancel("q", at: 3) == [.taskEnded(id: "q")])
        #expect(try state.task("q").state == .cancelled)
        #expect(state.queuedCount == 0)
        #expect(try state.cancel("r", at: 4) == [.kill(node: "w1", run: RunRef(id: "r", attempt: 1), reason: "cancelled by user")])
        // Asking twice does not kill twice; a reconnect repeats the kill.
        #expect(try state.cancel("r", at: 5) == [])
        #expect(state.cancelKills(node: "w1") == [.kill(node: "w1", run: RunRef(id: "r", attempt: 1), reason: "cancelled by user")])
        var killed = Self.result(run, .cancelled)
        killed.reason = "killed by scheduler: cancelled by user"
        _ = state.taskFinished(node: "w1", result: killed, at: 6)
        #expect(try state.task("r").state == .cancelled)
        #expect(throws: SchedulerError.alreadyEnded("r", .cancelled)) { try state.cancel("r", at: 7) }
        #expect(throws: SchedulerError.unknownTask("nope")) { try state.cancel("nope", at: 7) }
    }

    @Test func aCancelledRunThatWasLostDoesNotRunAgain() throws {
        var state = try Self.cluster(slots: 1)
        _ = try state.submit(TaskSpec(id: "r", command: ["sleep", "9"]), at: 1)
        _ = state.schedule(nowMs: 2, at: 2)
        _ = try state.cancel("r", at: 3)
        let directives = state.tick(nowMs: 60_000, at: 60_000)  // the worker was lost meanwhile
        #expect(directives.contains(.taskEnded(id: "r")))
        #expect(try state.task("r").state == .cancelled)
        #expect(state.queuedCount == 0)
    }

    @Test func eventsAndResultsFeedTaskMetricsAndStats() throws {
        var state = try Self.cluster()
        _ = try state.submit(TaskSpec(id: "m1", runtime: "claude", model: "opus", prompt: "x"), at: 1)
        _ = try state.submit(TaskSpec(id: "m2", runtime: "claude", model: "opus", prompt: "y"), at: 1)
        let runs = Self.assigned(state.schedule(nowMs: 2, at: 2))
        #expect(runs.count == 2)
        state.taskEvent(node: "w1", run: RunRef(id: "m1", attempt: 1), kind: "silence_warning")
        state.taskEvent(node: "w1", run: RunRef(id: "m1", attempt: 9), kind: "silence_warning")  // not the current run
        #expect(try state.task("m1").metrics.silenceWarnings == 1)
        let active = state.statistics()
        #expect(active.cluster.byModel["opus"]?.active == 2)
        _ = state.taskFinished(node: "w1", result: Self.result(runs[0], .silenceKilled), at: 60)
        _ = state.taskFinished(node: "w1", result: Self.result(runs[1], .succeeded), at: 60)
        let stats = state.statistics()
        let opus = try #require(stats.cluster.byModel["opus"])
        #expect(opus.active == 0 && opus.completed == 2 && opus.succeeded == 1 && opus.failed == 1)
        #expect(opus.failedByReason == ["silence_killed": 1])
        #expect(opus.silenceKills == 1 && opus.extensions == 2 && opus.silenceWarnings == 1)
        #expect(stats.workers["w1"]?.totals == stats.cluster.totals)
        #expect(try state.task("m1").metrics.extensions == 1)
    }

    @Test func probesHoldSlotsAndHealthIsReported() throws {
        var state = try Self.cluster(slots: 2)
        let status = RuntimeStatus(name: "claude", healthy: true, checkedAt: 3, latencyMs: 40, passed: 1, totalLatencyMs: 40)
        state.setHealth(node: "w1", runtimes: [status], probing: 1)
        for i in 0..<3 { _ = try state.submit(TaskSpec(id: "t\(i)", command: ["true"]), at: 1) }
        #expect(Self.assigned(state.schedule(nowMs: 2, at: 2)).count == 1)
        #expect(state.listNodes(nowMs: 2).first?.runtimes == [status])
        #expect(state.statistics().cluster.health["claude"]?.meanLatencyMs == 40)
        state.setHealth(node: "w1", runtimes: [status], probing: 0)
        #expect(Self.assigned(state.schedule(nowMs: 3, at: 3)).count == 1)
    }

    @Test func healthFailedRunsGoBackToTheQueueUntilAttemptsRunOut() throws {
        var state = try Self.cluster(slots: 1)
        _ = try state.submit(TaskSpec(id: "h", runtime: "claude", prompt: "x"), at: 1)
        for attempt in 1...3 {
            let run = try #require(Self.assigned(state.schedule(nowMs: Int64(attempt * 10), at: Int64(attempt * 10))).first)
            #expect(run.attempt == attempt)
            _ = state.taskFinished(node: "w1", result: Self.result(run, .healthFailed), at: Int64(attempt * 10 + 1))
        }
        #expect(try state.task("h").state == .healthFailed)
        #expect(try state.task("h").attempts == 3)
    }

    @Test func batchesAreAllOrNothingAndIdempotent() throws {
        var state = try Self.cluster()
        let a = TaskSpec(id: "a", command: ["true"]), b = TaskSpec(id: "b", command: ["true"])
        let first = try state.submitBatch([a, b, TaskSpec(command: ["true"])], at: 1)
        #expect(first.ids.prefix(2) == ["a", "b"] && first.existing.isEmpty && first.ids.count == 3)
        let again = try state.submitBatch([a, b], at: 2)
        #expect(again.ids == ["a", "b"] && again.existing == ["a", "b"])
        #expect(state.listTasks().count == 3)
        // A bad task anywhere: nothing of the batch goes in.
        #expect(throws: SchedulerError.self) { try state.submitBatch([TaskSpec(id: "c", command: ["true"]), TaskSpec(command: [])], at: 3) }
        #expect(throws: SchedulerError.duplicateId("a")) { try state.submitBatch([TaskSpec(id: "a", command: ["false"])], at: 3) }
        #expect(throws: SchedulerError.self) { try state.submitBatch([TaskSpec(id: "d", command: ["true"]), TaskSpec(id: "d", command: ["true"])], at: 3) }
        #expect(state.listTasks().count == 3)
    }

    @Test func aDrainedNodeGetsNothingNewEvenAfterReconnecting() throws {
        var state = try Self.cluster()
        try state.drain(node: "w1")
        _ = try state.submit(TaskSpec(id: "t", command: ["true"]), at: 1)
        #expect(Self.assigned(state.schedule(nowMs: 2, at: 2)).isEmpty)
        _ = state.disconnected(node: "w1", at: 3)
        _ = try state.register(node: "w1", slots: 2, labels: [:], running: [], finished: [], address: nil, nowMs: 4, at: 4)
        #expect(state.listNodes(nowMs: 4).first?.state == .draining)
        #expect(Self.assigned(state.schedule(nowMs: 5, at: 5)).isEmpty)
        #expect(throws: SchedulerError.unknownNode("zz")) { try state.drain(node: "zz") }
    }

    @Test func heartbeatIntervalsGrowWithTheClusterAndLostAfterFollows() throws {
        let settings = SchedulerSettings(lostAfterMs: 10_000, heartbeatMs: 1_000)
        #expect(settings.heartbeatInterval(nodes: 1) == 1_000)
        #expect(settings.heartbeatInterval(nodes: 50) == 1_000)
        #expect(settings.heartbeatInterval(nodes: 51) == 1_020)
        #expect(settings.heartbeatInterval(nodes: 1_000) == 20_000)
        #expect(settings.lostAfter(intervalMs: 1_000) == 10_000)
        #expect(settings.lostAfter(intervalMs: 20_000) == 60_000)
        // 1,000 workers then send 50 heartbeats a second between them, not 1,000.
        var state = ClusterState(settings: settings)
        var intervals: [Int] = []
        for i in 0..<1_000 {
            _ = try state.register(node: "n\(i)", slots: 1, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: 0)
            intervals.append(state.assignHeartbeat(node: "n\(i)", jitterFraction: Double(i % 10) / 10))
            for update in state.heartbeatUpdates(jitter: { 0.5 }) {
                intervals[Int(update.node.dropFirst())!] = update.heartbeatMs
            }
        }
        #expect(intervals.first! >= 16_000)
        #expect(intervals.last! >= 20_000 && intervals.last! <= 25_000)
        let perSecond = intervals.reduce(0.0) { $0 + 1_000 / Double($1) }
        #expect(perSecond < 2 * Double(settings.maxHeartbeatsPerSecond))
        // The last worker is judged against its own, longer interval.
        #expect(state.tick(nowMs: 30_000, at: 30_000).filter { if case .nodeLost = $0 { true } else { false } }.count < 1_000)
        #expect(!state.tick(nowMs: 30_000, at: 30_000).contains(.nodeLost(name: "n999")))
        #expect(state.tick(nowMs: 80_000, at: 80_000).contains(.nodeLost(name: "n999")))
    }
}
