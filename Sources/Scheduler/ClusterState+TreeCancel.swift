import SwarmProtocol

/// A `swarm cancel --recursive` under way. Its first turn (`beginTreeCancel`) asks every
/// running task of the tree to stop and takes the queued ones out of placement; later turns
/// end the queued ones, `treeCancelSlice` a turn (`continueTreeCancel`), so peers are served
/// between slices: one turn for 100,000 tasks held the loop 6.7 s (release). The counts are the
/// states as they were when it began; the shell answers once the last slice is saved.
public struct TreeCancelJob: Equatable, Sendable {
    public let root: String
    public let total: Int
    public let cancelled: Int
    public let killing: Int
    public let alreadyEnded: Int
    /// Those another tree cancel (an overlapping tree, or the same one asked twice) or a
    /// plain cancel was already ending: counted once, by the request that began it.
    public let alreadyCancelling: Int
    /// The tasks that were queued, to end in order; `next` is the first not ended yet.
    let queued: [String]
    var next = 0

    public var isDone: Bool { next >= queued.count }
}

extension ClusterState {
    /// Tasks a slice ends at most (each is a record saved and its waiters told, like the
    /// `dependency_failed` cascade's `settleSlice`).
    static let treeCancelSlice = 1_000

    /// Starts cancelling `ids` (a tree from `treeIds`, `root` first): running tasks are asked
    /// to stop now (their kills are the directives), queued ones leave the placement queue in
    /// one pass and wait in `treeCancelPending` for their slice: no release (dependencies, a
    /// backoff's end, a model resolved) puts them back, and no child may join them.
    /// Its root is saved (`treeCancelRoots`) until its last slice: a restart resumes it.
    mutating func beginTreeCancel(_ ids: [String], at: Int64, stopRunning: Bool = true) -> (job: TreeCancelJob, directives: [SchedulerDirective]) {
        let before = ids.map { tasks[$0]?.info.state }
        let cancelling = zip(ids, before).map { id, state in
            state?.isTerminal == false && (treeCancelPending.contains(id) || tasks[id]?.cancelRequested == true)
        }
        let fresh = zip(ids.indices, ids).filter { !cancelling[$0.0] }
        let queued = fresh.filter { before[$0.0] == .queued }.map(\.1)
        queue.remove(ids: Set(queued), requests: queued.compactMap { tasks[$0]?.request })
        treeCancelPending.formUnion(queued)
        if !queued.isEmpty, let root = ids.first {
            treeCancelRoots.append(root)
            treeCancelsChanged = true
        }
        var directives: [SchedulerDirective] = []
        // One sent ahead to a busy worker ends now, its worker told to drop it: left for its
        // slice it would start there as soon as the tree's killed runs free a slot, and a
        // withdrawal (its worker lost or restarted) would queue it again.
        for id in queued where isPrefetched(id) { directives += (try? cancel(id, at: at)) ?? [] }
        for (i, id) in fresh where stopRunning && before[i] != nil && before[i] != .queued && before[i]?.isTerminal == false {
            directives += (try? cancel(id, at: at)) ?? []
        }
        let killing = fresh.filter { before[$0.0] == .running }.count
        let alreadyCancelling = cancelling.filter { $0 }.count
        let job = TreeCancelJob(root: ids.first ?? "", total: ids.count, cancelled: queued.count, killing: killing,
                                alreadyEnded: ids.count - queued.count - killing - alreadyCancelling,
                                alreadyCancelling: alreadyCancelling, queued: queued)
        return (job, directives)
    }

    /// Ends the next `budget` queued tasks of `job` (those that have not ended otherwise
    /// meanwhile, e.g. `dependency_failed`): the directives of what ended.
    mutating func continueTreeCancel(_ job: inout TreeCancelJob, at: Int64,
                                     budget: Int = ClusterState.treeCancelSlice) -> [SchedulerDirective] {
        var directives: [SchedulerDirective] = []
        // Only the call that ends its last queued task takes its saved root out: a job that
        // had none queued saved none, and another job may hold an equal root.
        let wasDone = job.isDone
        let end = min(job.queued.count, job.next + max(1, budget))
        for id in job.queued[job.next..<end] {
            // Still pending while it ends: what its end releases must not place the others.
            if tasks[id]?.info.state.isTerminal == false {
                directives += (try? cancel(id, at: at, dequeued: true)) ?? []
            }
            treeCancelPending.remove(id)
        }
        job.next = end
        if !wasDone, job.isDone, let i = treeCancelRoots.firstIndex(of: job.root) {
            treeCancelRoots.remove(at: i)
            treeCancelsChanged = true
        }
        return directives
    }

    /// After a restart: the tree cancels the store had under way (`TaskStore.loadTreeCancels`),
    /// begun again on their trees as they are now, so the tasks they had not ended yet leave
    /// the placement queue before any is placed. Their running tasks were asked to stop by the
    /// turn that began them (saved with it), so only queued ones are taken (prefetched ones
    /// end at once, as in `beginTreeCancel`); the jobs go on in
    /// slices with no one to answer. A root no longer known is dropped.
    public mutating func resumeTreeCancels(_ roots: [String], at: Int64) -> [TreeCancelJob] {
        var jobs: [TreeCancelJob] = []
        for root in roots {
            guard let ids = treeIds(root) else { continue }
            let (job, directives) = beginTreeCancel(ids, at: at, stopRunning: false)
            // Prefetched ones ended: handed out from the first placement round, as the
            // restore's own ends are.
            undelivered += directives
            if !job.isDone { jobs.append(job) }
        }
        treeCancelsChanged = treeCancelRoots != roots
        return jobs
    }
}
