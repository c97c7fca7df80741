import SwarmProtocol

/// A `cancel --recursive` larger than one slice: who asked, and the job.
struct TreeCancelRun {
    weak var session: PeerSession?
    let requestId: Int
    var job: TreeCancelJob
}

extension SchedulerServer {
    /// One slice of the oldest tree cancel under way, at the start of a turn (`runTurn`): its
    /// directives carried out; once the job is done its answer joins the turn's messages,
    /// which leave when the turn is durable. The next slice runs after a poll, with what peers
    /// sent meanwhile handled in between (`ClusterState.treeCancelSlice`).
    func treeCancelSlice() {
        var run = treeCancels.removeFirst()
        let directives = state.continueTreeCancel(&run.job, at: clocks.wall())
        if !directives.isEmpty { execute(directives) }
        if run.job.isDone {
            if let session = run.session { deliver(session.connection, ClientRequests.treeCancelled(run.requestId, run.job)) }
        } else {
            treeCancels.insert(run, at: 0)
        }
        if !treeCancels.isEmpty { continueAfterPoll() }
    }
}
