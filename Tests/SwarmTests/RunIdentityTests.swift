import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Results, kills and slots are tracked per run (task id + attempt), so a late report from an
/// earlier run never counts for the current one and a node is never over-committed.
@Suite struct RunIdentityTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    func run(_ id: String, _ attempt: Int) -> RunRef { RunRef(id: id, attempt: attempt) }

    /// A lost worker comes back still running attempt 1 while attempt 2 is queued: attempt 1 is
    /// killed there and holds the only slot until it is reported gone; its result never counts.
    @Test func returningWorkersOldRunIsKilledAndHoldsItsSlot() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "c", slots: 1)
        try S.submit(&state, ["t"])
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).count == 1)
        #expect(state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000) == [.nodeLost(name: "c")])
        #expect(try state.task("t").state == .queued)

        let back = try state.register(node: "c", slots: 1, labels: [:], running: [run("t", 1)], finished: [],
                                      address: nil, nowMs: Self.t0 + 3_000, at: Self.t0 + 3_000)
        #expect(back == [.kill(node: "c", run: run("t", 1), reason: "this run of the task is no longer current")])
        #expect(state.schedule(nowMs: Self.t0 + 3_001, at: Self.t0 + 3_001).isEmpty)  // the dying run holds the slot
        #expect(state.listNodes(nowMs: Self.t0 + 3_001).first?.freeSlots == 0)

        // Attempt 1's result arrives (it was killed): acknowledged, ignored, slot freed.
        let late = S.result("t", .cancelled, attempt: 1, at: Self.t0 + 3_100)
        #expect(state.taskFinished(node: "c", result: late, at: Self.t0 + 3_100) == [.ackResult(node: "c", run: run("t", 1))])
        #expect(try state.task("t").state == .queued)
        let next = S.assigns(state.schedule(nowMs: Self.t0 + 3_101, at: Self.t0 + 3_101))
        #expect(next.map { "\($0.node):\($0.id):\($0.attempt)" } == ["c:t:2"])

        // Only attempt 2's result ends the task.
        #expect(state.taskFinished(node: "c", result: S.result("t", attempt: 1, at: Self.t0 + 3_200), at: Self.t0 + 3_200)
                == [.ackResult(node: "c", run: run("t", 1))])
        #expect(try state.task("t").state == .running)
        #expect(state.taskFinished(node: "c", result: S.result("t", attempt: 2, at: Self.t0 + 3_300), at: Self.t0 + 3_300)
                == [.ackResult(node: "c", run: run("t", 2)), .taskEnded(id: "t")])
        let info = try state.task("t")
        #expect(info.state == .succeeded)
        #expect(info.attempts == 2)
    }

    @Test func heartbeatWithoutTheDyingRunFreesItsSlot() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "c", slots: 1)
        try S.submit(&state, ["t", "u"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)
        _ = try state.register(node: "c", slots: 1, labels: [:], running: [run("t", 1)], finished: [],
                               address: nil, nowMs: Self.t0 + 3_000, at: Self.t0 + 3_000)
        state.heartbeat(node: "c", running: [run("t", 1)])
        #expect(state.schedule(nowMs: Self.t0 + 3_100, at: Self.t0 + 3_100).isEmpty)
        state.heartbeat(node: "c", running: [])
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 3_200, at: Self.t0 + 3_200)).count == 1)
    }

    @Test func aNodeStillKillingATaskGetsNoNewRunOfIt() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "a", slots: 4)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)
        _ = try state.register(node: "a", slots: 4, labels: [:], running: [run("t", 1)], finished: [],
                               address: nil, nowMs: Self.t0 + 3_000, at: Self.t0 + 3_000)
        #expect(state.schedule(nowMs: Self.t0 + 3_001, at: Self.t0 + 3_001).isEmpty)  // a has 3 free slots, but t is dying there
        _ = try S.register(&state, "b", slots: 1, at: Self.t0 + 3_002)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 3_003, at: Self.t0 + 3_003)).map(\.node) == ["b"])
    }

    @Test func runEndedByAWorkerShutdownIsRequeuedUntilAttemptsRunOut() throws {
        var state = ClusterState(settings: SchedulerSettings(maxAttempts: 2))
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        let first = state.taskFinished(node: "a", result: S.result("t", .lost, attempt: 1, at: Self.t0 + 10), at: Self.t0 + 10)
        #expect(first == [.ackResult(node: "a", run: run("t", 1))])
        #expect(try state.task("t").state == .queued)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 20, at: Self.t0 + 20)).map(\.attempt) == [2])
        let second = state.taskFinished(node: "a", result: S.result("t", .lost, attempt: 2, at: Self.t0 + 30), at: Self.t0 + 30)
        #expect(second == [.ackResult(node: "a", run: run("t", 2)), .taskEnded(id: "t")])
        let info = try state.task("t")
        #expect(info.state == .lost)
        #expect(info.finishedAt == Self.t0 + 30)
    }

    @Test func leavingWorkerGetsNothingNewAndWhatItDropsIsRequeuedAtOnce() throws {
        var state = ClusterState()
        _ = try S.register(&state, "a", slots: 1)
        _ = try S.register(&state, "b", slots: 1)
        try S.submit(&state, ["t1", "t2"])
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.node) == ["a", "b"])
        state.leaving(node: "a")
        try S.submit(&state, ["t3"])
        #expect(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1).isEmpty)  // a is draining, b is full
        #expect(state.listNodes(nowMs: Self.t0 + 1).first?.state == .draining)
        // a goes away without reporting t1: it is requeued at once, not after lost-after.
        #expect(state.disconnected(node: "a", at: Self.t0 + 2).isEmpty)
        #expect(try state.task("t1").state == .queued)
        #expect(try state.task("t1").reason == "worker a left")
        _ = try S.register(&state, "a", slots: 2, at: Self.t0 + 3)  // a fresh start is ready again
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 4, at: Self.t0 + 4)).map { "\($0.node):\($0.id):\($0.attempt)" } == ["a:t1:2", "a:t3:1"])
    }

    @Test func startedReportOfAnOldRunIsIgnored() throws {
        var state = ClusterState()
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        state.taskStarted(node: "a", run: run("t", 7), startedAt: 5)
        #expect(try state.task("t").startedAt == nil)
        state.taskStarted(node: "a", run: run("t", 1), startedAt: Self.t0 + 1)
        #expect(try state.task("t").startedAt == Self.t0 + 1)
    }

    @Test func oversizedOrNulCarryingTasksAreRefusedAtSubmit() {
        #expect(TaskSpec(command: ["echo", String(repeating: "x", count: 200_000)]).problem()?.contains("limit") == true)
        #expect(TaskSpec(command: ["sh\u{0}-c"]).problem()?.contains("NUL") == true)
        #expect(TaskSpec(command: ["true"], env: ["K": "a\u{0}b"]).problem()?.contains("NUL") == true)
        let many = (0..<20).map { _ in String(repeating: "y", count: 100_000) }
        #expect(TaskSpec(command: ["echo"] + many).problem()?.contains("1048576") == true)
        #expect(TaskSpec(command: ["echo", String(repeating: "z", count: 100_000)]).problem() == nil)
    }
}

/// What the second review found, each pinned down.
@Suite struct SecondReviewTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    /// After a scheduler restart a worker still holds the result of an old run "R" attempt 1.
    /// A new task with the same id must not be placed there as attempt 1 before that result
    /// has come and been ignored.
    @Test func oldRunsResultCannotPassForANewTasksRun() throws {
        var state = ClusterState()
        try S.submit(&state, ["R"])
        _ = try state.register(node: "a", slots: 2, labels: [:], running: [], finished: [RunRef(id: "R", attempt: 1)],
                               address: nil, nowMs: Self.t0, at: Self.t0)
        #expect(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1).isEmpty)
        let old = S.result("R", .failed, attempt: 1, at: Self.t0 + 2)
        #expect(state.taskFinished(node: "a", result: old, at: Self.t0 + 2) == [.ackResult(node: "a", run: RunRef(id: "R", attempt: 1))])
        #expect(try state.task("R").state == .queued)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 3, at: Self.t0 + 3)).map { "\($0.node):\($0.id):\($0.attempt)" } == ["a:R:1"])
        #expect(state.taskFinished(node: "a", result: S.result("R", attempt: 1, at: Self.t0 + 4), at: Self.t0 + 4).count == 2)
        #expect(try state.task("R").state == .succeeded)
    }

    @Test func aHeldBackTaskDoesNotBlockTheQueueBehindIt() throws {
        var state = ClusterState()
        try S.submit(&state, ["HX", "HY", "HZ"])
        _ = try state.register(node: "w", slots: 4, labels: [:], running: [RunRef(id: "HX", attempt: 1)], finished: [],
                               address: nil, nowMs: Self.t0, at: Self.t0)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1)).map(\.id) == ["HY", "HZ"])
        #expect(state.queuedCount == 1)
        _ = state.taskFinished(node: "w", result: S.result("HX", .cancelled, attempt: 1, at: Self.t0 + 2), at: Self.t0 + 2)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 3, at: Self.t0 + 3)).map(\.id) == ["HX"])
    }

    @Test func aStalledSchedulerDoesNotBlameItsWorkers() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "a", slots: 1)
        state.forgiveStall(nowMs: Self.t0 + 5_000)
        #expect(state.tick(nowMs: Self.t0 + 5_500, at: Self.t0 + 5_500).isEmpty)
        #expect(state.tick(nowMs: Self.t0 + 6_001, at: Self.t0 + 6_001) == [.nodeLost(name: "a")])
    }

    @Test func aNewRunShowsNothingOfTheLastOne() throws {
        var state = ClusterState()
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        var lost = S.result("t", .lost, attempt: 1, at: Self.t0 + 5)
        lost.signal = 15
        lost.exitCode = nil
        lost.reason = "worker a shut down while the task ran"
        _ = state.taskFinished(node: "a", result: lost, at: Self.t0 + 5)
        _ = state.schedule(nowMs: Self.t0 + 6, at: Self.t0 + 6)
        let info = try state.task("t")
        #expect(info.state == .running)
        #expect(info.attempts == 2)
        #expect(info.output == nil)
        #expect(info.signal == nil)
        #expect(info.exitCode == nil)
        #expect(info.reason == nil)
    }

    @Test func departedWorkerStaysDrainingNotLost() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "a", slots: 1)
        state.leaving(node: "a")
        _ = state.disconnected(node: "a", at: Self.t0 + 10)
        #expect(state.tick(nowMs: Self.t0 + 60_000, at: Self.t0 + 60_000).isEmpty)
        #expect(state.listNodes(nowMs: Self.t0 + 60_000).first?.state == .draining)
    }

    @Test func argumentLimitCountsTheTerminatingNul() {
        #expect(TaskSpec(command: ["echo", String(repeating: "a", count: 131_072)]).problem() != nil)
        #expect(TaskSpec(command: ["echo", String(repeating: "a", count: 131_071)]).problem() == nil)
        #expect(TaskSpec(command: ["true"], env: ["A": String(repeating: "a", count: 131_070)]).problem() != nil)
        #expect(TaskSpec(command: ["true"], env: ["A": String(repeating: "a", count: 131_069)]).problem() == nil)
    }

    @Test func runThatFinishesCleanlyDuringAShutdownGraceSucceeds() throws {
        var s = SupervisorTests.running()
        _ = s.handle(.killRequested(reason: "worker shutting down", state: .lost, nowMs: 2_000))
        _ = s.handle(.streamClosed(.stdout, nowMs: 2_100))
        _ = s.handle(.streamClosed(.stderr, nowMs: 2_100))
        let r = try #require(SupervisorTests.finished(s.handle(.exited(status: 0, signal: 0, nowMs: 2_200))))
        #expect(r.state == .succeeded)
        // Killed by the signal instead: lost, to run again.
        var k = SupervisorTests.running()
        _ = k.handle(.killRequested(reason: "worker shutting down", state: .lost, nowMs: 2_000))
        _ = k.handle(.streamClosed(.stdout, nowMs: 2_100))
        _ = k.handle(.streamClosed(.stderr, nowMs: 2_100))
        #expect(try #require(SupervisorTests.finished(k.handle(.exited(status: 0, signal: 15, nowMs: 2_200)))).state == .lost)
    }

    @Test func killAfterItAlreadyExitedKeepsItsOwnOutcome() throws {
        var s = SupervisorTests.running()
        _ = s.handle(.exited(status: 4, signal: 0, nowMs: 2_000))  // pipes still open: draining
        let r = try #require(SupervisorTests.finished(s.handle(.killRequested(reason: "stop", state: .cancelled, nowMs: 2_050))))
        #expect(r.state == .failed)
        #expect(r.exitCode == 4)
    }
}
