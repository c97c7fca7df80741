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

/// Client requests: who may do what (`ClientPolicy`), then each request, with one error path.
extension SchedulerServer {
    func receivedFromClient(_ message: Message, session: PeerSession) {
        do {
            let identity = session.identity ?? .cluster
            let admitted = try ClientPolicy.admit(message, identity: identity, state: state)
            try handle(admitted, identity: identity, session: session)
        } catch {
            if error.closes {
                session.connection.refuse(error.code, error.reason, requestId: message.requestId)
            } else {
                deliver(session.connection, .error(.init(code: error.code, reason: error.reason, requestId: message.requestId)))
            }
        }
    }

    private func handle(_ message: Message, identity: ClientIdentity, session: PeerSession) throws(ClientRefusal) {
        let connection = session.connection
        do {
            switch message {
            case .submit(let submit):
                try checkInputBlobs([submit.task])
                let id = try state.submit(submit.task, at: clocks.wall())
                deliver(connection, .submitted(.init(requestId: submit.requestId, id: id)))
                scheduleSoon()
            case .submitBatch(let batch):
                try checkInputBlobs(batch.tasks)
                let (ids, existing) = try state.submitBatch(batch.tasks, at: clocks.wall())
                deliver(connection, .batchSubmitted(.init(requestId: batch.requestId, ids: ids, existing: existing)))
                scheduleSoon()
            case .status(let ref):
                deliver(connection, .taskInfo(.init(requestId: ref.requestId, task: try taskInfo(ref.id))))
            case .wait(let wait):
                try startWait(wait, session: session)
            case .listTasks(let request):
                try listTasks(request, identity: identity, connection: connection)
            case .listNodes(let request):
                deliver(connection, .nodeList(.init(requestId: request.requestId, nodes: state.listNodes(nowMs: clocks.monotonic()))))
                connection.yieldTurn()
            case .cancel(let ref):
                try cancel(ref, connection: connection)
            case .stats(let request):
                var (cluster, workers) = state.statistics()
                for (name, usage) in workerUsage { workers[name, default: StatsBlock()].process = usage }
                cluster.process = nil
                addBlobFigures(cluster: &cluster, workers: &workers)
                deliver(connection, .statsReply(.init(requestId: request.requestId, cluster: cluster, workers: workers,
                                                      scheduler: ProcessUsage.ofSelf(at: clocks.wall()))))
                connection.yieldTurn()
            case .drain(let ref):
                try state.drain(node: ref.name)
                logger.notice("worker \(PeerText.safe(ref.name)) drained by a client")
                deliver(connection, .nodeList(.init(requestId: ref.requestId, nodes: state.listNodes(nowMs: clocks.monotonic()))))
            case .logs(let request):
                try sendLog(request, session: session)
            default:
                throw ClientRefusal(code: .unexpected, reason: "a client may not send '\(message.type)'", closes: true)
            }
        } catch let error as ClientRefusal {
            throw error
        } catch let error as SchedulerError {
            throw ClientRefusal(error)
        } catch {
            throw ClientRefusal(code: .internalError, reason: "\(error)")
        }
    }

    /// A spec naming inputs is accepted only when they are held and within the limits
    /// (`TaskBlobRules.inputProblem`).
    private func checkInputBlobs(_ specs: [TaskSpec]) throws(ClientRefusal) {
        for spec in specs where spec.inputBlobs?.isEmpty == false {
            if let problem = TaskBlobRules.inputProblem(spec, maxBytes: config.settings.maxInputBytesPerTask, held: heldBlobSize) {
                let who = specs.count > 1 ? "task \(PeerText.safe(spec.id ?? "?", limit: 100)): " : ""
                throw ClientRefusal(code: .invalidTask, reason: who + problem)
            }
        }
    }

    /// Cancelling a task that has already ended is not an error: the reply is its final
    /// state (the CLI says it had already ended).
    private func cancel(_ ref: Message.TaskRef, connection: FramedConnection) throws(SchedulerError) {
        let before = try state.task(ref.id)
        if !before.state.isTerminal {
            let directives = try state.cancel(ref.id, at: clocks.wall())
            logger.notice("task \(PeerText.safe(ref.id)) cancelled by a client")
            execute(directives)
        }
        deliver(connection, .taskInfo(.init(requestId: ref.requestId, task: try taskInfo(ref.id))))
    }

    private func startWait(_ wait: Message.Wait, session: PeerSession) throws(ClientRefusal) {
        // Each task once, in the order first named: the reply carries each named task's
        // record, so a repeated id would multiply it (a 4-byte `"x",` asking for a copy of a
        // task of megabytes, a million times).
        // More could not be answered in one frame (`WaitSummary`); `swarm wait` sends longer
        // lists in parts. Counted before anything else is done with them.
        if wait.ids.count > WaitSummary.maxIds {
            throw ClientRefusal(code: .unexpected, reason: "a wait names \(wait.ids.count) task ids; at most \(WaitSummary.maxIds) per request (wait for the rest in further requests)")
        }
        var seen = Set<String>()
        let ids = wait.ids.filter { seen.insert($0).inserted }
        var pending = Set<String>()
        for id in ids {
            guard let info = try? state.task(id) else { throw ClientRefusal(.unknownTask(id)) }
            if !info.state.isTerminal { pending.insert(id) }
        }
        if pending.isEmpty {
            deliver(session.connection, .waitResult(.init(requestId: wait.requestId, tasks: waitReply(ids))))
            return
        }
        if let problem = waiters.refusal(adding: ids.count, for: session, limits: config.clientLimits) {
            throw ClientRefusal(code: .unexpected, reason: problem)
        }
        waiters.add(Waiter(session: session, requestId: wait.requestId, ids: ids, pending: pending))
    }

    /// One page of the listing; a task's credential sees only its subtree. A page ends the
    /// client's turn: listings are the costly request.
    private func listTasks(_ request: Message.ListTasks, identity: ClientIdentity, connection: FramedConnection) throws(SchedulerError) {
        var limits = config.clientLimits.page
        if let limit = request.limit { limits.limit = max(1, min(limit, limits.limit)) }
        let encoder = FastJSONEncoder()
        let page = try state.listTasks(after: request.after, limits: limits,
                                       size: { (try? encoder.encode($0).count) ?? limits.maxBytes },
                                       include: { ClientPolicy.canSee($0.id, identity: identity, state: state) })
        deliver(connection, .taskList(.init(requestId: request.requestId, tasks: withWaitReasons(page.tasks), next: page.next)))
        connection.yieldTurn()
    }

    /// `swarm logs`: the whole log relayed from the worker (SchedulerServer+Logs.swift), or,
    /// followed live, what is kept here and then each piece as it comes, until the end.
    private func sendLog(_ request: Message.LogsRequest, session: PeerSession) throws(SchedulerError) {
        let info = try state.task(request.id)
        session.connection.yieldTurn()
        guard request.follow && !info.state.isTerminal else { return wholeLog(request, info, session: session) }
        deliver(session.connection, .logChunk(.init(requestId: request.requestId, id: request.id,
                                                    data: logs.text(id: request.id), done: false)))
        followers[request.id, default: []].append((session, request.requestId))
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
