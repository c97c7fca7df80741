import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// What one request may cost in dependencies (issue 13 leftovers): the edges one batch may
/// name (`Bounds.batchDependencies`), counted before any other work, at its edge.
@Suite struct DependencyBoundsTests {
    typealias D = DependencyTests
    static let t0 = SchedulerStateTests.t0

    /// A state holding 1,000 tasks `b0` ... `b999`, and `tasks` specs naming `edges` of them in
    /// all (1,000 each, the last the rest).
    static func batch(edges: Int) throws -> (ClusterState, [TaskSpec]) {
        var state = try D.cluster()
        let base = (0..<Bounds.dependencies).map { "b\($0)" }
        _ = try state.submitBatch(base.map { D.spec($0) }, at: Self.t0)
        var specs: [TaskSpec] = []
        var left = edges
        while left > 0 {
            let n = min(left, base.count)
            specs.append(D.spec("x\(specs.count)", after: Array(base.prefix(n))))
            left -= n
        }
        return (state, specs)
    }

    @Test func aBatchMayNameAtMostTheLimitOfDependencyEdges() throws {
        #expect(Bounds.batchDependencies == 20_000)
        var (state, specs) = try Self.batch(edges: Bounds.batchDependencies)
        let accepted = try state.submitBatch(specs, at: Self.t0)
        #expect(accepted.ids.count == 20 && state.dependencies.waitingCount == 20)

        (state, specs) = try Self.batch(edges: Bounds.batchDependencies + 1)
        let before = state.tasksInMemory
        #expect(throws: SchedulerError.invalidTask(
            "the batch names 20001 dependencies (after and afterAny over its 21 tasks); at most 20000 per batch: "
                + "submit it in smaller batches (a task may name tasks of earlier ones)")) {
            try state.submitBatch(specs, at: Self.t0)
        }
        #expect(state.tasksInMemory == before && state.dependencies.waitingCount == 0)
    }

    /// The request is refused before the policy or the cluster state looks at one id: even a
    /// batch naming ids that do not exist gets the edge count's answer, for every client.
    @Test func aRequestOverTheEdgeLimitIsRefusedBeforeAnyIdIsLookedAt() throws {
        var (state, specs) = try Self.batch(edges: Bounds.batchDependencies + 1)
        specs[0].afterAny = ["nowhere"]
        for identity in [ClientIdentity.cluster, .task("b0")] {
            let outcome = ClientRequestsTests.handle(.submitBatch(.init(requestId: 1, tasks: specs)), as: identity, &state)
            let refusal = try #require(outcome.refusal)
            #expect(refusal.code == .invalidTask && refusal.reason.hasPrefix("invalid task: the batch names 20002 dependencies"))
        }
        specs[0].afterAny = nil
        specs.removeLast()
        let outcome = ClientRequestsTests.handle(.submitBatch(.init(requestId: 1, tasks: specs)), &state)
        #expect(outcome.refusal == nil && state.dependencies.waitingCount == 20)
    }

    /// Dependencies the state does not hold are looked up in the store one at a time; the
    /// first it lacks refuses the submit, so the look-ups stop there.
    @Test func theStoreIsAskedForUnknownDependenciesUpToTheFirstItLacks() throws {
        typealias C = ClientRequestsTests
        var state = try C.state()
        var context = C.context
        var asked: [String] = []
        context.endedTaskState = { id in asked.append(id); return id.hasPrefix("old") ? .succeeded : nil }
        let ids = ["old1", "old2", "gone1"] + (2...997).map { "gone\($0)" }
        let outcome = C.handle(.submitBatch(.init(requestId: 1, tasks: [D.spec("x", after: ids)])), &state, context)
        #expect(outcome.refusal?.reason == "invalid task: task 1: dependency 'gone1' is not a known task (nor one of this batch)")
        #expect(asked == ["old1", "old2", "gone1"])
    }

    /// `swarm rerun` of a task one of whose dependencies retention removed: a task that ran had
    /// it met (an end is final), so the rerun drops it and keeps the others; one that never ran
    /// cannot tell, and is refused with a line saying why and what to do.
    @Test func aRerunDropsADependencyRemovedByRetentionOnlyIfTheTaskHadRun() throws {
        func snapshot(_ spec: TaskSpec, _ state: TaskState, attempts: Int, sequence: UInt64) -> TaskSnapshot {
            var info = TaskInfo(id: spec.id!, state: state, command: spec.command, submittedAt: Self.t0)
            info.attempts = attempts
            info.after = spec.after
            info.afterAny = spec.afterAny
            return TaskSnapshot(spec: spec, info: info, sequence: sequence)
        }
        let archive = TaskArchive.of([
            snapshot(D.spec("b", after: ["a", "k"], any: ["gone"]), .failed, attempts: 1, sequence: 1),
            snapshot(D.spec("w", after: ["k", "a"]), .cancelled, attempts: 0, sequence: 2),
        ])
        var state = try D.cluster()
        _ = try state.submit(D.spec("k"), at: Self.t0)
        let rerun = try state.rerunSpec(of: "b", newId: nil, archive: archive)
        #expect(rerun.id == "b.r1" && rerun.after == ["k"] && rerun.afterAny == nil)
        _ = try state.submit(rerun, at: Self.t0, archive: archive)
        #expect(state.waitReason(for: "b.r1")?.reason == "waiting for k (queued)")
        #expect(throws: SchedulerError.invalidTask("cannot rerun task 'w': its dependency 'a' was removed by retention before 'w' ever ran, so whether it succeeded is no longer known; submit it again with --after naming what it should wait for")) {
            try state.rerunSpec(of: "w", newId: "w2", archive: archive)
        }
    }

    // MARK: A cascade of dependency_failed, in slices

    /// A chain `c0` <- `c1` <- ... of `n` tasks in one state, `c0` placed.
    static func chain(_ n: Int) throws -> ClusterState {
        var state = try D.cluster()
        var specs = [D.spec("c0")]
        for i in 1..<n { specs.append(D.spec("c\(i)", after: ["c\(i - 1)"])) }
        for start in stride(from: 0, to: n, by: 2_000) {
            _ = try state.submitBatch(Array(specs[start..<min(n, start + 2_000)]), at: Self.t0)
        }
        #expect(D.placed(&state) == ["c0"])
        return state
    }

    /// The tasks of `changes`, latest first, over `saved` (a store's stand-in).
    static func keep(_ changes: StateChanges, in saved: inout [String: TaskSnapshot]) {
        for task in changes.tasks { saved[task.info.id] = task }
    }

    /// The head of a chain of 2,500 fails: at most `settleSlice` tasks end with it, the rest a
    /// slice per placement round, in chain order, each reason naming its own dependency and
    /// the first failure; the index is empty at the end.
    @Test func aFailureRunsDownALongChainASliceATurn() throws {
        #expect(ClusterState.settleSlice == 1_000)
        var state = try Self.chain(2_500)
        let first = D.finish(&state, "c0", .failed)
        #expect(first == ["c0"] + (1...1_000).map { "c\($0)" })
        #expect(state.isSettling)
        #expect(try state.task("c1001").state == .queued)
        D.check(state)
        var slices: [[String]] = []
        for _ in 0..<10 where state.isSettling {
            slices.append(RetryTests.ended(state.schedule(nowMs: Self.t0, at: Self.t0)))
            D.check(state)
        }
        #expect(slices == [(1_001...2_000).map { "c\($0)" }, (2_001...2_499).map { "c\($0)" }])
        let last = try state.task("c2499")
        #expect(last.state == .dependencyFailed && last.reason == "dependency c2498 dependency_failed (c0 failed)")
        #expect(!state.isSettling && state.dependencies.dependencyCount == 0 && state.dependencies.waitingCount == 0)
    }

    /// A restart in the middle of such a cascade finishes it, in slices again, from what was
    /// saved: the tasks not reached yet are queued, waiting for one that ended.
    @Test func aRestartInTheMiddleOfACascadeFinishesIt() throws {
        var state = try Self.chain(2_500)
        var saved: [String: TaskSnapshot] = [:]
        Self.keep(state.takeChanges(), in: &saved)
        _ = D.finish(&state, "c0", .failed)
        Self.keep(state.takeChanges(), in: &saved)
        var restored = ClusterState(settings: state.settings, restoring: Array(saved.values), nowMs: 0, at: Self.t0)
        #expect(restored.isSettling && restored.dependencies.waitingCount == 1_499)
        D.check(restored)
        var slices: [[String]] = []
        for _ in 0..<10 where restored.isSettling {
            slices.append(RetryTests.ended(restored.schedule(nowMs: 0, at: Self.t0)))
            D.check(restored)
        }
        #expect(slices == [(1_001...2_000).map { "c\($0)" }, (2_001...2_499).map { "c\($0)" }])
        #expect(try restored.task("c1001").reason == "dependency c1000 dependency_failed (c0 failed)")
        #expect(try restored.task("c2499").reason == "dependency c2498 dependency_failed (c0 failed)")
        #expect(restored.dependencies.dependencyCount == 0 && restored.dependencies.waitingCount == 0)
    }
}
