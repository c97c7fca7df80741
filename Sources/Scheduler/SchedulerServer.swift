import Logging
import SwarmProtocol
import SwarmTransport
import SwarmUV

/// Everything `swarm scheduler` is told on its command line.
public struct SchedulerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 7700
    public var stateDir = ".swarm/scheduler"
    /// Keep the state in `stateDir/swarm.db` (SQLite): acknowledged tasks survive a restart
    /// (`swarm scheduler`, `swarm up`). When false the state lives in memory only and
    /// `stateDir` is not touched (`swarm demo`, tests).
    public var durable = false
    public var token: ClusterToken?
    /// Without a token, only a loopback address may be bound unless this is set.
    public var insecureListenAny = false
    public var settings = SchedulerSettings()
    public var name = "scheduler"
    /// A connection that has not finished its handshake by then is closed.
    public var handshakeTimeoutMs: UInt64 = 10_000
    /// Until its handshake is done a peer may send only small frames, and only this many
    /// peers may be in that state at once: strangers cannot make us hold much memory.
    public var maxHandshakeFrame = 64 * 1024
    public var maxPendingHandshakes = 1024
    /// The largest frame an authenticated peer may send.
    public var maxFrame = Frame.defaultMaxPayload

    public init() {}
}

/// Why the scheduler could not start.
public enum SchedulerStartError: Error, CustomStringConvertible {
    case refusedInsecureBind(String)
    case badAddress(String)
    case bind(String, UVError)
    case state(TaskStoreError)

    public var description: String {
        switch self {
        case .refusedInsecureBind(let address):
            "refusing to listen on \(address) without a cluster token: anyone who can reach it could run commands. Use --token-file F (or SWARM_TOKEN), or --insecure-listen-any"
        case .badAddress(let address): "invalid listen address '\(address)' (want a numeric IPv4/IPv6 address)"
        case let .bind(address, error): "cannot listen on \(address): \(error)"
        case .state(let error): "\(error)"
        }
    }
}

/// The scheduler's shell: accepts connections, runs handshakes, feeds `ClusterState`, and
/// carries out its directives. Create, start and use on its loop's thread.
public final class SchedulerServer {
    let loop: EventLoop
    let config: SchedulerConfig
    let logger: Logger
    let now: () -> Int64
    var state: ClusterState
    private var listener: UVTCP?
    private var tickTimer: UVTimer?
    private var scheduleTimer: UVTimer?
    private var scheduleQueued = false
    private var scheduleRequested = false
    /// The durable state; nil when `config.durable` is off.
    var store: TaskStore?
    /// Messages of this loop turn, sent once its changes are on disk (see `endOfTurn`).
    var outgoing: [(FramedConnection, Message)] = []
    var sessions: [ObjectIdentifier: PeerSession] = [:]
    /// Established worker sessions by node name.
    var workers: [String: PeerSession] = [:]
    private var waiters = WaiterTable()
    var logs = LogStore()
    /// `swarm logs` read from the workers' log files (SchedulerServer+Logs.swift).
    var logRelays = LogRelays<ObjectIdentifier>()
    /// Each worker's process figures from its last heartbeat, for `swarm stats`.
    private var workerUsage: [String: ProcessUsage] = [:]
    /// Logs of tasks that ended this turn, saved with its changes (then dropped from memory).
    var pendingLogs: [String: String] = [:]
    /// `swarm logs -f` clients, by task id.
    private var followers: [String: [(session: PeerSession, requestId: Int)]] = [:]
    private var pendingHandshakes = 0
    private var tickPeriodMs: UInt64 = 500
    private var lastTickLoopMs: UInt64 = 0
    public private(set) var address: SocketAddress?
    /// The state could not be saved: the scheduler has stopped (a restart continues from what
    /// is on disk). Called on the loop thread.
    public var onFatal: ((String) -> Void)?

    public init(loop: EventLoop, config: SchedulerConfig, logger: Logger, now: @escaping () -> Int64 = unixMillis) {
        self.loop = loop
        self.config = config
        self.logger = logger
        self.now = now
        self.state = ClusterState(settings: config.settings)
    }

    /// Binds and listens; returns the real address (port 0 picks a free one).
    @discardableResult
    public func start() throws(SchedulerStartError) -> SocketAddress {
        let display = config.host.contains(":") ? "[\(config.host)]:\(config.port)" : "\(config.host):\(config.port)"
        let address: SocketAddress
        do { address = try SocketAddress(host: config.host, port: config.port) } catch {
            throw .badAddress(display)
        }
        if config.token == nil && !address.isLoopback {
            guard config.insecureListenAny else { throw .refusedInsecureBind(display) }
            logger.warning("listening on \(display) WITHOUT a cluster token (--insecure-listen-any): anyone who reaches this port can run commands")
        } else if config.token == nil {
            logger.notice("no cluster token configured: binding loopback only")
        }
        if config.durable {
            do { try openState() } catch { throw .state(error) }
            // Restoring can take seconds: timers and the stall check start from now.
            loop.updateTime()
        }
        do {
            let tcp = try UVTCP(loop: loop)
            listener = tcp
            try tcp.bind(address)
            try tcp.listen { [weak self] error in self?.accept(error) }
            self.address = try tcp.localAddress()
        } catch {
            listener?.close()
            listener = nil
            store?.close()
            store = nil
            throw .bind(display, error)
        }
        let tick = try! UVTimer(loop: loop)
        let period = UInt64(max(50, min(500, config.settings.lostAfterMs / 4)))
        tickPeriodMs = period
        lastTickLoopMs = loop.nowMs
        tick.start(afterMs: period, repeatMs: period) { [weak self] in self?.tick() }
        tickTimer = tick
        scheduleTimer = try! UVTimer(loop: loop)
        // Restoring may have requeued tasks: place them and save that.
        scheduleSoon()
        return self.address!
    }

    /// Saves what is not saved yet, closes the state, the listener, every connection and
    /// timer. The loop can then end.
    public func stop() {
        if store != nil { _ = persist() }
        store?.close(); store = nil
        outgoing = []
        listener?.close(); listener = nil
        tickTimer?.close(); tickTimer = nil
        scheduleTimer?.close(); scheduleTimer = nil
        for session in sessions.values { session.connection.close(reason: "scheduler stopping") }
        sessions = [:]
        workers = [:]
    }

    // MARK: Connections

    private func accept(_ error: UVError?) {
        guard let listener else { return }
        if let error {
            logger.warning("accept failed: \(error)")
            return
        }
        guard let tcp = try? listener.accept() else { return }
        let connection = FramedConnection(tcp: tcp, maxFrame: config.maxHandshakeFrame)
        if pendingHandshakes >= config.maxPendingHandshakes {
            logger.warning("refusing \(connection.peer): \(pendingHandshakes) connections are still in their handshake")
            connection.refuse(.unexpected, "too many connections in their handshake; try again later")
            return
        }
        pendingHandshakes += 1
        let session = PeerSession(connection: connection,
                                  handshake: ServerHandshake(token: config.token, serverName: config.name),
                                  acceptedAtMs: loop.nowMs)
        let key = ObjectIdentifier(session)
        sessions[key] = session
        session.connection.onMessage = { [weak self, unowned session] message in
            self?.received(message, from: session)
        }
        session.connection.onEnd = { [weak self, unowned session] end in
            self?.ended(session, end)
        }
        session.connection.start()
    }

    private func ended(_ session: PeerSession, _ end: ConnectionEnd) {
        sessions[ObjectIdentifier(session)] = nil
        if session.hello == nil { pendingHandshakes -= 1 }
        waiters.removeAll(for: session)
        logRelays.clientGone(ObjectIdentifier(session))
        for (id, list) in followers {
            let kept = list.filter { $0.session !== session }
            followers[id] = kept.isEmpty ? nil : kept
        }
        if let node = session.nodeName, workers[node] === session {
            workers[node] = nil
            logger.notice("worker \(node) disconnected: \(end)")
            runRelays(logRelays.workerGone(node))
            execute(state.disconnected(node: node, nowMs: now()))
            scheduleSoon()
        } else if case .protocolError(let reason) = end {
            logger.notice("closed connection from \(session.connection.peer): \(reason)")
        }
    }

    private func received(_ message: Message, from session: PeerSession) {
        guard let hello = session.hello else {
            for directive in session.handshake.receive(message) {
                switch directive {
                case .send(let reply): session.connection.send(reply)
                case .close:
                    session.connection.closeAfterFlush(.protocolError("handshake failed"))
                case .established(let hello):
                    session.hello = hello
                    pendingHandshakes -= 1
                    session.connection.maxFrame = config.maxFrame
                case .failed(let reason):
                    logger.notice("handshake with \(session.connection.peer) failed: \(reason)")
                }
            }
            return
        }
        switch hello.role {
        case .worker: receivedFromWorker(message, session: session, name: hello.name)
        case .client: receivedFromClient(message, session: session)
        }
    }

    // MARK: Workers

    private func receivedFromWorker(_ message: Message, session: PeerSession, name: String) {
        let nowMs = now()
        if session.nodeName != nil { state.seen(node: name, nowMs: nowMs) }
        if let problem = message.workerProblem(), refusedFromWorker(message, problem, session: session, name: name) { return }
        switch message {
        case .register(let register):
            do {
                let directives = try state.register(
                    node: name, slots: register.slots, labels: register.labels, running: register.running,
                    finished: register.finished, address: session.connection.peer, nowMs: nowMs)
                session.nodeName = name
                workers[name] = session
                state.setHealth(node: name, runtimes: register.runtimes ?? [], allowsCommands: register.allowsCommands ?? true,
                               probing: register.probing ?? 0)
                let interval = state.assignHeartbeat(node: name, jitterFraction: Double.random(in: 0...1))
                deliver(session.connection, .registered(.init(heartbeatMs: interval)))
                // A bigger cluster: the others beat less often (a `registered` again says so).
                for update in state.heartbeatUpdates(jitter: { Double.random(in: 0...1) }) where update.node != name {
                    if let worker = workers[update.node] { deliver(worker.connection, .registered(.init(heartbeatMs: update.heartbeatMs))) }
                }
                logger.info("worker \(name) registered from \(session.connection.peer) with \(register.slots) slots")
                execute(directives)
                execute(state.cancelKills(node: name))
            } catch {
                session.connection.refuse(error.code, error.description)
            }
        case _ where session.nodeName == nil:
            session.connection.refuse(.unexpected, "a worker must 'register' before '\(message.type)'")
        case .heartbeat(let heartbeat):
            state.heartbeat(node: name, running: heartbeat.running)
            if let usage = heartbeat.usage { workerUsage[name] = usage }
        case .taskStarted(let started):
            state.taskStarted(node: name, run: RunRef(id: started.id, attempt: started.attempt), startedAt: started.startedAt)
        case .taskFinished(let finished):
            execute(state.taskFinished(node: name, result: finished.result, nowMs: nowMs))
        case .leave(let leave):
            logger.notice("worker \(name) is leaving: \(leave.reason)")
            state.leaving(node: name)
        case .health(let report):
            state.setHealth(node: name, runtimes: report.runtimes, probing: report.probing)
        case .taskEvent(let event):
            logger.info("task \(event.id) attempt \(event.attempt) on \(name): \(event.kind): \(event.detail)")
            state.taskEvent(node: name, run: RunRef(id: event.id, attempt: event.attempt), kind: event.kind)
            return
        case .taskOutput(let output):
            guard let info = try? state.task(output.id), info.attempts == output.attempt, info.node == name,
                  logs.append(id: output.id, attempt: output.attempt, stream: output.stream, data: output.data) != nil else { return }
            for follower in followers[output.id] ?? [] {
                // As it came, with its stream: the client labels it or splits stdout/stderr.
                deliver(follower.session.connection, .logChunk(.init(requestId: follower.requestId, id: output.id,
                                                                     data: output.data, done: false, stream: output.stream)))
            }
            return
        case .logData(let data):
            runRelays(logRelays.received(data, from: name))
            return
        case .reject(let reject):
            logger.warning("worker \(name) rejected task \(reject.id): \(reject.reason)")
            execute(state.taskRejected(node: name, run: RunRef(id: reject.id, attempt: reject.attempt), nowMs: nowMs,
                                       permanent: reject.permanent == true ? reject.reason : nil))
        default:
            session.connection.refuse(.unexpected, "a worker may not send '\(message.type)'")
            return
        }
        scheduleSoon()
    }

    /// A worker's message with a number out of range (`Message.workerProblem`). A bad
    /// `register` is refused (the connection closes); a bad result still ends its run (the
    /// state's `taskFinished` records it as failed, so no task hangs); any other report is
    /// dropped with an error frame. Returns whether the message was dropped.
    private func refusedFromWorker(_ message: Message, _ problem: String, session: PeerSession, name: String) -> Bool {
        logger.warning("worker \(name) sent '\(message.type)' with a number out of range: \(problem)")
        switch message {
        case .register:
            session.connection.refuse(.badMessage, "register: \(problem)")
            return true
        case .taskFinished:
            return false
        default:
            deliver(session.connection, .error(.init(code: .badMessage, reason: "\(message.type) ignored: \(problem)")))
            return true
        }
    }

    // MARK: Clients

    private func receivedFromClient(_ message: Message, session: PeerSession) {
        let nowMs = now()
        var message = message
        // A task's agent (authenticated by its task credential) may submit and look, not
        // cancel or drain; what it submits is its child unless it says otherwise.
        if let name = session.hello?.name, name.hasPrefix(ClusterToken.taskNamePrefix) {
            let parent = String(name.dropFirst(ClusterToken.taskNamePrefix.count))
            switch message {
            case .cancel, .drain:
                deliver(session.connection, .error(.init(code: .unexpected, reason: "a task's credential may not send '\(message.type)'", requestId: message.requestId)))
                return
            case .submit(var submit):
                if submit.task.parent == nil { submit.task.parent = parent }
                message = .submit(submit)
            case .submitBatch(var batch):
                for i in batch.tasks.indices where batch.tasks[i].parent == nil { batch.tasks[i].parent = parent }
                message = .submitBatch(batch)
            default: break
            }
        }
        switch message {
        case .submit(let submit):
            do {
                let id = try state.submit(submit.task, nowMs: nowMs)
                deliver(session.connection, .submitted(.init(requestId: submit.requestId, id: id)))
                scheduleSoon()
            } catch {
                deliver(session.connection, .error(.init(code: error.code, reason: error.description, requestId: submit.requestId)))
            }
        case .status(let ref):
            do {
                deliver(session.connection, .taskInfo(.init(requestId: ref.requestId, task: try taskInfo(ref.id))))
            } catch {
                deliver(session.connection, .error(.init(code: error.code, reason: error.description, requestId: ref.requestId)))
            }
        case .wait(let wait):
            var infos: [TaskInfo] = []
            for id in wait.ids {
                guard let info = try? state.task(id) else {
                    deliver(session.connection, .error(.init(code: .unknownTask, reason: SchedulerError.unknownTask(id).description, requestId: wait.requestId)))
                    return
                }
                infos.append(info)
            }
            let pending = Set(infos.filter { !$0.state.isTerminal }.map(\.id))
            if pending.isEmpty {
                deliver(session.connection, .waitResult(.init(requestId: wait.requestId, tasks: waitReply(wait.ids))))
            } else {
                waiters.add(Waiter(session: session, requestId: wait.requestId, ids: wait.ids, pending: pending))
            }
        case .listTasks(let request):
            deliver(session.connection, .taskList(.init(requestId: request.requestId, tasks: withWaitReasons(state.listTasks()))))
        case .listNodes(let request):
            deliver(session.connection, .nodeList(.init(requestId: request.requestId, nodes: state.listNodes(nowMs: nowMs))))
        case .cancel(let ref):
            do {
                let directives = try state.cancel(ref.id, nowMs: nowMs)
                logger.notice("task \(ref.id) cancelled by a client")
                execute(directives)
                deliver(session.connection, .taskInfo(.init(requestId: ref.requestId, task: try taskInfo(ref.id))))
            } catch {
                deliver(session.connection, .error(.init(code: error.code, reason: error.description, requestId: ref.requestId)))
            }
        case .stats(let request):
            var (cluster, workers) = state.statistics()
            for (name, usage) in workerUsage { workers[name, default: StatsBlock()].process = usage }
            cluster.process = nil
            deliver(session.connection, .statsReply(.init(requestId: request.requestId, cluster: cluster, workers: workers,
                                                          scheduler: ProcessUsage.ofSelf(nowMs: nowMs))))
        case .drain(let ref):
            do {
                try state.drain(node: ref.name)
                logger.notice("worker \(ref.name) drained by a client")
                deliver(session.connection, .nodeList(.init(requestId: ref.requestId, nodes: state.listNodes(nowMs: nowMs))))
            } catch {
                deliver(session.connection, .error(.init(code: error.code, reason: error.description, requestId: ref.requestId)))
            }
        case .submitBatch(let batch):
            do {
                let (ids, existing) = try state.submitBatch(batch.tasks, nowMs: nowMs)
                deliver(session.connection, .batchSubmitted(.init(requestId: batch.requestId, ids: ids, existing: existing)))
                scheduleSoon()
            } catch {
                deliver(session.connection, .error(.init(code: error.code, reason: error.description, requestId: batch.requestId)))
            }
        case .logs(let request):
            guard let info = try? state.task(request.id) else {
                deliver(session.connection, .error(.init(code: .unknownTask, reason: SchedulerError.unknownTask(request.id).description, requestId: request.requestId)))
                return
            }
            guard request.follow && !info.state.isTerminal else { return wholeLog(request, info, session: session) }
            // Followed live: what is kept here, then each piece as it comes, until the end.
            deliver(session.connection, .logChunk(.init(requestId: request.requestId, id: request.id,
                                                    data: logs.text(id: request.id), done: false)))
            followers[request.id, default: []].append((session, request.requestId))
        default:
            session.connection.refuse(.unexpected, "a client may not send '\(message.type)'", requestId: message.requestId)
        }
    }

    // MARK: Directives and time

    private func execute(_ directives: [SchedulerDirective]) {
        for directive in directives {
            switch directive {
            case let .assign(node, task):
                toWorker(node, .assign(.init(task: task)))
            case let .ackResult(node, run):
                toWorker(node, .resultAck(.init(id: run.id, attempt: run.attempt)))
            case let .kill(node, run, reason):
                logger.notice("telling \(node) to kill attempt \(run.attempt) of task \(run.id): \(reason)")
                toWorker(node, .kill(.init(id: run.id, attempt: run.attempt, reason: reason)))
            case .taskEnded(let id):
                if store != nil {
                    let text = logs.text(id: id)
                    if !text.isEmpty { pendingLogs[id] = text }
                    logs.remove(id: id)
                }
                if let list = followers.removeValue(forKey: id), let info = try? state.task(id) {
                    for follower in list {
                        deliver(follower.session.connection, .logChunk(.init(requestId: follower.requestId, id: id, data: "", done: true, state: info.state)))
                    }
                }
                for waiter in waiters.taskEnded(id) {
                    let infos = waitReply(waiter.ids)
                    deliver(waiter.session.connection, .waitResult(.init(requestId: waiter.requestId, tasks: infos)))
                }
            case .nodeLost(let name):
                logger.warning("worker \(name) lost: no heartbeat for longer than it may stay silent (at least \(config.settings.lostAfterMs) ms)")
                if let session = workers[name] {
                    workers[name] = nil
                    session.connection.close(reason: "worker lost")
                }
            }
        }
    }

    /// A task with why it waits, when it is queued.
    private func taskInfo(_ id: String) throws(SchedulerError) -> TaskInfo {
        var info = try state.task(id)
        if info.state == .queued, let why = state.waitReason(for: id) {
            info.waitReason = why.reason
            info.unplaceable = why.unplaceable
        }
        return info
    }

    private func withWaitReasons(_ infos: [TaskInfo]) -> [TaskInfo] {
        let queued = infos.filter { $0.state == .queued }.map(\.id)
        guard !queued.isEmpty else { return infos }
        let reasons = state.waitReasons(for: queued)
        return infos.map { info in
            guard let why = reasons[info.id] else { return info }
            var info = info
            info.waitReason = why.reason
            info.unplaceable = why.unplaceable
            return info
        }
    }

    /// The tasks a `wait` asked for. Output tails ride along only for a single task: a wait on
    /// thousands of tasks must not become a frame of thousands of 64 KiB tails.
    private func waitReply(_ ids: [String]) -> [TaskInfo] {
        ids.compactMap { id in
            guard var info = try? state.task(id) else { return nil }
            if ids.count > 1 { info.output = nil }
            return info
        }
    }

    /// Placement runs once per loop iteration, after all messages read in it are applied.
    private func scheduleSoon() {
        scheduleRequested = true
        endOfTurnSoon()
    }

    /// Runs `endOfTurn` once, after all messages read in this loop iteration are applied.
    func endOfTurnSoon() {
        guard !scheduleQueued, let scheduleTimer else { return }
        scheduleQueued = true
        scheduleTimer.start(afterMs: 0) { [weak self] in
            guard let self else { return }
            self.scheduleQueued = false
            self.endOfTurn()
        }
    }

    /// Group commit: places queued tasks, puts every change of this turn on disk in one
    /// transaction, and only then sends the turn's messages. So a `submitted`, an `assign`, a
    /// `resultAck` or a wait's answer never gets ahead of the state it reports.
    private func endOfTurn() {
        if scheduleRequested {
            scheduleRequested = false
            execute(state.schedule(nowMs: now()))
        }
        guard persist() else { return }
        let batch = outgoing
        outgoing = []
        for (connection, message) in batch { connection.send(message) }
    }

    private func toWorker(_ node: String, _ message: Message) {
        if let connection = workers[node]?.connection { deliver(connection, message) }
    }

    private func tick() {
        let nowMs = loop.nowMs
        // A tick far later than planned means this process was stalled: what the workers sent
        // meanwhile is still unread, so no worker is judged on that gap.
        let gap = nowMs - lastTickLoopMs
        lastTickLoopMs = nowMs
        if gap > 3 * tickPeriodMs {
            logger.warning("scheduler was stalled for \(gap) ms; not counting it against the workers")
            state.forgiveStall(nowMs: now())
        }
        for session in sessions.values where session.hello == nil && nowMs - session.acceptedAtMs > config.handshakeTimeoutMs {
            session.connection.refuse(.handshakeRequired, "no completed handshake within \(config.handshakeTimeoutMs) ms")
        }
        let directives = state.tick(nowMs: now())
        if !directives.isEmpty {
            execute(directives)
            scheduleSoon()
        }
        if state.hasChanges { endOfTurnSoon() }
    }
}

/// One accepted connection and what we know of its peer.
final class PeerSession {
    let connection: FramedConnection
    var handshake: ServerHandshake
    var hello: Message.Hello?
    /// Set once a worker has registered.
    var nodeName: String?
    /// Loop time (monotonic ms) of the accept, for the handshake deadline.
    let acceptedAtMs: UInt64

    init(connection: FramedConnection, handshake: ServerHandshake, acceptedAtMs: UInt64) {
        self.connection = connection
        self.handshake = handshake
        self.acceptedAtMs = acceptedAtMs
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension SchedulerServer: Sendable {}
