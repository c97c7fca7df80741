import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// The two structures behind `ClusterState.schedule`: `PlacementQueue` (tasks by class, one
/// global order) and `NodeIndex` (usable nodes by group, best first).
@Suite struct PlacementIndexTests {
    // MARK: PlacementQueue

    static func queue(_ tasks: [(String, PlacementRequest)]) -> PlacementQueue {
        var q = PlacementQueue()
        for (i, (id, request)) in tasks.enumerated() { q.push(id: id, request: request, sequence: UInt64(i + 1)) }
        return q
    }

    @Test func classesMergeIntoOneOrderByPriorityThenSequence() {
        let q = Self.queue([
            ("a", PlacementRequest()), ("b", PlacementRequest(model: "opus")),
            ("c", PlacementRequest(runtime: "claude", priority: 2)), ("d", PlacementRequest()),
            ("e", PlacementRequest(model: "opus", priority: 2)), ("f", PlacementRequest(constraints: ["k": "v"], priority: 1)),
        ])
        #expect(q.count == 6)
        #expect(q.classes.count == 4)
        #expect(q.orderedIds == ["c", "e", "f", "a", "b", "d"])
    }

    @Test func aParkedClassIsSkippedUntilUnparked() {
        var q = Self.queue([("o1", PlacementRequest(model: "opus")), ("o2", PlacementRequest(model: "opus")),
                            ("p1", PlacementRequest()), ("p2", PlacementRequest())])
        let (opus, first) = try! #require(q.top)
        #expect(first == "o1")
        q.park(opus)
        #expect(q.top?.taskID == "p1")
        q.push(id: "o3", request: PlacementRequest(model: "opus", priority: 5), sequence: 5)
        #expect(q.top?.taskID == "p1", "pushing into a parked class does not bring it back")
        q.popTop()
        #expect(q.top?.taskID == "p2")
        q.unparkAll()
        #expect(q.orderedIds == ["o3", "o1", "o2", "p2"])
        #expect(q.count == 4)
    }

    @Test func removeAndEmptiedClassesAreRecycled() {
        var q = Self.queue([("a", PlacementRequest()), ("b", PlacementRequest(model: "x")), ("c", PlacementRequest())])
        q.remove(id: "b", request: PlacementRequest(model: "x"))
        q.remove(id: "nope", request: PlacementRequest())
        q.remove(id: "a", request: PlacementRequest(model: "unknown"))
        #expect(q.count == 2)
        #expect(q.orderedIds == ["a", "c"])
        // A class emptied while parked is recycled when the round ends.
        q.push(id: "y1", request: PlacementRequest(model: "y"), sequence: 10)
        let before = q.classes.count
        let (c, _) = try! #require(q.top)
        q.park(c)
        q.remove(id: "a", request: PlacementRequest())
        q.remove(id: "c", request: PlacementRequest())
        q.unparkAll()
        q.push(id: "z1", request: PlacementRequest(model: "z"), sequence: 11)
        #expect(q.classes.count == before, "the parked class's id was reused")
        q.push(id: "w1", request: PlacementRequest(model: "w"), sequence: 12)
        #expect(q.classes.count == before + 1)
        #expect(q.orderedIds == ["y1", "z1", "w1"])
    }

    // MARK: NodeIndex

    static let any = NodeIndex.GroupKey(labels: [:], runtimes: [:], allowsCommands: true)
    static let gpu = NodeIndex.GroupKey(labels: ["gpu": "h100"], runtimes: [:], allowsCommands: true)

    static func index(_ policy: PlacementPolicy, _ nodes: [(String, NodeIndex.GroupKey, Int)]) -> NodeIndex {
        var index = NodeIndex(policy: policy)
        for (name, key, free) in nodes {
            let slot = index.addNode(name)
            index.setGroup(slot, key)
            index.setFree(slot, free)
        }
        return index
    }

    static func name(_ index: NodeIndex, _ slot: Int?) -> String? { slot.map { index.names[$0] } }

    @Test func bestFollowsThePolicyAndFreeSlotChanges() {
        var spread = Self.index(.spread, [("c", Self.any, 3), ("b", Self.any, 5), ("a", Self.gpu, 4), ("d", Self.any, 0)])
        #expect(spread.usableCount == 3)
        #expect(Self.name(spread, spread.best(in: [0, 1])) == "b")
        #expect(Self.name(spread, spread.best(in: [1])) == "a")
        spread.setFree(1, 2)      // b: 5 -> 2
        #expect(Self.name(spread, spread.best(in: [0, 1])) == "a")
        #expect(Self.name(spread, spread.best(in: [0])) == "c")
        spread.setFree(3, 9)      // d becomes usable
        #expect(Self.name(spread, spread.best(in: [0])) == "d")
        #expect(spread.usableCount == 4)

        let binpack = Self.index(.binpack, [("c", Self.any, 3), ("b", Self.any, 5), ("a", Self.any, 1), ("d", Self.any, 0)])
        #expect(Self.name(binpack, binpack.best(in: [0])) == "a")
        #expect(binpack.best(in: []) == nil)
    }

    @Test func tiesGoToTheSmallerNameWhateverOrderNodesArrive() {
        let index = Self.index(.spread, [("m", Self.any, 2), ("z", Self.any, 2), ("b", Self.any, 2), ("k", Self.any, 2)])
        #expect(Self.name(index, index.best(in: [0])) == "b")
        let binpack = Self.index(.binpack, [("m", Self.any, 2), ("z", Self.any, 2), ("k", Self.any, 1), ("a", Self.any, 1)])
        #expect(Self.name(binpack, binpack.best(in: [0])) == "a")
    }

    @Test func movingGroupsAndExcluding() {
        var index = Self.index(.spread, [("a", Self.any, 4), ("b", Self.any, 3)])
        index.setGroup(0, Self.gpu)   // a moves to a new group
        #expect(index.groupCount == 2)
        #expect(Self.name(index, index.best(in: [0])) == "b")
        #expect(Self.name(index, index.best(in: [1])) == "a")
        let excluded = index.best(in: [0, 1], excluding: [0])
        #expect(Self.name(index, excluded.slot) == "b")
        #expect(excluded.excludedUsable)
        let notThere = index.best(in: [0], excluding: [0])
        #expect(Self.name(index, notThere.slot) == "b")
        #expect(!notThere.excludedUsable, "a is not in the groups asked about")
        #expect(index.usableCount == 2)
        #expect(Self.name(index, index.best(in: [0, 1])) == "a", "excluded nodes are back afterwards")
    }
}
