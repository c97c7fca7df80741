import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// What the scheduler saves (changes, run history) and how it comes back after a restart:
/// queued tasks in their order, running ones kept or requeued as their workers report.
@Suite struct DurabilityTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    func run(_ id: String, _ attempt: Int) -> RunRef { RunRef(id: id, attempt: attempt) }

    /// The store as a dictionary: what `TaskStore.save` keeps of the tasks.
    struct Saved {
        var tasks: [String: TaskSnapshot] = [:]
        mutating func apply(_ changes: StateChanges) {
            for task in changes.tasks { tasks[task.info.id] = task }
        }
        mutating func save(_ state: inout ClusterState) { apply(state.takeChanges()) }
        var all: [TaskSnapshot] { Array(tasks.values) }
    }

    /// a runs t (attempt 1), u and v are queued behind it; then the scheduler "restarts".
    func restartedWithARunningTask(lostAfterMs: Int64 = 10_000) throws -> ClusterState {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: lostAfterMs))
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t", "u", "v"])
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.id) == ["t"])
        state.taskStarted(node: "a", run: run("t", 1), startedAt: Self.t0 + 1)
        var saved = Saved()
        saved.save(&state)
        return ClusterState(settings: SchedulerSettings(lostAfterMs: lostAfterMs), restoring: saved.all, nowMs: Self.t0 + 100, at: Self.t0 + 100)
    }

    // MARK: Changes

    @Test func changesNameTheChangedTasksAndTheRunsHistory() throws {
        var state = ClusterState()
        try S.submit(&state, ["t", "u"])
        let submitted = state.takeChanges()
        #expect(submitted.tasks.map(\.info.id) == ["t", "u"])
        #expect(submitted.tasks.map(\.sequence) == [1, 2])
        #expect(submitted.runs.isEmpty)
        #expect(!state.hasChanges)

        _ = try S.register(&state, "a", slots: 2)
        _ = state.schedule(nowMs: Self.t0 + 10, at: Self.t0 + 10)
        state.taskStarted(node: "a", run: run("t", 1), startedAt: Self.t0 + 11)
        #expect(state.takeChanges().runs == [.placed(run("t", 1), node: "a", placedAt: Self.t0 + 10),
                                             .placed(run("u", 1), node: "a", placedAt: Self.t0 + 10),
                                             .started(run("t", 1), startedAt: Self.t0 + 11)])

        _ = state.taskFinished(node: "a", result: S.result("t", at: Self.t0 + 20), at: Self.t0 + 20)
        var lost = S.result("u", .lost, at: Self.t0 + 21)
        lost.reason = "worker a shut down while the task ran"
        _ = state.taskFinished(node: "a", result: lost, at: Self.t0 + 21)
        _ = state.schedule(nowMs: Self.t0 + 22, at: Self.t0 + 22)
        let ended = state.takeChanges()
        #expect(ended.tasks.map { "\($0.info.id):\($0.info.state.rawValue):\($0.info.attempts)" } == ["t:succeeded:1", "u:running:2"])
        #expect(ended.runs == [.ended(run("t", 1), state: .succeeded, reason: nil, finishedAt: Self.t0 + 20, exitCode: 0),
                               .ended(run("u", 1), state: .lost, reason: "worker a shut down while the task ran", finishedAt: Self.t0 + 21),
                               .placed(run("u", 2), node: "a", placedAt: Self.t0 + 22)])
        #expect(state.takeChanges().isEmpty)
    }

    @Test func aRefusedRunIsWithdrawnAndItsAttemptUsedAgain() throws {
        var state = ClusterState()
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.takeChanges()
        state.taskRejected(node: "a", run: run("t", 1), nowMs: Self.t0 + 1, at: Self.t0 + 1)
        _ = try S.register(&state, "b", slots: 1, at: Self.t0 + 2)
        _ = state.schedule(nowMs: Self.t0 + 2, at: Self.t0 + 2)
        let changes = state.takeChanges()
        #expect(changes.runs.first == .withdrawn(run("t", 1)))
        #expect(changes.runs.last == .placed(run("t", 1), node: "b", placedAt: Self.t0 + 2))
    }

    @Test func givingUpEndsTheLastRunWithTheTask() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000, maxAttempts: 1))
        _ = try S.register(&state, "a", slots: 1)
        try S.submit(&state, ["t"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.takeChanges()
        _ = state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)
        let changes = state.takeChanges()
        #expect(changes.tasks.first?.info.state == .lost)
        #expect(changes.runs == [.ended(run("t", 1), state: .lost, reason: "worker a was lost; gave up after 1 attempts",
                                        finishedAt: Self.t0 + 2_000)])
    }

    // MARK: Restore

    @Test func queuedTasksComeBackInTheirOrderAfterTheEndedOnes() throws {
        var state = ClusterState()
        try S.submit(&state, ["q1", "done", "q2", "q3"])
        _ = try S.register(&state, "a", slots: 1)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)                     // q1 runs
        _ = state.taskFinished(node: "a", result: S.result("q1", at: Self.t0 + 1), at: Self.t0 + 1)
        _ = state.schedule(nowMs: Self.t0 + 2, at: Self.t0 + 2)                 // done runs
        _ = state.taskFinished(node: "a", result: S.result("done", .failed, at: Self.t0 + 3), at: Self.t0 + 3)
        var saved = Saved()
        saved.save(&state)

        var back = ClusterState(settings: SchedulerSettings(), restoring: saved.all.shuffled(), nowMs: Self.t0 + 10, at: Self.t0 + 10)
        #expect(!back.hasChanges)
        #expect(back.queuedCount == 2)
        #expect(back.listTasks().map(\.id) == ["q1", "done", "q2", "q3"])
        #expect(try back.task("done").state == .failed)
        #expect(try back.task("q1").output == "out q1")
        #expect(throws: SchedulerError.duplicateId("q2")) { _ = try back.submit(TaskSpec(id: "q2", command: ["x"]), at: Self.t0 + 11) }
        try S.submit(&back, ["later"], at: Self.t0 + 11)
        _ = try S.register(&back, "b", slots: 5, at: Self.t0 + 12)
        #expect(S.assigns(back.schedule(nowMs: Self.t0 + 13, at: Self.t0 + 13)).map(\.id) == ["q2", "q3", "later"])
    }

    @Test func aRestoredRunItsWorkerStillHasIsKeptNotRunAgain() throws {
        var state = try restartedWithARunningTask()
        #expect(try state.task("t").state == .running)
        #expect(state.listNodes(nowMs: Self.t0 + 100).map { "\($0.name):\($0.connected)" } == ["a:false"])
        let directives = try S.register(&state, "a", slots: 1, running: ["t"], at: Self.t0 + 200)
        #expect(directives.isEmpty)
        #expect(state.schedule(nowMs: Self.t0 + 201, at: Self.t0 + 201).isEmpty)  // its one slot is t's
        #expect(state.taskFinished(node: "a", result: S.result("t", at: Self.t0 + 300), at: Self.t0 + 300)
                == [.ackResult(node: "a", run: run("t", 1)), .taskEnded(id: "t")])
        let info = try state.task("t")
        #expect(info.state == .succeeded)
        #expect(info.attempts == 1)
        #expect(info.startedAt == Self.t0 + 295)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 301, at: Self.t0 + 301)).map { "\($0.id):\($0.attempt)" } == ["u:1"])
    }

    @Test func aRestoredRunWhoseResultWaitsOnItsWorkerEndsFromThatResult() throws {
        var state = try restartedWithARunningTask()
        #expect(try S.register(&state, "a", slots: 1, finished: ["t"], at: Self.t0 + 200).isEmpty)
        _ = state.taskFinished(node: "a", result: S.result("t", .failed, at: Self.t0 + 50), at: Self.t0 + 201)
        let info = try state.task("t")
        #expect(info.state == .failed)
        #expect(info.attempts == 1)
    }

    @Test func aRestoredRunItsWorkerNoLongerHasRunsAgain() throws {
        var state = try restartedWithARunningTask()
        #expect(try S.register(&state, "a", slots: 1, at: Self.t0 + 200).isEmpty)
        #expect(try state.task("t").reason == "its worker restarted without it")
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 201, at: Self.t0 + 201)).map { "\($0.id):\($0.attempt)" } == ["t:2"])
        #expect(state.takeChanges().runs.first == .ended(run("t", 1), state: .lost, reason: "its worker restarted without it", finishedAt: Self.t0 + 200))
    }

    @Test func restoredRunsOfAWorkerThatDoesNotComeBackAreRequeuedAfterLostAfter() throws {
        var state = try restartedWithARunningTask(lostAfterMs: 1_000)
        #expect(state.tick(nowMs: Self.t0 + 1_100, at: Self.t0 + 1_100).isEmpty)  // lost-after counts from the restart (t0 + 100)
        #expect(state.tick(nowMs: Self.t0 + 1_101, at: Self.t0 + 1_101) == [.nodeLost(name: "a")])
        #expect(try state.task("t").state == .queued)
        _ = try S.register(&state, "b", slots: 3, at: Self.t0 + 1_200)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 1_201, at: Self.t0 + 1_201)).map { "\($0.id):\($0.attempt)" } == ["t:2", "u:1", "v:1"])
    }

    @Test func aRestoredRunReportedByAnotherWorkerIsKilledThere() throws {
        var state = try restartedWithARunningTask()
        let directives = try S.register(&state, "b", slots: 1, running: ["t"], at: Self.t0 + 200)
        #expect(directives == [.kill(node: "b", run: run("t", 1), reason: "this run of the task is no longer current")])
        #expect(try S.register(&state, "a", slots: 1, running: ["t"], at: Self.t0 + 201).isEmpty)
        #expect(try state.task("t").node == "a")
    }

    @Test func aRunningTaskSavedWithoutAWorkerIsQueuedAgain() throws {
        let spec = TaskSpec(id: "odd", command: ["true"])
        var info = TaskInfo(id: "odd", state: .running, command: ["true"], attempts: 1, submittedAt: Self.t0)
        info.node = nil
        var state = ClusterState(settings: SchedulerSettings(), restoring: [TaskSnapshot(spec: spec, info: info, sequence: 7)], nowMs: Self.t0, at: Self.t0)
        #expect(try state.task("odd").state == .queued)
        #expect(state.queuedCount == 1)
        #expect(state.takeChanges().tasks.map(\.info.id) == ["odd"])
    }
}
