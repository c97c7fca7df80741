import Logging
import SwarmProtocol

/// What one client request is handled with besides the message, who sent it and the cluster
/// state: the clocks, read once for it, the limits, and the little the shell holds that a
/// request reads. Tests build it with fixed values.
struct ClientRequestContext {
    /// Monotonic milliseconds: what node listings measure `lastSeenMsAgo` against.
    var nowMs: Int64
    /// Wall-clock unix milliseconds: the `submittedAt` of submitted tasks (and their generated
    /// ids), the `finishedAt` of a task cancelled while queued. No duration is measured on it.
    var at: Int64
    var limits = ClientLimits()
    /// The `wait` requests this connection has open, and all connections together
    /// (`WaiterTable.load`, `WaiterTable.total`): a new wait must fit the limits beside them.
    var waits = WaiterTable.Load()
    var allWaits = WaiterTable.Load()
    /// The size of a blob the scheduler holds (nil: not held), for tasks naming inputs.
    var heldBlobSize: (String) -> Int64? = { _ in nil }
    /// Finished tasks that left memory, read from the store (`TaskArchive`).
    var archive: TaskArchive = .none
    /// The final state of a task the cluster state no longer holds in memory, as the store
    /// has it (nil: no such task, or not ended): how a dependency on a finished task that left
    /// memory is recognized (issue 14).
    var endedTaskState: (String) -> TaskState? = { _ in nil }
    /// The most tasks a tree request takes in (`TreeLimits.maxTreeTasks`; tests lower it).
    var treeLimit = TreeLimits.maxTreeTasks
    /// Queued tasks a tree cancel ends a turn (`ClusterState.treeCancelSlice`; tests lower it).
    var treeCancelSlice = ClusterState.treeCancelSlice
}

/// What the shell does for one client request (`ClientRequests.handle`), as data. The shell
/// carries it out in the order of its fields: log lines, directives, replies, then flow; so a
/// cancel's directives wake the task's waiters before the cancel itself is answered, as ever.
/// A refused request has only `refusal` set, and nothing in the cluster state changed.
struct ClientOutcome: Equatable {
    /// Lines for the scheduler's log (user actions worth a line: a cancel, a drain).
    var log: [ClientLogLine] = []
    /// Cluster-state directives to execute (`SchedulerServer.execute`): kills, ended tasks.
    var directives: [SchedulerDirective] = []
    /// Messages to the client that asked, in order; sent at the end of the turn, once its
    /// changes are saved.
    var replies: [Message] = []
    /// What the shell starts or arranges beyond replies (`ClientFlow`).
    var flow: [ClientFlow] = []
    /// Why the request gets an `error` frame instead (the one error path): sent with the
    /// request's `requestId`; when `closes`, the connection is closed after it.
    var refusal: ClientRefusal?

    /// The outcome of a refused request.
    static func refused(_ refusal: ClientRefusal) -> ClientOutcome { ClientOutcome(refusal: refusal) }

    /// The reply alone (most read-only requests).
    static func reply(_ message: Message, _ flow: ClientFlow...) -> ClientOutcome {
        ClientOutcome(replies: [message], flow: flow)
    }
}

/// A line for the scheduler's own log.
struct ClientLogLine: Equatable, Sendable {
    var level: Logger.Level
    var text: String

    static func notice(_ text: String) -> ClientLogLine { ClientLogLine(level: .notice, text: text) }
}

/// What a request needs of the shell beyond sending replies: the parts that live in the
/// connection, the event loop, the waiter table, the log relays or the blob store.
enum ClientFlow: Equatable {
    /// New tasks are queued: placement runs at the end of this turn.
    case scheduleSoon
    /// The client's turn ends after this request, so that one client's costly requests
    /// (listings, logs, stats, nodes) do not hold the loop.
    case yieldTurn
    /// Answer `requestId` with the tasks `ids` once every task in `pending` has ended. The
    /// limits on open waits were checked already.
    case startWait(requestId: Int, ids: [String], pending: Set<String>)
    /// `swarm logs -f` of a task that has not ended: what the scheduler keeps of its output
    /// now, then each piece as it comes, until the task ends.
    case followLog(requestId: Int, id: String)
    /// The whole log of the task as it is now (`info`): relayed from the worker of its last
    /// run, or the scheduler's copy when that worker cannot send it.
    case sendWholeLog(Message.LogsRequest, TaskInfo)
    /// A `stats` reply with the cluster state's counters: the shell adds the figures only it
    /// measures (the workers' and its own process usage, blob bytes moved) and sends it.
    case sendStats(Message.StatsReply)
    /// `swarm gc`: retention steps now, one small transaction per loop turn, with tasks
    /// finished before `cutoffMs` (wall-clock unix ms) also deleted; answered with the totals.
    case startGc(requestId: Int, cutoffMs: Int64?)
    /// A tree cancel's next slices, a turn each (`ClusterState.continueTreeCancel`), peers
    /// served between them; `treeCancelled` answers `requestId` once the last is saved.
    case continueTreeCancel(requestId: Int, job: TreeCancelJob)
}

extension ClientRefusal {
    /// A message that is not a client request at all (a worker's, a reply, a handshake
    /// step): a protocol violation, so the connection is closed.
    static func notAClientRequest(_ message: Message) -> ClientRefusal {
        ClientRefusal(code: .unexpected, reason: "a client may not send '\(message.type)'", closes: true)
    }
}

// MARK: Task records as replies show them

extension ClusterState {
    /// A task with why it waits, when it is queued. `nowMs` (monotonic) is when it is asked,
    /// for reasons that depend on time (a retry's backoff, issue 13).
    func taskInfoWithWaitReason(_ id: String, nowMs: Int64, archive: TaskArchive = .none) throws(SchedulerError) -> TaskInfo {
        var info = try task(id, archive: archive)
        if info.state == .queued, let why = waitReason(for: id, nowMs: nowMs) {
            info.waitReason = why.reason
            info.unplaceable = why.unplaceable
        }
        return info
    }

    /// `infos` with why each queued one waits (computed for all of them at once), as of
    /// `nowMs` (monotonic).
    func withWaitReasons(_ infos: [TaskInfo], nowMs: Int64) -> [TaskInfo] {
        let queued = infos.filter { $0.state == .queued }.map(\.id)
        guard !queued.isEmpty else { return infos }
        let reasons = waitReasons(for: queued, nowMs: nowMs)
        return infos.map { info in
            guard let why = reasons[info.id] else { return info }
            var info = info
            info.waitReason = why.reason
            info.unplaceable = why.unplaceable
            return info
        }
    }

    /// The tasks a `wait` asked for: one task whole (with its output tail), many as bounded
    /// summaries (`WaitSummary`), so that the reply fits a frame however large the tasks are.
    func waitReply(_ ids: [String], archive: TaskArchive = .none) -> [TaskInfo] {
        ids.compactMap { id in
            guard let info = try? task(id, archive: archive) else { return nil }
            return ids.count > 1 ? info.waitSummary() : info
        }
    }
}
