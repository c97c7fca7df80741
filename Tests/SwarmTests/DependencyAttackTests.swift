import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Dependencies under attack (issue 13 item 4), pure: the paths that end or release a task
/// other than a run's result (a refused assignment, a runtime's default model arriving) must
/// keep held tasks held and let every end reach the tasks waiting for it.
@Suite struct DependencyAttackTests {
    typealias S = SchedulerStateTests
    typealias D = DependencyTests
    static let t0 = SchedulerStateTests.t0

    /// A task cancelled while its assignment was on the way, which the worker then refuses
    /// (slots busy, shutting down): the refusal ends it `cancelled`, and that end must reach
    /// its dependents (`after` ends `dependency_failed`, `afterAny` is released) and the
    /// shell (`.taskEnded`: waiters, logs, credential).
    @Test func aRefusedRunOfACancelledTaskEndsItForItsDependentsAndWaiters() throws {
        var state = try D.cluster()
        _ = try state.submitBatch([D.spec("a"), D.spec("b", after: ["a"]), D.spec("c", any: ["a"])], at: Self.t0)
        #expect(D.placed(&state) == ["a"])
        _ = try state.cancel("a", at: Self.t0)
        let ended = RetryTests.ended(state.taskRejected(node: "w", run: RunRef(id: "a", attempt: 1), nowMs: Self.t0, at: Self.t0))
        #expect(try state.task("a").state == .cancelled)
        #expect(ended == ["a", "b"])
        #expect(try state.task("b").state == .dependencyFailed)
        #expect(try state.task("c").state == .queued && state.queuedCount == 1)
        D.check(state)
    }

    /// A runtime task submitted before any worker told its runtime's default model, waiting
    /// for a dependency: the model arriving must not put it into the placement queue.
    @Test func aWaitingDependentStaysHeldWhenItsRuntimesDefaultModelArrives() throws {
        var state = RetryTests.state()
        _ = try S.register(&state, "w", slots: 4)
        _ = try state.submit(D.spec("a"), at: Self.t0)
        #expect(D.placed(&state) == ["a"])
        var b = TaskSpec(id: "b", runtime: "claude", prompt: "merge")
        b.after = ["a"]
        _ = try state.submit(b, at: Self.t0)
        try AdmissionTests.register(&state, "w2", runtimes: [AdmissionTests.runtime("claude", defaultModel: "opus")])
        #expect(try state.task("b").metrics.model == "opus")
        D.check(state)
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).isEmpty)
        #expect(state.waitReason(for: "b")?.reason == "waiting for a (running)")
        _ = D.finish(&state, "a")
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.id) == ["b"])
        D.check(state)
    }

    /// The same for a task waiting out a retry backoff, placed before its runtime's default
    /// model was known: it waits its backoff whole, and is queued once.
    @Test func aTaskInBackoffStaysHeldWhenItsRuntimesDefaultModelArrives() throws {
        var state = RetryTests.state()
        try AdmissionTests.register(&state, "w1", runtimes: [AdmissionTests.runtime("claude")])
        var spec = TaskSpec(id: "t", runtime: "claude", prompt: "hi")
        spec.retries = 1
        spec.retryBackoff = 10
        _ = try state.submit(spec, at: Self.t0)
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.id) == ["t"])
        #expect(RetryTests.ended(state.taskFinished(node: "w1", result: S.result("t", .failed, at: Self.t0), at: Self.t0)).isEmpty)
        try AdmissionTests.register(&state, "w2", runtimes: [AdmissionTests.runtime("claude", defaultModel: "opus")])
        D.check(state)
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).isEmpty)
        let placed = S.assigns(state.schedule(nowMs: Self.t0 + 60_000, at: Self.t0 + 60_000))
        #expect(placed.map(\.id) == ["t"])
        D.check(state)
    }

    /// A chain of 20,000 tasks in one batch (each after the one before): the cycle check and
    /// the failure's run down the chain take no recursion, and every reason stays short.
    @Test func aFailureRunsDownAChainOfTwentyThousand() throws {
        var state = try D.cluster()
        let n = 20_000
        var specs = [D.spec("c0")]
        for i in 1..<n { specs.append(D.spec("c\(i)", after: ["c\(i - 1)"])) }
        _ = try state.submitBatch(specs, at: Self.t0)
        #expect(D.placed(&state) == ["c0"])
        var ended = D.finish(&state, "c0", .failed)
        // A slice at a time (`settleSlice`), a placement round each.
        for _ in 0..<100 where state.isSettling { ended += RetryTests.ended(state.schedule(nowMs: Self.t0, at: Self.t0)) }
        #expect(ended.count == n)
        let last = try state.task("c\(n - 1)")
        #expect(last.state == .dependencyFailed && last.reason == "dependency c\(n - 2) dependency_failed (c0 failed)")
        #expect(state.dependencies.dependencyCount == 0 && state.dependencies.waitingCount == 0)
        D.check(state)
    }

    /// Dependents that stop waiting for another reason (cancelled, failed by another
    /// dependency) leave entries under a dependency that has not ended; submitting and
    /// cancelling them again and again must not grow the index without bound.
    @Test func cancelledDependentsOfALongRunningTaskDoNotPileUpInTheIndex() throws {
        var state = try D.cluster()
        _ = try state.submit(D.spec("long"), at: Self.t0)
        #expect(D.placed(&state) == ["long"])
        for i in 0..<5_000 {
            _ = try state.submit(D.spec("d\(i)", after: ["long"]), at: Self.t0)
            _ = try state.cancel("d\(i)", at: Self.t0)
        }
        _ = try state.submit(D.spec("live", after: ["long"]), at: Self.t0)
        // Stale entries are dropped once they are most of the index (and over 1,024).
        #expect((state.dependencies.dependents["long"]?.count ?? 0) <= 2_049)
        #expect(D.finish(&state, "long") == ["long"])
        #expect(D.placed(&state) == ["live"])
        #expect(state.dependencies.dependencyCount == 0)
        D.check(state)
    }

    /// `cancel --recursive` of a tree where one task waits `afterAny` for another of the same
    /// tree: the first's cancel releases the second into the placement queue after the tree's
    /// queued tasks were taken out, and the second is then cancelled: it must not stay there
    /// (a cancelled task in the queue: counted, and placed).
    @Test func aRecursiveCancelLeavesNoTaskOfTheTreeInThePlacementQueue() throws {
        var state = RetryTests.state()
        var a = D.spec("a")
        a.parent = "r"
        var b = D.spec("b", any: ["a"])
        b.parent = "r"
        var c = D.spec("c", after: ["a"])
        c.parent = "r"
        _ = try state.submitBatch([D.spec("r"), a, b, c, D.spec("o")], at: Self.t0)
        let ids = try #require(state.treeIds("r"))
        let done = state.cancelTree(ids, at: Self.t0)
        #expect(done.cancelled == 4 && done.alreadyEnded == 0)
        for id in ["r", "a", "b"] { #expect(try state.task(id).state == .cancelled) }
        #expect(try state.task("c").state == .dependencyFailed)
        #expect(state.queuedCount == 1)
        D.check(state)
        _ = try S.register(&state, "w", slots: 10)
        #expect(D.placed(&state) == ["o"])
        D.check(state)
    }
}

