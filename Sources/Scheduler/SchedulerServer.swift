import Dispatch
import Logging
import SwarmDashboard
import SwarmHTTP
import SwarmProtocol
import SwarmTransport
import SwarmUV

/// The scheduler's shell: accepts connections, runs handshakes, feeds `ClusterState`, and
/// carries out its directives. Create, start and use on its loop's thread.
public final class SchedulerServer {
    let loop: EventLoop
    let config: SchedulerConfig
    let logger: Logger
    /// `monotonic` for liveness and every timer, `wall` only to date tasks and runs.
    let clocks: Clocks
    var state: ClusterState
    /// `config.settings` as the cluster state runs with them (`inMemoryFinished` set when durable).
    let settings: SchedulerSettings
    /// Blobs held and in transfer (SchedulerServer+Blobs.swift).
    let blobState = BlobServerState()
    private var listener: UVTCP?
    /// TLS for every connection (token or certificate mode), or nil: plaintext (loopback, no token).
    private var tlsContext: TLSContext?
    private var tickTimer: UVTimer?
    var scheduleTimer: UVTimer?
    var scheduleQueued = false
    var scheduleRequested = false
    /// Runs the next placement slice after a poll (`continueAfterPoll`).
    var continuer: UVIdle?
    var skipContinuation = false
    var inContinuation = false
    var continuationArmed = false
    /// In `endOfTurn`, and whether something asked for a turn meanwhile (`endOfTurnSoon`).
    var inTurn = false
    var askedDuringTurn = false
    /// Runs a placement round when the first retry backoff ends (SchedulerServer+Retries.swift).
    var retryTimer: UVTimer?
    var retryTimerDueMs: Int64?
    /// Retention steps and `swarm gc` requests in progress (SchedulerServer+Retention.swift).
    var retentionTimer: UVTimer?
    var gcJobs: [GcJob] = []
    /// Tree cancels under way, oldest first (SchedulerServer+TreeCancel.swift).
    var treeCancels: [TreeCancelRun] = []
    /// The durable state; nil when `config.durable` is off.
    var store: TaskStore?
    /// Messages of this loop turn, sent once its changes are on disk (see `endOfTurn`).
    var outgoing: [(FramedConnection, Message)] = []
    /// Turns written to the store and waiting for their sync (SchedulerServer+Durability.swift).
    var commits = GroupCommit<HeldTurn>(durable: 0)
    /// Time spent writing changes not yet covered by a sync (for `swarm_state_commit_seconds`).
    var unsyncedWriteTime: Duration = .zero
    /// Signalled when the checkpoint of the store's WAL running on another thread ends; nil
    /// when none runs (`checkpointIfDue`).
    var checkpointDone: DispatchSemaphore?
    var sessions: [ObjectIdentifier: PeerSession] = [:]
    /// The same sessions by their connection (what `outgoing` names).
    var sessionsByConnection: [ObjectIdentifier: PeerSession] = [:]
    /// Established worker sessions by node name.
    var workers: [String: PeerSession] = [:]
    var waiters = WaiterTable()
    var logs = LogStore()
    /// `swarm logs` read from the workers' log files (SchedulerServer+Logs.swift).
    var logRelays = LogRelays<ObjectIdentifier>()
    /// Each worker's process figures from its last heartbeat, for `swarm stats`.
    var workerUsage: [String: ProcessUsage] = [:]
    /// Logs of tasks that ended this turn, saved with its changes (then dropped from memory).
    var pendingLogs: [String: String] = [:]
    /// `swarm logs -f` clients, by task id.
    var followers: [String: [(session: PeerSession, requestId: Int)]] = [:]
    /// Sessions holding a task's credential, by task id: closed when the task ends.
    var taskSessions: [String: [ObjectIdentifier: PeerSession]] = [:]
    /// Client sessions with replies piling up (see `enforceQueueCaps`).
    var backlogged: [ObjectIdentifier: PeerSession] = [:]
    /// Clients dropped for leaving too much unread, until their connection ends.
    var dropped: [ObjectIdentifier: PeerSession] = [:]
    /// Connections to close once this turn's messages are sent to them.
    var closingAtEndOfTurn: [(FramedConnection, String)] = []
    private var admission: HandshakeAdmission<ObjectIdentifier>
    /// Connections still in their handshake.
    var pendingHandshakes: Int { admission.pendingCount }
    private var logLimiter = LogLimiter()
    private var tickPeriodMs: UInt64 = 500
    private var lastTickLoopMs: UInt64 = 0
    public private(set) var address: SocketAddress?
    /// Prometheus metrics (SchedulerServer+Metrics.swift) and the HTTP listener serving them.
    let metrics = SchedulerMetrics()
    var http: HTTPServer?
    /// The dashboard's log streams and its history of ended tasks (SchedulerServer+Dashboard.swift).
    let dashboardStreams = LogStreams<HTTPStream>()
    var dashboardLedger = DashboardLedger()
    /// Where `/metrics` is served (nil: no `--http-listen`).
    public internal(set) var httpAddress: SocketAddress?
    /// The HTTPS listener's certificate and fingerprint, for the start line (nil: plain HTTP).
    public internal(set) var httpsNote: String?
    /// Bytes of connections that have ended, for `swarm_received_bytes_total` and `_sent_`.
    var endedConnectionBytes: (received: Int, sent: Int) = (0, 0)
    /// The state could not be saved: the scheduler has stopped (a restart continues from what
    /// is on disk). Called on the loop thread.
    public var onFatal: ((String) -> Void)?

    public init(loop: EventLoop, config: SchedulerConfig, logger: Logger, clocks: Clocks = .system) {
        self.loop = loop
        self.config = config
        self.logger = logger
        self.clocks = clocks
        var settings = config.settings
        // Finished tasks leave memory only where the store keeps them.
        settings.inMemoryFinished = config.durable ? config.retention.inMemoryFinished : nil
        self.settings = settings
        self.state = ClusterState(settings: settings)
        var limits = HandshakeAdmission<ObjectIdentifier>.Limits()
        limits.maxPending = config.maxPendingHandshakes
        limits.maxPerAddress = config.maxPendingHandshakesPerAddress
        limits.pressureAt = config.handshakePressureAt
        limits.deadlineMs = config.handshakeTimeoutMs
        limits.pressureDeadlineMs = min(config.pressureHandshakeTimeoutMs, config.handshakeTimeoutMs)
        limits.promptMs = min(limits.promptMs, limits.pressureDeadlineMs)
        self.admission = HandshakeAdmission(limits: limits)
    }

    /// Binds and listens; returns the real address (port 0 picks a free one).
    @discardableResult
    public func start() throws(SchedulerStartError) -> SocketAddress {
        let display = config.host.contains(":") ? "[\(config.host)]:\(config.port)" : "\(config.host):\(config.port)"
        let address: SocketAddress
        do { address = try SocketAddress(host: config.host, port: config.port) } catch {
            throw .badAddress(display)
        }
        if let problem = config.tokenRing.problem { throw .tokens(problem) }
        if TLSContext.enabled(token: config.token, files: config.tls) {
            let ring = config.tokenRing
            // The cluster token first: it also answers `task:ID` identities.
            let tokens = [ring.cluster, ring.worker, ring.submit, ring.read].compactMap { $0 }
            do { tlsContext = try TLSContext(serverTokens: tokens, files: config.tls) } catch {
                throw .tls(error.description)
            }
        }
        if config.token == nil && config.tls == nil && !address.isLoopback {
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
        do { try openBlobs() } catch {
            store?.close()
            store = nil
            throw .blobs(error.description)
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
            closeBlobs()
            throw .bind(display, error)
        }
        let tick = try! UVTimer(loop: loop)
        let period = UInt64(max(50, min(500, config.settings.lostAfterMs / 4)))
        tickPeriodMs = period
        lastTickLoopMs = loop.nowMs
        tick.start(afterMs: period, repeatMs: period) { [weak self] in self?.tick() }
        tickTimer = tick
        scheduleTimer = try! UVTimer(loop: loop)
        continuer = try? UVIdle(loop: loop)
        retryTimer = try! UVTimer(loop: loop)
        // Tree cancels a restart resumed (`openState`): their slices go on from the first turn.
        if !treeCancels.isEmpty { continueAfterPoll() }
        startRetention()
        metrics.countSubmissions(from: state.nextSequence)
        do { try startHTTP() } catch {
            stop()
            throw error
        }
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
        commits.dropAll()
        listener?.close(); listener = nil
        dashboardStreams.finishAll()
        http?.stop(); http = nil
        tickTimer?.close(); tickTimer = nil
        scheduleTimer?.close(); scheduleTimer = nil
        continuer?.close(); continuer = nil
        retryTimer?.close(); retryTimer = nil
        retentionTimer?.close(); retentionTimer = nil
        for session in sessions.values { session.connection.close(reason: "scheduler stopping") }
        sessions = [:]
        workers = [:]
        closeBlobs()
    }

    // MARK: Connections

    private func accept(_ error: UVError?) {
        guard let listener else { return }
        if let error {
            logger.warning("accept failed: \(error)")
            return
        }
        guard let tcp = try? listener.accept() else { return }
        let tls: TLSSession?
        do { tls = try tlsContext.map { try TLSSession(context: $0) } } catch {
            logger.warning("cannot start TLS for \((try? tcp.peerAddress().description) ?? "?"): \(error)")
            tcp.close()
            return
        }
        let connection = FramedConnection(tcp: tcp, maxFrame: config.maxHandshakeFrame, tls: tls)
        // A stranger gets a hello's worth of work per turn, and nothing built for it while
        // it does not read.
        connection.maxMessagesPerTurn = 4
        connection.pauseReadingAbove = config.clientLimits.pauseReadingAbove
        connection.resumeReadingBelow = config.clientLimits.resumeReadingBelow
        let session = PeerSession(connection: connection,
                                  handshake: ServerHandshake(ring: config.tokenRing, serverName: config.name),
                                  acceptedAtMs: loop.nowMs,
                                  address: (try? tcp.peerAddress().host) ?? connection.peer)
        let key = ObjectIdentifier(session)
        switch admission.accept(key, address: session.address, nowMs: loop.nowMs) {
        case .refuse(let reason):
            peerLog(session, .warning, "refusing \(connection.peer): \(reason)")
            connection.refuse(.unexpected, reason)
            return
        case .admitEvicting(let old):
            if let evicted = sessions[old] {
                peerLog(evicted, .notice, "closing \(evicted.connection.peer): its handshake is not done after \(loop.nowMs - evicted.acceptedAtMs) ms and a newcomer needs the slot")
                evicted.connection.refuse(.handshakeRequired, "handshake not done in time: its slot went to a newer connection")
            }
        case .admit:
            break
        }
        sessions[key] = session
        sessionsByConnection[ObjectIdentifier(connection)] = session
        session.connection.onMessage = { [weak self, unowned session] message in
            self?.received(message, from: session)
        }
        session.connection.onEnd = { [weak self, unowned session] end in
            self?.ended(session, end)
        }
        session.connection.start()
    }

    private func ended(_ session: PeerSession, _ end: ConnectionEnd) {
        let key = ObjectIdentifier(session)
        sessions[key] = nil
        sessionsByConnection[ObjectIdentifier(session.connection)] = nil
        admission.finished(key)
        backlogged[key] = nil
        dropped[key] = nil
        endedConnectionBytes.received += session.connection.bytesReceived
        endedConnectionBytes.sent += session.connection.bytesSent
        if case .task(let id)? = session.identity { taskSessions[id]?[key] = nil }
        waiters.removeAll(for: session)
        logRelays.clientGone(ObjectIdentifier(session))
        blobSessionEnded(session)
        for (id, list) in followers {
            let kept = list.filter { $0.session !== session }
            followers[id] = kept.isEmpty ? nil : kept
        }
        if let node = session.nodeName, workers[node] === session {
            workers[node] = nil
            logger.notice("worker \(PeerText.safe(node)) disconnected: \(end)")
            runRelays(logRelays.workerGone(node))
            execute(state.disconnected(node: node, at: clocks.wall()))
            scheduleSoon()
        } else if case .protocolError(let reason) = end {
            peerLog(session, .notice, "closed connection from \(session.connection.peer): \(PeerText.safe(reason, limit: 400))")
        }
    }

    private func received(_ message: Message, from session: PeerSession) {
        guard let hello = session.hello else {
            for directive in session.handshake.receive(message, admit: { self.credentialProblem($0) }) {
                switch directive {
                case .send(let reply): session.connection.send(reply)
                case .close:
                    session.connection.closeAfterFlush(.protocolError("handshake failed"))
                case .established(let hello):
                    established(session, hello)
                case .failed(let reason):
                    peerLog(session, .notice, "handshake with \(session.connection.peer) failed: \(PeerText.safe(reason, limit: 400))")
                }
            }
            return
        }
        if receivedBlobMessage(message, session: session) { return }
        switch hello.role {
        case .worker: receivedFromWorker(message, session: session, name: hello.name)
        case .client: receivedFromClient(message, session: session)
        }
    }

    private func established(_ session: PeerSession, _ hello: Message.Hello) {
        session.hello = hello
        let key = ObjectIdentifier(session)
        admission.finished(key)
        session.connection.maxFrame = config.maxFrame
        switch hello.role {
        case .worker:
            // A worker's messages are the cluster's heartbeat: never held back.
            session.connection.maxMessagesPerTurn = .max
            session.connection.pauseReadingAbove = nil
        case .client:
            session.connection.maxMessagesPerTurn = config.clientLimits.messagesPerTurn
            session.connection.maxQueuedBytes = config.clientLimits.maxQueuedPerClient
            let identity = ClientIdentity(name: hello.name, scope: session.handshake.scope)
            session.identity = identity
            if case .task(let id) = identity { taskSessions[id, default: [:]][key] = session }
        }
    }

    /// Why a peer may not be welcomed although it proved its key: a task's credential is
    /// valid only while its task has not ended.
    private func credentialProblem(_ hello: Message.Hello) -> String? {
        guard hello.role == .client, case .task(let id) = ClientIdentity(name: hello.name) else { return nil }
        guard let info = try? state.task(id, archive: archive) else { return "task '\(PeerText.safe(id))' is unknown: its credential is not valid" }
        guard !info.state.isTerminal else {
            return "task '\(PeerText.safe(id))' has ended (\(info.state.rawValue)): its credential is no longer valid"
        }
        return nil
    }

    /// Logs a line a peer caused, within that peer's budget and (before its handshake) the
    /// budget all strangers share; the next line logged says how many were dropped.
    func peerLog(_ session: PeerSession, _ level: Logger.Level, _ line: @autoclosure () -> String) {
        switch logLimiter.allow(peer: session.address, beforeHandshake: session.hello == nil, nowMs: loop.nowMs) {
        case .drop: return
        case .log(let dropped):
            let note = dropped > 0 ? " (\(dropped) earlier lines caused by \(session.address) were not logged)" : ""
            logger.log(level: level, "\(line())\(note)")
        }
    }

    private func tick() {
        let nowMs = loop.nowMs
        // A tick far later than planned means this process was stalled: what the workers sent
        // meanwhile is still unread, so no worker is judged on that gap.
        let gap = nowMs - lastTickLoopMs
        lastTickLoopMs = nowMs
        if gap > 3 * tickPeriodMs {
            logger.warning("scheduler was stalled for \(gap) ms; not counting it against the workers")
            state.forgiveStall(nowMs: clocks.monotonic())
        }
        let deadline = admission.deadlineMs
        for key in admission.expired(nowMs: nowMs) {
            sessions[key]?.connection.refuse(.handshakeRequired, "no completed handshake within \(deadline) ms")
        }
        closeDroppedClients(nowMs: nowMs)
        runRelays(logRelays.expire(nowMs: nowMs))
        heardFromWorkers()
        let directives = state.tick(nowMs: clocks.monotonic(), at: clocks.wall())
        if !directives.isEmpty {
            execute(directives)
            scheduleSoon()
        }
        if state.hasChanges { endOfTurnSoon() }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension SchedulerServer: Sendable {}
