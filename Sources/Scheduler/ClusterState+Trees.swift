import SwarmProtocol

/// Task trees (issue 13 item 5): the children index, kept as tasks come in (submit, restore),
/// so that a tree costs O(its size) to collect, never a scan of every task.
///
/// A task is linked under its `parent` when that names another task, known or not yet known (a
/// parent may be submitted after its child: its children wait here, and become its children
/// when it comes). The links form a forest: a task whose link would close a loop (its parent
/// descends from it, possible only when it was named as a parent before it existed, or it is
/// its own parent) is not linked, and counts as a root. So every walk down the index ends.
/// A task is a **root** when it has no linked parent: no `parent`, a parent not known, or a cut
/// link.
struct TaskTree: Sendable {
    /// Parent id -> its children, in submission order (the parent may not be known yet).
    var children: [String: [String]] = [:]
    /// Tasks whose parent link would have closed a loop.
    var cut: Set<String> = []
    /// Tasks that were roots when they came, in submission order. A root whose parent comes
    /// later stays here until the next compaction (`stale` counts them): readers skip it.
    var rootOrder: [String] = []
    var stale = 0
}

extension ClusterState {
    // MARK: The index

    /// Links task `id` (just inserted or restored, in submission order) into the children index.
    mutating func linkIntoTree(_ id: String) {
        let waiting = tree.children[id]?.count ?? 0
        if waiting > 0 {
            // Its children came first: they were roots until now.
            tree.stale += waiting
            compactRoots()
        }
        guard let parent = tasks[id]?.info.parent else { tree.rootOrder.append(id); return }
        if parent == id || (waiting > 0 && descends(parent, from: id)) {
            tree.cut.insert(id)
            tree.rootOrder.append(id)
            return
        }
        tree.children[parent, default: []].append(id)
        if tasks[parent] == nil { tree.rootOrder.append(id) }
    }

    /// Whether `id` is `ancestor` or below it through linked parents. Linked parents form a
    /// forest (the task being linked aside), so the walk ends; it is bounded all the same.
    private func descends(_ id: String, from ancestor: String) -> Bool {
        var at: String? = id
        for _ in 0...tasks.count {
            guard let here = at else { return false }
            if here == ancestor { return true }
            at = linkedParent(here)
        }
        return true
    }

    /// Drops roots that have since got their parent, once they are half of the list.
    private mutating func compactRoots() {
        guard tree.stale > 64, tree.stale * 2 > tree.rootOrder.count else { return }
        tree.rootOrder = tree.rootOrder.filter { linkedParent($0) == nil }
        tree.stale = 0
    }

    /// The parent `id` hangs under in the index: its `parent`, when that task is known and the
    /// link was not cut. Nil: `id` is a root.
    func linkedParent(_ id: String) -> String? {
        guard let parent = tasks[id]?.info.parent, tasks[parent] != nil, !tree.cut.contains(id) else { return nil }
        return parent
    }

    /// `root` and every task below it, root first, breadth first: O(tree size). Nil when the
    /// tree has more than `limit` tasks (or `root` is not known).
    func treeIds(_ root: String, limit: Int = TreeLimits.maxTreeTasks) -> [String]? {
        guard tasks[root] != nil else { return nil }
        var ids = [root]
        var next = 0
        while next < ids.count {
            for child in tree.children[ids[next]] ?? [] {
                ids.append(child)
                if ids.count > limit { return nil }
            }
            next += 1
        }
        return ids
    }

    // MARK: Cancel, wait, submit

    /// `swarm cancel --recursive`: cancels each of `ids` (a tree from `treeIds`) that has not
    /// ended, by the one cancel path (`cancel`: a queued task ends now, a running one is
    /// killed on its worker). `at` (wall) dates what ends. Returns the directives and how many
    /// were cancelled while queued, are being killed, and had already ended.
    mutating func cancelTree(_ ids: [String], at: Int64) -> (directives: [SchedulerDirective], cancelled: Int, killing: Int, alreadyEnded: Int) {
        var directives: [SchedulerDirective] = []
        var cancelled = 0, killing = 0, ended = 0
        for id in ids {
            guard let state = tasks[id]?.info.state else { continue }
            if state.isTerminal { ended += 1; continue }
            guard let more = try? cancel(id, at: at) else { continue }
            directives += more
            if state == .queued { cancelled += 1 } else { killing += 1 }
        }
        return (directives, cancelled, killing, ended)
    }

    /// The tree of `root` as `swarm wait --recursive` sees it: how many tasks, and which have
    /// not ended (the first `maxIds` of them, breadth first). Nil when it has more than `limit`
    /// tasks. The wait is over when `pendingCount` is 0: the task and every descendant known
    /// at this moment have ended (a running task may still add children, so this is asked again
    /// after each wait).
    func treeProgress(_ root: String, limit: Int = TreeLimits.maxTreeTasks,
                      maxIds: Int = TreeLimits.maxPendingIds) -> (total: Int, pendingCount: Int, pending: [String])? {
        guard let ids = treeIds(root, limit: limit) else { return nil }
        var pending: [String] = []
        var count = 0
        for id in ids where tasks[id]?.info.state.isTerminal == false {
            count += 1
            if pending.count < maxIds { pending.append(id) }
        }
        return (ids.count, count, pending)
    }

    /// Why a new task may not hang under `parent`, or nil. A cancelled task takes no new
    /// children: one that ended `cancelled`, or whose cancel was asked for while it runs. So
    /// after `cancel --recursive`, nothing joins the tree under a task it cancelled.
    func parentRefusal(_ parent: String) -> String? {
        guard let record = tasks[parent] else { return nil }
        let cancelling = record.cancelRequested && !record.info.state.isTerminal
        guard record.info.state == .cancelled || cancelling else { return nil }
        return "parent '\(PeerText.safe(parent))' \(cancelling ? "is being cancelled" : "was cancelled"): a cancelled task takes no new children"
    }

    /// Whether task `id` is running with its cancel asked for (its credential may not submit).
    func isBeingCancelled(_ id: String) -> Bool {
        guard let record = tasks[id] else { return false }
        return record.cancelRequested && !record.info.state.isTerminal
    }
}
