import SwarmProtocol

/// One page of a tree listing (`swarm tasks --tree`): the preorder of a tree, or of the whole
/// forest, cut into pages that go on from their last entry. Each step from one entry to the
/// next costs O(1) going down and O(log siblings) per level going up, so a page costs about
/// its own size, whatever the size of the tree or of the cluster.
public struct TreePage: Sendable, Equatable {
    public var entries: [TreeEntry]
    /// The id of the last entry when more follow (the next page's `after`), else nil.
    public var next: String?
}

extension ClusterState {
    /// The entries of the tree of `root` (nil: the forest of every root, in submission order),
    /// in preorder, after the entry of task `after` (nil: from the start): at most `limit`,
    /// stopping before `maxBytes` of entries as `size` measures them (always at least one).
    /// Tasks come as `waitSummary()`s. Nil when `root` or `after` is not a task of the listing.
    func treePage(root: String?, after: String?, limit: Int, maxBytes: Int,
                  size: (TreeEntry) -> Int) -> TreePage? {
        var at: (id: String, depth: Int)?
        if let after {
            guard let depth = depth(of: after, under: root) else { return nil }
            at = successor(of: after, depth: depth, root: root)
        } else if let root {
            guard tasks[root] != nil else { return nil }
            at = (root, 0)
        } else {
            at = firstRoot(afterSequence: nil).map { ($0, 0) }
        }
        var entries: [TreeEntry] = []
        var bytes = 0
        while let current = at, entries.count < max(1, limit), let record = tasks[current.id] {
            let entry = TreeEntry(depth: current.depth, task: record.info.waitSummary())
            let cost = size(entry)
            if !entries.isEmpty && bytes + cost > maxBytes { break }
            bytes += cost
            entries.append(entry)
            at = successor(of: current.id, depth: current.depth, root: root)
        }
        return TreePage(entries: entries, next: at == nil ? nil : entries.last?.task.id)
    }

    /// How far `id` is below `root` (nil: below a root of the forest) through linked parents;
    /// nil when it is not in that tree.
    func depth(of id: String, under root: String?) -> Int? {
        guard tasks[id] != nil else { return nil }
        var at = id
        var depth = 0
        // Linked parents form a forest: the walk ends within the number of tasks.
        for _ in 0...tasks.count {
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
        if let first = tree.children[id]?.first { return (first, depth + 1) }
        var at = id
        var level = depth
        for _ in 0...tasks.count {
            if at == root { return nil }
            guard let parent = linkedParent(at) else {
                return root == nil ? firstRoot(afterSequence: tasks[at]?.sequence).map { ($0, 0) } : nil
            }
            let siblings = tree.children[parent] ?? []
            if let i = position(of: at, in: siblings), i + 1 < siblings.count { return (siblings[i + 1], level) }
            at = parent
            level -= 1
        }
        return nil
    }

    /// Where `id` is in `siblings` (in submission order, so by sequence): a binary search.
    private func position(of id: String, in siblings: [String]) -> Int? {
        guard let sequence = tasks[id]?.sequence else { return nil }
        var low = 0, high = siblings.count
        while low < high {
            let mid = (low + high) / 2
            if (tasks[siblings[mid]]?.sequence ?? 0) < sequence { low = mid + 1 } else { high = mid }
        }
        return low < siblings.count && siblings[low] == id ? low : nil
    }

    /// The first root submitted after `sequence` (nil: the first root). Roots that have since
    /// got their parent are skipped (at most about half of `rootOrder`: `compactRoots`).
    private func firstRoot(afterSequence sequence: UInt64?) -> String? {
        var low = 0, high = tree.rootOrder.count
        if let sequence {
            while low < high {
                let mid = (low + high) / 2
                if (tasks[tree.rootOrder[mid]]?.sequence ?? 0) <= sequence { low = mid + 1 } else { high = mid }
            }
        }
        for id in tree.rootOrder[low...] where tasks[id] != nil && linkedParent(id) == nil { return id }
        return nil
    }
}
