import SwarmProtocol

/// Task trees (issue 13 item 5): `cancelTree`, `listTree`, and the rule that keeps new tasks
/// out of cancelled trees. Each request is one bounded turn: a tree of more than
/// `TreeLimits.maxTreeTasks` is refused, never walked without end.
extension ClientRequests {
    /// `swarm cancel --recursive ID`: the task and every descendant. Its first turn stops the
    /// running ones and takes the queued ones out of placement (nothing can join the tree or
    /// be placed from then on) and ends the first `treeCancelSlice` of them; a larger tree
    /// goes on in later turns (`ClientFlow.continueTreeCancel`), answered after the last.
    /// The reply counts what was done.
    static func cancelTree(_ ref: Message.TaskRef, state: inout ClusterState,
                           context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        _ = try refusing { () throws(SchedulerError) in try state.task(ref.id, archive: context.archive) }
        guard let ids = state.treeIds(ref.id, limit: context.treeLimit) else { throw tooLarge(ref.id, context) }
        var (job, directives) = state.beginTreeCancel(ids, at: context.at)
        directives += state.continueTreeCancel(&job, at: context.at, budget: context.treeCancelSlice)
        var outcome = ClientOutcome(directives: directives)
        if job.cancelled > 0 || !directives.isEmpty {
            outcome.log = [.notice("tree of task \(PeerText.safe(ref.id)) cancelled by a client: \(job.cancelled) queued cancelled, \(job.killing) being killed, \(job.alreadyEnded) had ended, \(job.alreadyCancelling) already being cancelled")]
        }
        if job.isDone {
            outcome.replies = [treeCancelled(ref.requestId, job)]
        } else {
            outcome.flow = [.continueTreeCancel(requestId: ref.requestId, job: job)]
        }
        return outcome
    }

    /// The answer to a tree cancel once its last slice is done.
    static func treeCancelled(_ requestId: Int, _ job: TreeCancelJob) -> Message {
        .treeCancelled(.init(requestId: requestId, id: job.root, total: job.total, cancelled: job.cancelled,
                             killing: job.killing, alreadyEnded: job.alreadyEnded,
                             alreadyCancelling: job.alreadyCancelling > 0 ? job.alreadyCancelling : nil))
    }

    /// One page of a tree (`ClusterState.treePage`). The first page of a tree named by id also
    /// counts the whole tree (`Message.TaskTree`), which `swarm wait --recursive` waits on. A
    /// page ends the client's turn, as listings do.
    static func listTree(_ request: Message.ListTree, identity: ClientIdentity, state: ClusterState,
                         context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        if let id = request.id { _ = try refusing { () throws(SchedulerError) in try state.task(id, archive: context.archive) } }
        let limit = max(1, min(request.limit ?? TreeLimits.pageEntries, TreeLimits.pageEntries))
        let encoder = FastJSONEncoder()
        guard let page = state.treePage(root: request.id, after: request.after, limit: limit, maxBytes: TreeLimits.pageBytes,
                                        archive: context.archive,
                                        size: { (try? encoder.encode($0).count) ?? TreeLimits.pageBytes }) else {
            throw ClientRefusal(code: .unknownTask, reason: "task '\(PeerText.safe(request.after ?? ""))' is not in \(request.id.map { "the tree of task '\(PeerText.safe($0))'" } ?? "the task forest")")
        }
        var reply = Message.TaskTree(requestId: request.requestId, entries: page.entries, next: page.next)
        let reasons = state.withWaitReasons(page.entries.map(\.task), nowMs: context.nowMs)
        for i in reply.entries.indices { reply.entries[i].task = reasons[i].waitSummary() }
        if let id = request.id, request.after == nil {
            if let progress = state.treeProgress(id, limit: context.treeLimit) {
                reply.total = progress.total
                reply.pendingCount = progress.pendingCount
                reply.pending = progress.pending
            }
        }
        return .reply(.taskTree(reply), .yieldTurn)
    }

    /// A new task may not hang under a cancelled task (`ClusterState.parentRefusal`). Tasks of
    /// a batch that exist already (same spec: not submitted again) are not new.
    static func checkParents(_ specs: [TaskSpec], state: ClusterState, archive: TaskArchive) throws(ClientRefusal) {
        for spec in specs {
            guard let parent = spec.parent, spec.id.map({ (try? state.task($0, archive: archive)) == nil }) ?? true,
                  let problem = state.parentRefusal(parent, archive: archive) else { continue }
            let who = specs.count > 1 ? "task \(PeerText.safe(spec.id ?? "?", limit: 100)): " : ""
            throw ClientRefusal(code: .invalidTask, reason: who + problem)
        }
    }

    private static func tooLarge(_ id: String, _ context: ClientRequestContext) -> ClientRefusal {
        ClientRefusal(code: .invalidTask, reason: "the tree of task '\(PeerText.safe(id))' has more than \(context.treeLimit) tasks, the most one request takes: cancel its subtrees (swarm tasks --tree \(PeerText.safe(id)))")
    }
}
