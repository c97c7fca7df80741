/// The children index's rule for letting go (issue 14): a task deleted from the store by
/// retention or `swarm gc` leaves the index, so the index holds the tasks `swarm.db` keeps and
/// those in flight, never every task since the scheduler started.
///
/// - A deleted task with no live entry under it is removed at once: its own maps, its entry in
///   its parent's `children` (marked dead, compacted once dead entries are over 32 and half
///   of that list), its place among the roots.
/// - A deleted task that still has children in the index stays as their place (`gone`), so
///   `tasks --tree` and `cancel --recursive` of its tree still reach them; it is removed when
///   its last child is.
///
/// Finished subtrees that only left memory (not the store) keep their place: re-reading them
/// from the store on demand would need an index of `swarm.db` by parent (a schema change),
/// and retention already bounds them (`maxFinishedTasks`).
extension TaskTree {
    /// Removes deleted task `id` from the index (or keeps it as its children's place).
    mutating func drop(_ id: String) {
        var next: String? = id
        // Each round removes one task: bounded by the index's size.
        while let at = next {
            next = nil
            if nextLiveChild(of: at, from: 0) != nil {
                gone.insert(at)
                return
            }
            gone.remove(at)
            children[at] = nil
            deadChildren[at] = nil
            cut.remove(at)
            if rootSequence.removeValue(forKey: at) != nil {
                stale += 1
                compactRoots()
            }
            let parent = parentOf.removeValue(forKey: at) ?? waitingUnder.removeValue(forKey: at)
            guard slot.removeValue(forKey: at) != nil, let parent else { continue }
            deadChildren[parent, default: 0] += 1
            compactChildren(of: parent)
            if gone.contains(parent) { next = parent }
        }
    }

    /// The first live entry of `parent`'s children at or after `index`. Dead entries are at
    /// most about half of a list (`compactChildren`), so this stays near O(1) amortised.
    func nextLiveChild(of parent: String, from index: Int) -> String? {
        guard let list = children[parent], index < list.count else { return nil }
        for child in list[index...] where slot[child] != nil { return child }
        return nil
    }

    /// Rewrites `parent`'s children without their dead entries, and their slots, once the
    /// dead ones are over 32 and half of the list.
    private mutating func compactChildren(of parent: String) {
        guard let dead = deadChildren[parent], let list = children[parent] else { return }
        if dead < list.count, dead <= 32 || dead * 2 <= list.count { return }
        let live = list.filter { slot[$0] != nil }
        for (i, child) in live.enumerated() { slot[child] = i }
        children[parent] = live.isEmpty ? nil : live
        deadChildren[parent] = nil
    }

    /// Drops roots that have since got their parent or left the index, once they are half of
    /// the list.
    mutating func compactRoots() {
        guard stale > 64, stale * 2 > rootOrder.count else { return }
        let linked = parentOf
        let kept = rootSequence
        rootOrder.removeAll { linked[$0.id] != nil || kept[$0.id] == nil }
        rootSequence = rootSequence.filter { linked[$0.key] == nil }
        stale = 0
    }

    /// Entries the index holds, all maps together (what its memory is proportional to).
    var entryCount: Int {
        children.values.reduce(0) { $0 + $1.count } + parentOf.count + slot.count + cut.count
            + rootOrder.count + rootSequence.count + waitingUnder.count + deadChildren.count + gone.count
    }
}
