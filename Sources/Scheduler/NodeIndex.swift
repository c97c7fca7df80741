/// The nodes placement may use now, indexed so that finding the best one for a task does not
/// look at every node. Nodes are grouped by what feasibility filters look at (labels, runtimes
/// with their health, whether plain commands are allowed): a task's feasible groups are worked
/// out once per task class and group. Each group keeps a binary heap of its *usable* nodes
/// (ready, connected, not held back, with a free slot), best first by the policy, so the best
/// node for a task is the best of its feasible groups' heap tops, and a change to one node's
/// free slots costs O(log nodes).
///
/// Nodes get a stable integer *slot* when first seen; ties are broken by a rank that orders
/// like the names, so the answer is the same as `Placement.place` gives on a snapshot.
struct NodeIndex: Sendable {
    /// What the feasibility filters look at: nodes with equal keys are interchangeable to them.
    struct GroupKey: Hashable, Sendable {
        var labels: [String: String]
        var runtimes: [String: Bool]
        var allowsCommands: Bool
    }

    let policy: PlacementPolicy
    /// Group keys by group id. Groups are never removed (only emptied), so ids stay valid and
    /// a task class can remember how many groups it has already judged.
    private(set) var groupKeys: [GroupKey] = []
    private var groupIDs: [GroupKey: Int] = [:]
    /// Per group: the slots of its usable nodes, a binary heap, best first.
    private var heaps: [[Int]] = []

    // Per slot.
    private(set) var names: [String] = []
    /// Position in name order: the tie-breaker.
    private var rank: [Int] = []
    private var group: [Int] = []
    /// Free slots usable now: 0 while the node is not usable.
    private(set) var free: [Int] = []
    /// Index in its group's heap, or -1 when not in it.
    private var position: [Int] = []

    private var sortedNames: [String] = []
    /// How many nodes are usable now (in some heap).
    private(set) var usableCount = 0

    init(policy: PlacementPolicy) {
        self.policy = policy
    }

    var groupCount: Int { groupKeys.count }

    /// Gives a new node a slot, in no group and not usable yet. O(nodes), once per name.
    mutating func addNode(_ name: String) -> Int {
        var lo = 0, hi = sortedNames.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sortedNames[mid] < name { lo = mid + 1 } else { hi = mid }
        }
        sortedNames.insert(name, at: lo)
        // Relative order of the others is unchanged, so every heap stays valid.
        for s in rank.indices where rank[s] >= lo { rank[s] += 1 }
        names.append(name)
        rank.append(lo)
        group.append(-1)
        free.append(0)
        position.append(-1)
        return names.count - 1
    }

    /// Moves a node to the group of `key` (creating it if new).
    mutating func setGroup(_ slot: Int, _ key: GroupKey) {
        let g: Int
        if let existing = groupIDs[key] {
            g = existing
        } else {
            g = groupKeys.count
            groupKeys.append(key)
            groupIDs[key] = g
            heaps.append([])
        }
        guard g != group[slot] else { return }
        let wasUsable = position[slot] >= 0
        if wasUsable { detach(slot) }
        group[slot] = g
        if wasUsable { attach(slot) }
    }

    /// Sets how many slots of the node placement may use now (0: it is not usable).
    mutating func setFree(_ slot: Int, _ n: Int) {
        free[slot] = n
        guard group[slot] >= 0 else { return }
        if n > 0 {
            if position[slot] < 0 {
                attach(slot)
            } else {
                siftDown(group[slot], siftUp(group[slot], position[slot]))
            }
        } else if position[slot] >= 0 {
            detach(slot)
        }
    }

    /// The best usable node among `groups`, or nil if none has a free slot.
    func best(in groups: [Int]) -> Int? {
        var best = -1
        for g in groups {
            guard let top = heaps[g].first else { continue }
            if best < 0 || better(top, best) { best = top }
        }
        return best < 0 ? nil : best
    }

    /// The best usable node among `groups` other than `excluded`; `excludedUsable` says whether
    /// an excluded node was usable there (so the answer is worse for this task than its class).
    mutating func best(in groups: [Int], excluding excluded: [Int]) -> (slot: Int?, excludedUsable: Bool) {
        var removed: [Int] = []
        for s in excluded where position[s] >= 0 && groups.contains(group[s]) {
            detach(s)
            removed.append(s)
        }
        let found = best(in: groups)
        for s in removed { attach(s) }
        return (found, !removed.isEmpty)
    }

    // MARK: Heaps

    @inline(__always)
    private func better(_ a: Int, _ b: Int) -> Bool {
        policy.prefers(free[a], rank[a], over: free[b], rank[b])
    }

    private mutating func attach(_ slot: Int) {
        let g = group[slot]
        heaps[g].append(slot)
        position[slot] = heaps[g].count - 1
        usableCount += 1
        _ = siftUp(g, heaps[g].count - 1)
    }

    private mutating func detach(_ slot: Int) {
        let g = group[slot]
        let i = position[slot]
        let last = heaps[g].removeLast()
        position[slot] = -1
        usableCount -= 1
        guard last != slot else { return }
        heaps[g][i] = last
        position[last] = i
        siftDown(g, siftUp(g, i))
    }

    /// Returns where the element ended up.
    private mutating func siftUp(_ g: Int, _ start: Int) -> Int {
        var child = start
        let slot = heaps[g][child]
        while child > 0 {
            let parent = (child - 1) / 2
            let other = heaps[g][parent]
            guard better(slot, other) else { break }
            heaps[g][child] = other
            position[other] = child
            child = parent
        }
        heaps[g][child] = slot
        position[slot] = child
        return child
    }

    private mutating func siftDown(_ g: Int, _ start: Int) {
        var parent = start
        let slot = heaps[g][parent]
        let count = heaps[g].count
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            var child = left
            if left + 1 < count && better(heaps[g][left + 1], heaps[g][left]) { child = left + 1 }
            let other = heaps[g][child]
            guard better(other, slot) else { break }
            heaps[g][parent] = other
            position[other] = parent
            parent = child
        }
        heaps[g][parent] = slot
        position[slot] = parent
    }
}
