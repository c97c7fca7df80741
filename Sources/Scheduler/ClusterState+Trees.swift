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
/// link. The index holds the tree's shape by itself (ids only): walks need no task record, so
/// a task that leaves memory keeps its place in it.
struct TaskTree: Sendable {
    /// Parent id -> its children, in submission order (the parent may not be known yet).
    var children: [String: [String]] = [:]
    /// Task -> the parent it hangs under, once that parent is known: the forest's edges.
    var parentOf: [String: String] = [:]
    /// Task -> its place in its parent's `children` (a listing goes on from it in O(1)).
    var slot: [String: Int] = [:]
    /// Tasks whose parent link would have closed a loop.
    var cut: Set<String> = []
    /// Tasks that were roots when they came, with their submission sequence, in submission
    /// order. A root whose parent comes later stays until the next compaction (`stale` counts
    /// them): readers skip it.
    var rootOrder: [(id: String, sequence: UInt64)] = []
    var rootSequence: [String: UInt64] = [:]
    var stale = 0
    /// Task -> the parent it waits under in `children` while that parent is not known yet.
    var waitingUnder: [String: String] = [:]
    /// Parent -> how many entries of its `children` were dropped (`drop`) and not yet
    /// compacted away. An entry is live while its task has a `slot`.
    var deadChildren: [String: Int] = [:]
    /// Tasks deleted from the store while tasks of the index still hang under them: kept as
    /// the place their children hang in, until the last of those is dropped.
    var gone: Set<String> = []
}

extension ClusterState {
    // MARK: The index

    /// Links task `id` (just inserted or restored, in submission order) into the children index.
    mutating func linkIntoTree(_ id: String) {
        let waiting = (tree.children[id] ?? []).filter { tree.slot[$0] != nil }
        // Its children came first: they were roots until now.
        for child in waiting {
            tree.parentOf[child] = id
            tree.waitingUnder[child] = nil
        }
        if !waiting.isEmpty {
            tree.stale += waiting.count
            compactRoots()
        }
        guard let record = tasks[id] else { return }
        guard let parent = record.info.parent, parent != id, waiting.isEmpty || !descends(parent, from: id) else {
            if record.info.parent != nil { tree.cut.insert(id) }
            addRoot(id, sequence: record.sequence)
            return
        }
        tree.slot[id] = tree.children[parent]?.count ?? 0
        tree.children[parent, default: []].append(id)
        if isIndexed(parent) {
            tree.parentOf[id] = parent
        } else {
            tree.waitingUnder[id] = parent
            addRoot(id, sequence: record.sequence)
        }
    }

    /// A task already submitted that names `id` as its parent while no task `id` is known (nil:
    /// none): a task submitted as `id` would become its parent. O(1).
    func waitingChild(of id: String) -> String? {
        guard !isIndexed(id) else { return nil }
        return tree.children[id]?.first
    }

    /// Whether task `id` is known: in memory, or linked into the index before it left memory
    /// (a finished task that left memory keeps its place: issue 14).
    func isIndexed(_ id: String) -> Bool {
        tasks[id] != nil || tree.slot[id] != nil || tree.parentOf[id] != nil || tree.rootSequence[id] != nil
    }

    private mutating func addRoot(_ id: String, sequence: UInt64) {
        tree.rootOrder.append((id, sequence))
        tree.rootSequence[id] = sequence
    }

    /// Whether `id` is `ancestor` or below it through linked parents. Linked parents form a
    /// forest (the task being linked aside), so the walk ends; it is bounded all the same.
    private func descends(_ id: String, from ancestor: String) -> Bool {
        var at: String? = id
        for _ in 0...tree.parentOf.count + 1 {
            guard let here = at else { return false }
            if here == ancestor { return true }
            at = tree.parentOf[here]
        }
        return true
    }

    /// Drops roots that have since got their parent, once they are half of the list.
    private mutating func compactRoots() { tree.compactRoots() }

    /// The parent `id` hangs under in the index. Nil: `id` is a root.
    func linkedParent(_ id: String) -> String? { tree.parentOf[id] }

    /// `root` and every task below it, root first, breadth first: O(tree size). Nil when the
    /// tree has more than `limit` tasks (or `root` is not known).
    func treeIds(_ root: String, limit: Int = TreeLimits.maxTreeTasks) -> [String]? {
        guard isIndexed(root) else { return nil }
        var ids = [root]
        var next = 0
        while next < ids.count {
            for child in tree.children[ids[next]] ?? [] where tree.slot[child] != nil {
                ids.append(child)
                if ids.count > limit { return nil }
            }
            next += 1
        }
        return ids
    }

    // MARK: Cancel, wait, submit

    /// `swarm cancel --recursive` in one call (`beginTreeCancel`, then every slice): cancels
    /// each of `ids` (a tree from `treeIds`) that has not ended, by the one cancel path
    /// (`cancel`: a queued task ends now, a running one is killed on its worker; what that
    /// ends in turn, e.g. dependents, ends with it). `at` (wall) dates what ends. Returns the
    /// directives and how many of the tree were queued (now ended), running (being killed),
    /// and had already ended, as they were before it.
    mutating func cancelTree(_ ids: [String], at: Int64) -> (directives: [SchedulerDirective], cancelled: Int, killing: Int, alreadyEnded: Int) {
        var (job, directives) = beginTreeCancel(ids, at: at)
        while !job.isDone { directives += continueTreeCancel(&job, at: at) }
        return (directives, job.cancelled, job.killing, job.alreadyEnded)
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
    func parentRefusal(_ parent: String, archive: TaskArchive = .none) -> String? {
        guard let record = tasks[parent] else {
            // Out of memory it has ended: only a cancel ended is refused.
            guard archive.task(parent)?.info.state == .cancelled else { return nil }
            return "parent '\(PeerText.safe(parent))' was cancelled: a cancelled task takes no new children"
        }
        let cancelling = (record.cancelRequested || treeCancelPending.contains(parent)) && !record.info.state.isTerminal
        guard record.info.state == .cancelled || cancelling else { return nil }
        return "parent '\(PeerText.safe(parent))' \(cancelling ? "is being cancelled" : "was cancelled"): a cancelled task takes no new children"
    }

    /// Whether task `id` is running with its cancel asked for (its credential may not submit).
    func isBeingCancelled(_ id: String) -> Bool {
        guard let record = tasks[id] else { return false }
        return record.cancelRequested && !record.info.state.isTerminal
    }
}
