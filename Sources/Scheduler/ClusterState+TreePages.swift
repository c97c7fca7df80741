import SwarmProtocol

/// One page of a tree listing (`swarm tasks --tree`): the preorder of a tree, or of the whole
/// forest, cut into pages that go on from their last entry. Each step from one entry to the
/// next costs O(1) going down or sideways and O(1) per level going up (`TaskTree` keeps each
/// task's parent and place among its siblings), so a page costs about its own size, whatever
/// the size of the tree or of the cluster.
public struct TreePage: Sendable, Equatable {
    public var entries: [TreeEntry]
    /// Where the next page goes on (its `after`): the last task this one looked at, when more
    /// follow; else nil.
    public var next: String?
}

extension ClusterState {
    /// Tasks of the index a page passes over without a record in memory (none until finished
    /// tasks leave memory), at most: past it the page ends early, with a `next`.
    static let maxSkippedPerPage = 20_000

    /// The entries of the tree of `root` (nil: the forest of every root, in submission order),
    /// in preorder, after the entry of task `after` (nil: from the start): at most `limit`,
    /// stopping before `maxBytes` of entries as `size` measures them (always at least one).
    /// Tasks come as `waitSummary()`s, those that left memory read from `archive`. Nil when
    /// `root` or `after` is not a task of the listing.
    func treePage(root: String?, after: String?, limit: Int, maxBytes: Int, archive: TaskArchive = .none,
                  size: (TreeEntry) -> Int) -> TreePage? {
        var at: (id: String, depth: Int)?
        if let after {
            guard let depth = depth(of: after, under: root) else { return nil }
            at = successor(of: after, depth: depth, root: root)
        } else if let root {
            guard isIndexed(root) else { return nil }
            at = (root, 0)
        } else {
            at = firstRoot(afterSequence: nil).map { ($0, 0) }
        }
        var entries: [TreeEntry] = []
        var bytes = 0
        var skipped = 0
        var last: String?
        while let current = at, entries.count < max(1, limit), skipped <= Self.maxSkippedPerPage {
            if let info = tasks[current.id]?.info ?? archive.task(current.id)?.info {
                let entry = TreeEntry(depth: current.depth, task: info.waitSummary())
                let cost = size(entry)
                if !entries.isEmpty && bytes + cost > maxBytes { break }
                bytes += cost
                entries.append(entry)
            } else {
                skipped += 1
            }
            last = current.id
            at = successor(of: current.id, depth: current.depth, root: root)
        }
        return TreePage(entries: entries, next: at == nil ? nil : last)
    }

    /// How far `id` is below `root` (nil: below a root of the forest) through linked parents;
    /// nil when it is not in that tree.
    func depth(of id: String, under root: String?) -> Int? {
        guard tasks[id] != nil || tree.parentOf[id] != nil || tree.rootSequence[id] != nil else { return nil }
        var at = id
        var depth = 0
        // Linked parents form a forest: the walk ends within the number of links.
        for _ in 0...tree.parentOf.count + 1 {
            if at == root { return depth }
            guard let parent = linkedParent(at) else { return root == nil ? depth : nil }
            at = parent
            depth += 1
        }
        return nil
    }

    /// The entry after `id` (at `depth`) in preorder: its first child, else the next sibling
    /// of it or of its nearest ancestor that has one, else (forest) the next root.
    private func successor(of id: String, depth: Int, root: String?) -> (id: String, depth: Int)? {
        if let first = tree.nextLiveChild(of: id, from: 0) { return (first, depth + 1) }
        var at = id
        var level = depth
        for _ in 0...tree.parentOf.count + 1 {
            if at == root { return nil }
            guard let parent = linkedParent(at) else {
                return root == nil ? firstRoot(afterSequence: tree.rootSequence[at] ?? UInt64.max).map { ($0, 0) } : nil
            }
            if let i = tree.slot[at], let next = tree.nextLiveChild(of: parent, from: i + 1) { return (next, level) }
            at = parent
            level -= 1
        }
        return nil
    }

    /// The first root submitted after `sequence` (nil: the first root). Roots that have since
    /// got their parent are skipped (at most about half of `rootOrder`: `compactRoots`).
    private func firstRoot(afterSequence sequence: UInt64?) -> String? {
        var low = 0, high = tree.rootOrder.count
        if let sequence {
            while low < high {
                let mid = (low + high) / 2
                if tree.rootOrder[mid].sequence <= sequence { low = mid + 1 } else { high = mid }
            }
        }
        for root in tree.rootOrder[low...] where tree.parentOf[root.id] == nil && tree.rootSequence[root.id] != nil { return root.id }
        return nil
    }
}
