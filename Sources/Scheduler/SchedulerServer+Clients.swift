import Logging
import SwarmProtocol
import SwarmTransport

/// What clients may make the scheduler do and hold, with the numbers enforced.
public struct ClientLimits: Sendable {
    /// Requests handled from one client before the loop gets a turn (a listing page, `logs`,
    /// `stats` or `nodes` ends the turn by itself).
    public var messagesPerTurn = 256
    /// Backpressure: a client with more than this queued unread is not read from (its
    /// requests wait) until its queue is down to `resumeReadingBelow`.
    public var pauseReadingAbove = 1024 * 1024
    public var resumeReadingBelow = 256 * 1024
    /// Unread bytes one client may hold before it is cut off (two largest frames).
    public var maxQueuedPerClient = 32 * 1024 * 1024
    /// Unread bytes all clients together may hold (counting queues of `countedAbove` bytes
    /// or more); past it the clients with the most unread bytes are dropped first.
    public var maxQueuedTotal = 128 * 1024 * 1024
    public var countedAbove = 1024 * 1024
    /// A dropped client that still does not read is closed for good after this long.
    public var dropGraceMs: UInt64 = 2_000
    /// Open `wait` requests and task ids they name, per client and in all.
    public var maxWaitsPerClient = 1_000
    public var maxWaitIdsPerClient = 1_000_000
    public var maxWaitsTotal = 100_000
    public var maxWaitIdsTotal = 2_000_000
    /// How large one page of `listTasks` may be.
    public var page = TaskPageLimits()

    public init() {}
}

/// Client requests: decided by `ClientRequests` (pure), carried out here.
extension SchedulerServer {
    func receivedFromClient(_ received: Message, session: PeerSession) {
        let context = ClientRequestContext(nowMs: clocks.monotonic(), at: clocks.wall(), limits: config.clientLimits,
                                           waits: waiters.held(by: session), allWaits: waiters.total,
                                           heldBlobSize: { [unowned self] in self.heldBlobSize($0) }, archive: archive,
                                           endedTaskState: { [unowned self] in self.store?.endedState(of: $0) })
        let message: Message
        do { message = try SecretSealing.sealed(received, sealer: { self.secretSealer }) } catch {
            deliver(session.connection, .error(.init(code: error.code, reason: error.reason, requestId: received.requestId)))
            return
        }
        let outcome = ClientRequests.handle(message, identity: session.identity ?? .cluster, state: &state, context: context)
        carryOut(outcome, requestId: message.requestId, session: session)
    }

    /// The key `secretEnv` values are sealed under: derived from the cluster token (none
    /// without one). Derived per use: a few microseconds, once per submit or assignment.
    var secretSealer: SecretSealer? { config.token.map { SecretSealer(token: $0) } }

    /// In the order `ClientOutcome` states: log lines, directives, replies, flow.
    private func carryOut(_ outcome: ClientOutcome, requestId: Int?, session: PeerSession) {
        let connection = session.connection
        if let refusal = outcome.refusal {
            if refusal.closes {
                connection.refuse(refusal.code, refusal.reason, requestId: requestId)
            } else {
                deliver(connection, .error(.init(code: refusal.code, reason: refusal.reason, requestId: requestId)))
            }
            return
        }
        for line in outcome.log { logger.log(level: line.level, "\(line.text)") }
        if !outcome.directives.isEmpty { execute(outcome.directives) }
        for reply in outcome.replies { deliver(connection, reply) }
        for step in outcome.flow { run(step, session: session) }
    }

    private func run(_ step: ClientFlow, session: PeerSession) {
        switch step {
        case .scheduleSoon:
            scheduleSoon()
        case .yieldTurn:
            session.connection.yieldTurn()
        case let .startWait(requestId, ids, pending):
            waiters.add(Waiter(session: session, requestId: requestId, ids: ids, pending: pending))
        case let .followLog(requestId, id):
            deliver(session.connection, .logChunk(.init(requestId: requestId, id: id, data: logs.text(id: id), done: false)))
            followers[id, default: []].append((session, requestId))
        case let .sendWholeLog(request, info):
            wholeLog(request, info, session: session)
        case .sendStats(let reply):
            deliver(session.connection, .statsReply(completeStats(reply)))
        case let .startGc(requestId, cutoffMs):
            startGc(session: session, requestId: requestId, cutoffMs: cutoffMs)
        case let .continueTreeCancel(requestId, job):
            treeCancels.append(TreeCancelRun(session: session, requestId: requestId, job: job))
            continueAfterPoll()
        }
    }

    /// `stats` with what the shell holds: the workers' process figures, blob bytes, and
    /// this process's own usage (`swarm stats` and the dashboard's `/api/stats`).
    func completeStats(_ reply: Message.StatsReply) -> Message.StatsReply {
        var reply = reply
        for (name, usage) in workerUsage { reply.workers[name, default: StatsBlock()].process = usage }
        addBlobFigures(cluster: &reply.cluster, workers: &reply.workers)
        reply.scheduler = ProcessUsage.ofSelf(at: clocks.wall())
        return reply
    }

    // MARK: Caps on what clients hold

    /// Counts what clients leave unread and, past `maxQueuedTotal`, drops the clients with
    /// the most unread bytes (the slowest followers) until the rest fit. Each gets an error
    /// frame saying why, then is closed once that is read, after `dropGraceMs`, or at once
    /// if the total is still over the cap a turn later (a dropped client's queue counts
    /// until its connection is closed).
    func enforceQueueCaps(sentTo connections: some Sequence<FramedConnection>) {
        let limits = config.clientLimits
        for connection in connections where connection.queuedBytes >= limits.countedAbove {
            guard let session = sessionsByConnection[ObjectIdentifier(connection)], session.hello?.role == .client else { continue }
            let key = ObjectIdentifier(session)
            if backlogged[key] == nil, dropped[key] == nil { backlogged[key] = session }
        }
        guard !backlogged.isEmpty || !dropped.isEmpty else { return }
        var total = 0
        for (key, session) in backlogged {
            let queued = session.connection.queuedBytes
            if queued < limits.countedAbove || !session.connection.isOpen {
                backlogged[key] = nil
            } else {
                total += queued
            }
        }
        total += dropped.values.reduce(0) { $0 + $1.connection.queuedBytes }
        guard total > limits.maxQueuedTotal else { return }
        // Those dropped already go first, for good; then the slowest of the others.
        for session in dropped.values.sorted(by: { $0.connection.queuedBytes > $1.connection.queuedBytes }) where total > limits.maxQueuedTotal {
            total -= session.connection.queuedBytes
            session.connection.close(reason: "dropped: still not reading while clients hold more than \(limits.maxQueuedTotal) unread bytes")
        }
        let slowestFirst = backlogged.values.sorted { $0.connection.queuedBytes > $1.connection.queuedBytes }
        for session in slowestFirst where total > limits.maxQueuedTotal {
            let queued = session.connection.queuedBytes
            total -= queued
            drop(session, queued: queued, limits: limits)
        }
    }

    private func drop(_ session: PeerSession, queued: Int, limits: ClientLimits) {
        let key = ObjectIdentifier(session)
        backlogged[key] = nil
        dropped[key] = session
        session.droppedAtMs = loop.nowMs
        for (id, list) in followers {
            let kept = list.filter { $0.session !== session }
            followers[id] = kept.isEmpty ? nil : kept
        }
        let reason = "dropped: \(queued) bytes sent to this connection were not read, and all clients together may leave at most \(limits.maxQueuedTotal) unread; the slowest readers are dropped first"
        peerLog(session, .warning, "\(reason) (\(session.connection.peer))")
        session.connection.refuse(.unexpected, reason)
    }

    /// Dropped clients that still have not read what they were sent are closed for good.
    func closeDroppedClients(nowMs: UInt64) {
        for session in dropped.values {
            guard let at = session.droppedAtMs, nowMs >= at, nowMs - at >= config.clientLimits.dropGraceMs else { continue }
            session.connection.close(reason: "dropped: its unread replies were not read within \(config.clientLimits.dropGraceMs) ms")
        }
    }
}
