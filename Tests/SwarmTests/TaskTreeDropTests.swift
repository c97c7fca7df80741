import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Issue 14: the children index lets go of tasks retention deleted (`ClusterState.forget`,
/// `TaskTree.drop`), so it holds what the store keeps and what is in flight, not every task
/// since start; trees, pages and listings stay right across it. Pure; fixed clocks.
@Suite struct TaskTreeDropTests {
    typealias T = TaskTreeTests
    static let t0 = TaskTreeTests.t0

    static func end(_ state: inout ClusterState, _ ids: [String]) throws {
        for id in ids { _ = try state.cancel(id, at: Self.t0 + 1) }
    }

    @Test func theIndexIsBoundedAfterManyFinishedAndDeletedTasks() throws {
        var state = ClusterState()
        _ = try state.submit(T.spec("keep"), at: Self.t0)
        var sizes: [Int] = []
        for round in 0..<5 {
            // 2,400 tasks a round: 20 trees of a root, 19 children, 40 grandchildren each
            // under the first children, and 60 roots without children; one child submitted
            // before its parent.
            var ids: [String] = []
            for tree in 0..<20 {
                let root = "r\(round)-\(tree)"
                _ = try state.submit(T.spec("\(root)-early", parent: root), at: Self.t0)
                _ = try state.submit(T.spec(root), at: Self.t0)
                ids += ["\(root)-early", root]
                for c in 0..<18 {
                    let child = "\(root)-\(c)"
                    _ = try state.submit(T.spec(child, parent: root), at: Self.t0)
                    ids.append(child)
                    for g in 0..<(c < 8 ? 5 : 0) {
                        _ = try state.submit(T.spec("\(child)-\(g)", parent: child), at: Self.t0)
                        ids.append("\(child)-\(g)")
                    }
                }
                for alone in 0..<60 { _ = try state.submit(T.spec("\(root)-alone-\(alone)"), at: Self.t0); ids.append("\(root)-alone-\(alone)") }
            }
            #expect(ids.count == 2_400)
            try Self.end(&state, ids)
            // Deleted in retention's batches, oldest (any order within) first.
            for batch in stride(from: 0, to: ids.count, by: 500) { state.forget(Array(ids[batch..<min(ids.count, batch + 500)])) }
            sizes.append(state.tree.entryCount)
        }
        // Only "keep" (queued) is left (its root entries), and at most 64 dropped roots not yet
        // compacted out of the roots' list (`compactRoots`): the same bound every round.
        #expect(sizes.allSatisfy { $0 <= 2 + 64 }, "\(sizes)")
        #expect(state.treeIds("keep") == ["keep"])
        #expect(try T.preorder(state, root: nil) == ["0:keep"])
    }

    @Test func aDeletedParentStaysAsThePlaceOfItsChildrenUntilTheLastGoes() throws {
        var state = try T.state()  // r -> (a -> (a1, a2), b); o
        try Self.end(&state, ["r", "a", "a1", "b"])
        state.forget(["r", "a", "a1", "b"])
        // a2 is queued: a and r stay as its place; a1 and b are gone.
        #expect(state.tree.gone == ["r", "a"])
        #expect(state.treeIds("r") == ["r", "a", "a2"])
        #expect(state.treeIds("b") == nil)
        #expect(try T.preorder(state, root: nil) == ["2:a2", "0:o"], "deleted tasks have no entry; a2 keeps its depth")
        #expect(state.cancelTree(state.treeIds("r")!, at: Self.t0 + 2).cancelled == 1)
        state.forget(["a2"])
        #expect(state.tree.gone.isEmpty)
        #expect(state.treeIds("r") == nil && state.treeIds("a") == nil)
        #expect(try T.preorder(state, root: nil) == ["0:o"])
        #expect(state.tree.children.isEmpty && state.tree.slot.isEmpty && state.tree.parentOf.isEmpty)
    }

    @Test func aLongListOfChildrenIsCompactedAndPagesStillWalkItInOrder() throws {
        var state = ClusterState()
        _ = try state.submit(T.spec("p"), at: Self.t0)
        let kids = (0..<100).map { "k\($0)" }
        for kid in kids { _ = try state.submit(T.spec(kid, parent: "p"), at: Self.t0) }
        let gone = kids.filter { Int($0.dropFirst())! % 3 != 0 }  // 66 of 100
        try Self.end(&state, gone)
        state.forget(Array(gone.prefix(30)))
        // 30 dead of 100: not yet compacted, skipped by every walk.
        #expect(state.tree.children["p"]?.count == 100)
        let left = kids.filter { !gone.prefix(30).contains($0) }
        #expect(state.treeIds("p") == ["p"] + left)
        #expect(try T.preorder(state, root: "p", limit: 7) == ["0:p"] + left.map { "1:\($0)" })
        state.forget(Array(gone.dropFirst(30)))
        let kept = kids.filter { !gone.contains($0) }
        let list = try #require(state.tree.children["p"])
        #expect(list.count < 100, "compacted once over half were dead")
        #expect(kept.allSatisfy { list[state.tree.slot[$0]!] == $0 })
        #expect(state.treeIds("p") == ["p"] + kept)
        #expect(try T.preorder(state, root: "p", limit: 7) == ["0:p"] + kept.map { "1:\($0)" })
        // A child still submitted under p takes the next place.
        _ = try state.submit(T.spec("late", parent: "p"), at: Self.t0)
        #expect(state.treeIds("p")?.last == "late")
    }

    @Test func aListingGoesOnAfterACursorTaskThatRetentionDeleted() throws {
        var state = ClusterState()
        for i in 0..<6 { _ = try state.submit(T.spec("t\(i)"), at: Self.t0) }
        try Self.end(&state, ["t0", "t1", "t2"])
        state.forget(["t0", "t1", "t2"])
        var limits = TaskPageLimits()
        limits.limit = 10
        let page = try state.listTasks(after: "t1", limits: limits, size: { _ in 1 })
        #expect(page.tasks.map(\.id) == ["t3", "t4", "t5"])
        #expect(throws: SchedulerError.self) { try state.listTasks(after: "never", limits: limits, size: { _ in 1 }) }
    }

    @Test func purgedCursorsAreBoundedOldestFirst() {
        var cursors = PurgedCursors()
        for i in 0..<(PurgedCursors.capacity + 5) { cursors.remember("c\(i)", sequence: UInt64(i)) }
        #expect(cursors.count == PurgedCursors.capacity)
        #expect(cursors["c4"] == nil && cursors["c5"] == 5)
        #expect(cursors["c\(PurgedCursors.capacity + 4)"] == UInt64(PurgedCursors.capacity + 4))
    }
}
