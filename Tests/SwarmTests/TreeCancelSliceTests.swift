import Foundation
import Testing
import SwarmClient
@testable import SwarmProtocol
@testable import SwarmScheduler

/// `cancel --recursive` of a tree larger than a slice (`ClusterState.treeCancelSlice`): the
/// first turn stops what runs and takes every queued task of the tree out of placement; the
/// queued ones end a slice a turn; meanwhile none is placed, released into the queue, or
/// takes a child; the answer (counts as before the cancel) comes after the last slice.
@Suite struct TreeCancelSliceTests {
    typealias S = SchedulerStateTests
    static let t0: Int64 = 1_000

    static func spec(_ id: String, parent: String? = nil, after: [String]? = nil) -> TaskSpec {
        var spec = TaskSpec(id: id, command: ["run", id])
        spec.parent = parent
        spec.after = after
        return spec
    }

    @Test func aTreeLargerThanASliceEndsASliceATurnAndNothingEscapesMeanwhile() throws {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: 1, labels: [:], running: [], finished: [], address: nil, nowMs: 1, at: Self.t0)
        _ = try state.submit(Self.spec("r"), at: Self.t0)
        _ = state.schedule(nowMs: 2, at: Self.t0)  // r runs on w1's one slot
        _ = try state.submit(Self.spec("x"), at: Self.t0)  // outside the tree: its end releases `dep`
        for i in 0..<10 { _ = try state.submit(Self.spec("c\(i)", parent: "r"), at: Self.t0) }
        _ = try state.submit(Self.spec("dep", parent: "r", after: ["x"]), at: Self.t0)
        _ = try state.submit(Self.spec("o"), at: Self.t0)
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 1)
        context.treeCancelSlice = 3

        let outcome = ClientRequests.handle(.cancelTree(.init(requestId: 7, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(outcome.replies.isEmpty)  // answered after the last slice
        guard case .continueTreeCancel(7, var job)? = outcome.flow.first else {
            Issue.record("no continuation: \(outcome.flow)")
            return
        }
        #expect(outcome.directives.contains(.kill(node: "w1", run: RunRef(id: "r", attempt: 1), reason: "cancelled by user")))
        #expect(outcome.directives.filter { if case .taskEnded = $0 { true } else { false } }.count == 3)
        #expect(state.queuedCount == 2)  // x and o: the tree's queued tasks left in one pass

        // Between slices: no child joins a task still to cancel, none of them is placed, and
        // `dep`, released by x's end, stays out of the queue.
        let child = ClientRequests.handle(.submit(.init(requestId: 8, task: Self.spec("late", parent: "c9"))),
                                          identity: .cluster, state: &state, context: context)
        #expect(child.refusal?.reason == "parent 'c9' is being cancelled: a cancelled task takes no new children")
        _ = state.taskFinished(node: "w1", result: S.result("r", .failed, at: Self.t0 + 2), at: Self.t0 + 2)
        _ = try state.register(node: "w2", slots: 20, labels: [:], running: [], finished: [], address: nil, nowMs: 3, at: Self.t0 + 2)
        var placed = S.assigns(state.schedule(nowMs: 4, at: Self.t0 + 3)).map(\.id)
        _ = state.taskFinished(node: placed.contains("x") ? "w1" : "w2", result: S.result("x", at: Self.t0 + 4), at: Self.t0 + 4)
        placed += S.assigns(state.schedule(nowMs: 5, at: Self.t0 + 5)).map(\.id)
        #expect(Set(placed) == ["x", "o"])

        var slices = 1
        while !job.isDone && slices < 20 {
            _ = state.continueTreeCancel(&job, at: Self.t0 + 6, budget: 3)
            slices += 1
        }
        #expect(slices == 4)  // 11 queued tasks, 3 a slice
        for id in (0..<10).map({ "c\($0)" }) + ["dep"] { #expect(try state.task(id).state == .cancelled, "\(id)") }
        #expect(state.treeCancelPending.isEmpty)
        #expect(ClientRequests.treeCancelled(7, job)
            == .treeCancelled(.init(requestId: 7, id: "r", total: 12, cancelled: 11, killing: 1, alreadyEnded: 0)))
        #expect(S.assigns(state.schedule(nowMs: 6, at: Self.t0 + 7)).isEmpty)
    }

    @Test func aTreeWithinASliceIsAnsweredInItsOwnTurn() throws {
        var state = ClusterState()
        _ = try state.submit(Self.spec("r"), at: Self.t0)
        for i in 0..<3 { _ = try state.submit(Self.spec("c\(i)", parent: "r"), at: Self.t0) }
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 1)
        context.treeCancelSlice = 4
        let outcome = ClientRequests.handle(.cancelTree(.init(requestId: 1, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(outcome.flow.isEmpty)
        #expect(outcome.replies == [.treeCancelled(.init(requestId: 1, id: "r", total: 4, cancelled: 4, killing: 0, alreadyEnded: 0))])
        #expect(state.treeCancelPending.isEmpty && state.queuedCount == 0)
    }

    /// Two cancels of overlapping trees at once (the second while the first is between
    /// slices): each task is counted by the cancel that began ending it, once; the second
    /// neither ends nor counts again what the first is ending.
    @Test func overlappingTreeCancelsCountEachTaskOnce() throws {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: 1, labels: [:], running: [], finished: [], address: nil, nowMs: 1, at: Self.t0)
        _ = try state.submit(Self.spec("r"), at: Self.t0)
        _ = state.schedule(nowMs: 2, at: Self.t0)  // r runs on w1's one slot
        _ = try state.submit(Self.spec("m", parent: "r"), at: Self.t0)
        for i in 0..<5 {
            _ = try state.submit(Self.spec("m\(i)", parent: "m"), at: Self.t0)
            _ = try state.submit(Self.spec("c\(i)", parent: "r"), at: Self.t0)
        }
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 1)
        context.treeCancelSlice = 3
        let first = ClientRequests.handle(.cancelTree(.init(requestId: 1, id: "r")), identity: .cluster, state: &state, context: context)
        guard case .continueTreeCancel(1, var job)? = first.flow.first else {
            Issue.record("no continuation: \(first.flow)")
            return
        }
        // The same tree again and a subtree of it, while 8 of its 11 queued tasks wait.
        let again = ClientRequests.handle(.cancelTree(.init(requestId: 2, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(again.flow.isEmpty && again.directives.isEmpty)
        #expect(again.replies == [.treeCancelled(.init(requestId: 2, id: "r", total: 12, cancelled: 0, killing: 0,
                                                       alreadyEnded: 3, alreadyCancelling: 9))])
        let sub = ClientRequests.handle(.cancelTree(.init(requestId: 3, id: "m")), identity: .cluster, state: &state, context: context)
        guard case .treeCancelled(let part)? = sub.replies.first else {
            Issue.record("no answer: \(sub)")
            return
        }
        #expect(part.cancelled == 0 && part.killing == 0 && part.total == 6)
        #expect(part.alreadyEnded + (part.alreadyCancelling ?? 0) == 6)
        #expect(TreeOutput.cancelled(part).contains("already being cancelled"))
        var slices = 1
        while !job.isDone && slices < 20 {
            _ = state.continueTreeCancel(&job, at: Self.t0 + 2, budget: 3)
            slices += 1
        }
        #expect(ClientRequests.treeCancelled(1, job)
            == .treeCancelled(.init(requestId: 1, id: "r", total: 12, cancelled: 11, killing: 1, alreadyEnded: 0)))
        #expect(state.listTasks().filter { $0.state != .cancelled }.map(\.id) == ["r"], "r ends when w1 reports its kill")
        #expect(state.treeCancelPending.isEmpty && state.treeCancelRoots.isEmpty)
    }
}
