import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// A scheduler restarted in the middle of a sliced `cancel --recursive` (killed between two
/// slices): the tree cancel's root is saved with the turn that began it, and the restart takes
/// the tree's queued tasks out of placement again and ends them in slices. Before, they were
/// queued again and ran on the first worker to register.
@Suite struct TreeCancelRestartTests {
    typealias S = SchedulerStateTests
    typealias D = DurabilityTests
    static let t0: Int64 = 1_000

    @Test func aRestartBetweenSlicesResumesTheCancelAndNothingOfTheTreeRuns() throws {
        var state = ClusterState()
        _ = try state.submit(TreeCancelSliceTests.spec("r"), at: Self.t0)
        for i in 0..<10 { _ = try state.submit(TreeCancelSliceTests.spec("c\(i)", parent: "r"), at: Self.t0) }
        _ = try state.submit(TreeCancelSliceTests.spec("o"), at: Self.t0)
        var saved = D.Saved()
        saved.save(&state)
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 1)
        context.treeCancelSlice = 3
        let outcome = ClientRequests.handle(.cancelTree(.init(requestId: 7, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(outcome.replies.isEmpty)
        let first = state.takeChanges()  // the first turn's save: r, c0, c1 ended, the root noted
        #expect(first.treeCancelRoots == ["r"])
        saved.apply(first)

        // Killed here. The restart reads what was saved, and the saved roots.
        var back = ClusterState(settings: SchedulerSettings(), restoring: saved.all, nowMs: 20, at: Self.t0 + 20)
        var jobs = back.resumeTreeCancels(first.treeCancelRoots ?? [], at: Self.t0 + 20)
        #expect(jobs.count == 1 && jobs.first?.cancelled == 8)
        #expect(back.takeChanges().treeCancelRoots == nil)  // the same roots: nothing to save
        _ = try back.register(node: "w", slots: 20, labels: [:], running: [], finished: [], address: nil, nowMs: 21, at: Self.t0 + 21)
        #expect(S.assigns(back.schedule(nowMs: 22, at: Self.t0 + 22)).map(\.id) == ["o"])
        var slices = 0
        while !jobs[0].isDone && slices < 10 {
            _ = back.continueTreeCancel(&jobs[0], at: Self.t0 + 23, budget: 3)
            slices += 1
        }
        #expect(slices == 3)
        for i in 0..<10 { #expect(try back.task("c\(i)").state == .cancelled, "c\(i)") }
        #expect(back.takeChanges().treeCancelRoots == [])  // done: a later restart resumes nothing
        #expect(S.assigns(back.schedule(nowMs: 24, at: Self.t0 + 24)).isEmpty)
    }

    @Test func aTreeCancelledInItsFirstTurnLeavesNoRootAndASecondCancelOfItKeepsTheFirstsRoot() throws {
        var state = ClusterState()
        _ = try state.submit(TreeCancelSliceTests.spec("r"), at: Self.t0)
        for i in 0..<5 { _ = try state.submit(TreeCancelSliceTests.spec("c\(i)", parent: "r"), at: Self.t0) }
        _ = state.takeChanges()
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 1)
        context.treeCancelSlice = 2
        // The same tree twice at once: the first keeps its entry until its own last slice;
        // the second finds all it would end already being ended, saves none and takes none
        // away (it once removed the first's, so a restart then would not resume it).
        let a = ClientRequests.handle(.cancelTree(.init(requestId: 1, id: "c0")), identity: .cluster, state: &state, context: context)
        let b = ClientRequests.handle(.cancelTree(.init(requestId: 2, id: "r")), identity: .cluster, state: &state, context: context)
        let c = ClientRequests.handle(.cancelTree(.init(requestId: 3, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(a.replies.count == 1)  // c0 alone: one slice, answered in its turn
        #expect(state.treeCancelRoots == ["r"])
        #expect(c.flow.isEmpty)
        #expect(c.replies == [.treeCancelled(.init(requestId: 3, id: "r", total: 6, cancelled: 0, killing: 0,
                                                   alreadyEnded: 3, alreadyCancelling: 3))])
        guard case .continueTreeCancel(2, var jobB)? = b.flow.first else {
            Issue.record("no continuation: \(b.flow)")
            return
        }
        var turns = 0
        while !jobB.isDone && turns < 10 {
            _ = state.continueTreeCancel(&jobB, at: Self.t0 + 2, budget: 2)
            #expect(state.treeCancelRoots == (jobB.isDone ? [] : ["r"]))
            turns += 1
        }
        #expect(state.treeCancelRoots.isEmpty && state.treeCancelPending.isEmpty)
        #expect(state.takeChanges().treeCancelRoots == [])
    }

    @Test func theStoreKeepsTheRootsAndReadsNonsenseAsNone() throws {
        let dir = NSTemporaryDirectory() + "treecancels-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try TaskStore(directory: dir)
            #expect(store.loadTreeCancels() == [])
            var changes = StateChanges()
            changes.treeCancelRoots = ["r", "r", "q"]
            #expect(!changes.isEmpty)
            try store.save(changes, at: 1)
            store.close()
        }
        let reopened = try TaskStore(directory: dir)
        #expect(reopened.loadTreeCancels() == ["r", "r", "q"])
        reopened.close()
        let db = try SQLiteDatabase(path: dir + "/swarm.db")
        try db.execute(#"UPDATE meta SET value = '{"r": 1}' WHERE key = 'tree_cancels'"#)
        db.close()
        let edited = try TaskStore(directory: dir)
        #expect(edited.loadTreeCancels() == [])
        edited.close()
    }
}

/// Prefetch and `cancel --recursive`: a task of the tree sent ahead to a busy worker ends in
/// the cancel's first turn, its worker told to drop it. Left for its slice, it was still
/// `queued` on the worker, which started it as soon as the tree's killed run freed the slot.
@Suite struct TreeCancelPrefetchTests {
    typealias P = PrefetchTests
    static let t0 = SchedulerStateTests.t0

    @Test func aPrefetchedTaskOfTheTreeEndsInTheFirstTurnAndNeverStarts() throws {
        var state = ClusterState(settings: P.settings(prefetch: 1))
        _ = try P.node(&state, "w", slots: 1)
        _ = try state.submit(TreeCancelSliceTests.spec("r"), at: Self.t0)
        // Sent ahead, and last in the tree's order (a grandchild): the first slice does not reach it.
        _ = try state.submit(TreeCancelSliceTests.spec("g", parent: "c0"), at: Self.t0)
        for i in 0..<4 { _ = try state.submit(TreeCancelSliceTests.spec("c\(i)", parent: "r"), at: Self.t0) }
        #expect(P.round(&state) == ["w:r", "w:g+"])
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 1)
        context.treeCancelSlice = 1
        let outcome = ClientRequests.handle(.cancelTree(.init(requestId: 1, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(outcome.flow.count == 1)  // four more slices to go
        #expect(try state.task("g").state == .cancelled)
        #expect(outcome.directives.contains(.kill(node: "w", run: RunRef(id: "g", attempt: 1), reason: "cancelled by user")))
        // The worker had started it in the freed slot before it read the drop: killed, not running.
        state.taskStarted(node: "w", run: RunRef(id: "g", attempt: 1), startedAt: Self.t0 + 2)
        #expect(try state.task("g").state == .cancelled)
        #expect(P.round(&state, at: Self.t0 + 3).isEmpty)
        P.check(state)
    }
}
