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
        #expect(S.assigns(state.schedule(nowMs: Self.t0)).count == 1)
        #expect(state.tick(nowMs: Self.t0 + 2_000) == [.nodeLost(name: "c")])
        #expect(try state.task("t").state == .queued)

        let back = try state.register(node: "c", slots: 1, labels: [:], running: [run("t", 1)], finished: [],
                                      address: nil, nowMs: Self.t0 + 3_000)
        #expect(back == [.kill(node: "c", run: run("t", 1), reason: "this run of the task is no longer current")])
        #expect(state.schedule(nowMs: Self.t0 + 3_001).isEmpty)  // the dying run holds the slot
        #expect(state.listNodes(nowMs: Self.t0 + 3_001).first?.freeSlots == 0)

        // Attempt 1's result arrives (it was killed): acknowledged, ignored, slot freed.
        let late = S.result("t", .cancelled, attempt: 1, at: Self.t0 + 3_100)
        #expect(state.taskFinished(node: "c", result: late, nowMs: Self.t0 + 3_100) == [.ackResult(node: "c", run: run("t", 1))])
        #expect(try state.task("t").state == .queued)
        let next = S.assigns(state.schedule(nowMs: Self.t0 + 3_101))
        #expect(next.map { "\($0.node):\($0.id):\($0.attempt)" } == ["c:t:2"])

        // Only attempt 2's result ends the task.
        #expect(state.taskFinished(node: "c", result: S.result("t", attempt: 1, at: Self.t0 + 3_200), nowMs: Self.t0 + 3_200)
                == [.ackResult(node: "c", run: run("t", 1))])
        #expect(try state.task("t").state == .running)
        #expect(state.taskFinished(node: "c", result: S.result("t", attempt: 2, at: Self.t0 + 3_300), nowMs: Self.t0 + 3_300)
                == [.ackResult(node: "c", run: run("t", 2)), .taskEnded(id: "t")])
        let info = try state.task("t")
        #expect(info.state == .succeeded)
        #expect(info.attempts == 2)
    }

    @Test func heartbeatWithoutTheDyingRunFreesItsSlot() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "c", slots: 1)
        try S.submit(&state, ["t", "u"])
        _ = state.schedule(nowMs: Self.t0)
        _ = state.tick(nowMs: Self.t0 + 2_000)
        _ = try state.register(node: "c", slots: 1, labels: [:], running: [run("t", 1)], finished: [],
                               address: nil, nowMs: Self.t0 + 3_000)
        state.heartbeat(node: "c", freeSlots: 0, running: [run("t", 1)])
        #expect(state.schedule(nowMs: Self.t0 + 3_100).isEmpty)
        state.heartbeat(node: "c", freeSlots: 1, running: [])
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 3_200)).count == 1)
    }

    @Test func aNodeStillKillingATaskGetsNoNewRunOfIt() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try S.register(&state, "a", slots: 4)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0)
        _ = state.tick(nowMs: Self.t0 + 2_000)
        _ = try state.register(node: "a", slots: 4, labels: [:], running: [run("t", 1)], finished: [],
                               address: nil, nowMs: Self.t0 + 3_000)
        #expect(state.schedule(nowMs: Self.t0 + 3_001).isEmpty)  // a has 3 free slots, but t is dying there
        _ = try S.register(&state, "b", slots: 1, at: Self.t0 + 3_002)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 3_003)).map(\.node) == ["b"])
    }

    @Test func runEndedByAWorkerShutdownIsRequeuedUntilAttemptsRunOut() throws {
        var state = ClusterState(settings: SchedulerSettings(maxAttempts: 2))
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0)
        let first = state.taskFinished(node: "a", result: S.result("t", .lost, attempt: 1, at: Self.t0 + 10), nowMs: Self.t0 + 10)
        #expect(first == [.ackResult(node: "a", run: run("t", 1))])
        #expect(try state.task("t").state == .queued)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 20)).map(\.attempt) == [2])
        let second = state.taskFinished(node: "a", result: S.result("t", .lost, attempt: 2, at: Self.t0 + 30), nowMs: Self.t0 + 30)
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
        #expect(S.assigns(state.schedule(nowMs: Self.t0)).map(\.node) == ["a", "b"])
        state.leaving(node: "a")
        try S.submit(&state, ["t3"])
        #expect(state.schedule(nowMs: Self.t0 + 1).isEmpty)  // a is draining, b is full
        #expect(state.listNodes(nowMs: Self.t0 + 1).first?.state == .draining)
        // a goes away without reporting t1: it is requeued at once, not after lost-after.
        #expect(state.disconnected(node: "a", nowMs: Self.t0 + 2).isEmpty)
        #expect(try state.task("t1").state == .queued)
        #expect(try state.task("t1").reason == "worker a left")
        _ = try S.register(&state, "a", slots: 2, at: Self.t0 + 3)  // a fresh start is ready again
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 4)).map { "\($0.node):\($0.id):\($0.attempt)" } == ["a:t1:2", "a:t3:1"])
    }

    @Test func startedReportOfAnOldRunIsIgnored() throws {
        var state = ClusterState()
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0)
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
