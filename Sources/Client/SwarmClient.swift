import SwarmProtocol
import SwarmTransport
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// What can go wrong talking to the scheduler, phrased for the one line a CLI prints.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    case badAddress(String)
    case unreachable(String, UVError)
    case handshake(String)
    case server(ErrorCode, String)
    case timeout(String)
    /// `wait` ran out of time (the tasks go on).
    case waitTimedOut(String)
    case connectionLost(String)

    public var description: String {
        switch self {
        case .badAddress(let a): "invalid scheduler address '\(a)' (want HOST:PORT)"
        case let .unreachable(a, e): "cannot reach scheduler at \(a): \(e.message)"
        case .handshake(let r): "scheduler refused the connection: \(r)"
        case .server(_, let r): r
        case .timeout(let what), .waitTimedOut(let what): "timed out \(what)"
        case .connectionLost(let r): "connection to scheduler lost: \(r)"
        }
    }
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6).
public func parseHostPort(_ text: String) -> (host: String, port: Int)? {
    var host: Substring
    let portText: Substring
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
        host = text[text.index(after: text.startIndex)..<close]
        portText = text[text.index(close, offsetBy: 2)...]
    } else {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        host = text[..<colon]
        portText = text[text.index(after: colon)...]
    }
    guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
    if host == "*" { host = "0.0.0.0" }
    return (String(host), port)
}

/// A blocking client for CLIs and tests: each call runs its own event loop on the calling
/// thread until the answer arrives. One connection serves every call of one client. Not
/// thread-safe: use one client per thread.
public final class SwarmClient {
    public let address: String
    private let host: String
    private let port: Int
    private let token: ClusterToken?
    private let name: String
    /// Certificate mode's files; without them a token means TLS with a PSK from it.
    private let tlsFiles: TLSCertificateFiles?
    private var tlsContext: TLSContext?
    private let loop = EventLoop()
    var connection: FramedConnection?
    private var handshake: ClientHandshake?
    /// The optional requests the scheduler announced (`Message.Welcome.features`): a request
    /// outside them would end the connection on a scheduler that predates it.
    public private(set) var serverFeatures: Set<String> = []
    var nextRequestId = 1
    private var replies: [Int: Message] = [:]
    /// Requests answered by many frames (`logs`): what arrived and is not consumed yet.
    var streams: [Int: [Message]] = [:]
    private var failure: ClientError?
    private var established = false
    /// Called every `whileWaitingEveryMs` while a call waits for the scheduler (a task may stay
    /// quiet for hours under `logs -f`): the CLI checks there that its reader is still there.
    public var whileWaiting: (() -> Void)?
    public var whileWaitingEveryMs: UInt64 = 250

    /// `tls`: certificate mode (`--tls-cert`, `--tls-key`, `--tls-ca`). Without it, a token
    /// means TLS 1.3 with a PSK from the token, and no token plaintext (a loopback scheduler).
    public init(address: String, token: ClusterToken?, name: String = "client",
                tls: TLSCertificateFiles? = nil) throws(ClientError) {
        guard let (host, port) = parseHostPort(address) else { throw .badAddress(address) }
        self.address = address
        self.host = host
        self.port = port
        self.token = token
        self.name = name
        self.tlsFiles = tls
    }

    /// How long the TLS handshake of the current connection took (nil: plaintext or not done).
    public var tlsHandshakeNs: UInt64? { connection?.tls?.handshakeNs }

    deinit {
        connection?.onEnd = nil
        connection?.onMessage = nil
        connection?.close(reason: "client done")
        connection = nil
        while loop.runNoWait() {}
        try? loop.close()
    }

    // MARK: Requests

    public func submit(_ spec: TaskSpec) throws(ClientError) -> String {
        guard case .submitted(let reply) = try request({ .submit(.init(requestId: $0, task: spec)) }) else {
            throw .server(.unexpected, "unexpected reply to submit")
        }
        return reply.id
    }

    /// Submits many tasks pipelined on one connection; one result per spec, in order.
    public func submitMany(_ specs: [TaskSpec]) throws(ClientError) -> [Result<String, ClientError>] {
        let replies = try requestMany(count: specs.count) { .submit(.init(requestId: $1, task: specs[$0])) }
        return replies.map { reply in
            switch reply {
            case .submitted(let s): .success(s.id)
            case .error(let e): .failure(.server(e.code, e.reason))
            default: .failure(.server(.unexpected, "unexpected reply to submit"))
            }
        }
    }

    public func status(_ id: String) throws(ClientError) -> TaskInfo {
        guard case .taskInfo(let reply) = try request({ .status(.init(requestId: $0, id: id)) }) else {
            throw .server(.unexpected, "unexpected reply to status")
        }
        return reply.task
    }

    /// Waits until every task has ended; nil timeout waits for ever. One result per task, in
    /// the order first named (a repeated id counts once). Many tasks come back as summaries
    /// (`WaitSummary`: `output` null, long text cut). A list over `WaitSummary.maxIds` goes in
    /// several requests, one after the other (so at most one large reply is on its way), each
    /// naming at least two tasks, all within the one timeout.
    public func wait(_ ids: [String], timeoutSeconds: Double? = nil) throws(ClientError) -> [TaskInfo] {
        var seen = Set<String>()
        let ids = ids.filter { seen.insert($0).inserted }
        let what = "waiting for \(ids.count == 1 ? ids[0] : "\(ids.count) tasks")"
        let deadline = timeoutSeconds.map { monotonicMillis() + Bounds.int64(min(max($0, 0), 1e9) * 1000) }
        var infos: [TaskInfo] = []
        infos.reserveCapacity(ids.count)
        for part in Self.waitParts(ids.count) {
            let left = deadline.map { Double(max($0 - monotonicMillis(), 0)) / 1000 }
            let reply: Message
            do {
                reply = try request({ .wait(.init(requestId: $0, ids: Array(ids[part]))) }, timeoutSeconds: left, what: what)
            } catch .timeout {
                throw .waitTimedOut(what)
            }
            guard case .waitResult(let result) = reply else { throw .server(.unexpected, "unexpected reply to wait") }
            infos += result.tasks
        }
        return infos
    }

    /// `count` ids cut into parts of at most `WaitSummary.maxIds`, as even as can be (so no
    /// part of a multi-task wait names one task, which would come back whole).
    public static func waitParts(_ count: Int, maxIds: Int = WaitSummary.maxIds) -> [Range<Int>] {
        let parts = max(1, (count + maxIds - 1) / maxIds)
        return (0..<parts).map { i in (count * i / parts)..<(count * (i + 1) / parts) }
    }

    /// Every task the scheduler lets this client see, in submission order: the listing comes
    /// in pages (each fits a frame), fetched one after the other.
    public func listTasks() throws(ClientError) -> [TaskInfo] {
        try listTasks(filter: nil).tasks
    }

    /// The tasks `filter` matches (nil: all) that this client may see, in submission order,
    /// starting after task `after` (nil: from the first), at most `limit` (nil: all). `more`:
    /// the listing stopped at `limit` with tasks left to look at (some may not match); the
    /// next call starts after the last task returned.
    public func listTasks(filter: TaskFilter?, after start: String? = nil, limit: Int? = nil) throws(ClientError) -> (tasks: [TaskInfo], more: Bool) {
        var all: [TaskInfo] = []
        var after = start
        var seen = Set<String>()
        while true {
            let remaining = limit.map { max(0, $0 - all.count) }
            if remaining == 0 { return (all, true) }
            let page = try listTasksPage(after: after, limit: remaining, filter: filter)
            all += page.tasks
            guard let next = page.next else { return (all, false) }
            if let limit, all.count >= limit { return (Array(all.prefix(limit)), true) }
            // A cursor seen before would loop for ever: the scheduler must move on.
            guard seen.insert(next).inserted else { throw .server(.unexpected, "the task listing did not advance past '\(next)'") }
            after = next
        }
    }

    /// One page of the listing: the tasks after task `after` (nil: from the first), at most
    /// `limit` (nil: the scheduler's page size), and the `after` of the next page (nil: last).
    public func listTasksPage(after: String?, limit: Int? = nil, filter: TaskFilter? = nil) throws(ClientError) -> (tasks: [TaskInfo], next: String?) {
        guard case .taskList(let reply) = try request({ .listTasks(.init(requestId: $0, after: after, limit: limit, filter: filter)) }) else {
            throw .server(.unexpected, "unexpected reply to tasks")
        }
        return (reply.tasks, reply.next)
    }

    public func listNodes() throws(ClientError) -> [NodeInfo] {
        guard case .nodeList(let reply) = try request({ .listNodes(.init(requestId: $0)) }) else {
            throw .server(.unexpected, "unexpected reply to nodes")
        }
        return reply.nodes
    }

    /// Cancels a task (`cancel` -> `taskInfo`): a queued task ends `cancelled` at once, a
    /// running one is killed (its state may still read `running` in the reply). A task that
    /// had already ended is left as it is: the reply shows its final state. An unknown id
    /// comes back as `ClientError.server(.unknownTask, ...)`.
    public func cancel(_ id: String) throws(ClientError) -> TaskInfo {
        guard case .taskInfo(let reply) = try request({ .cancel(.init(requestId: $0, id: id)) }) else {
            throw .server(.unexpected, "unexpected reply to cancel")
        }
        return reply.task
    }

    /// Submits finished task `id`'s spec again as a new task (`rerun` -> `submitted`); returns
    /// the new task's id (`newId`, or `ID.rN`).
    public func rerun(_ id: String, newId: String? = nil) throws(ClientError) -> String {
        guard case .submitted(let reply) = try request({ .rerun(.init(requestId: $0, id: id, newId: newId)) }) else {
            throw .server(.unexpected, "unexpected reply to rerun")
        }
        return reply.id
    }

    /// Applies the scheduler's retention now (`gc` -> `gcResult`): finished tasks past its
    /// limits, and those finished more than `olderThanSeconds` ago, are deleted with their
    /// runs, logs and blobs no kept task names. Returns what was removed.
    public func gc(olderThanSeconds: Double? = nil) throws(ClientError) -> Message.GcResult {
        // No timeout: a large deletion takes as many small steps as it needs (the scheduler
        // keeps serving meanwhile); a lost connection is still an error.
        guard case .gcResult(let reply) = try request({ .gc(.init(requestId: $0, olderThanSeconds: olderThanSeconds)) },
                                                      timeoutSeconds: nil, what: "waiting for gc") else {
            throw .server(.unexpected, "unexpected reply to gc")
        }
        return reply
    }

    /// Counters per worker and cluster-wide (`stats` -> `statsReply`).
    public func stats() throws(ClientError) -> Message.StatsReply {
        guard case .statsReply(let reply) = try request({ .stats(.init(requestId: $0)) }) else {
            throw .server(.unexpected, "unexpected reply to stats")
        }
        return reply
    }

    /// Submits every spec in one request (`submitBatch` -> `batchSubmitted`): the scheduler
    /// accepts all or none. `ids` has every task's id in order; `existing` those that were
    /// there already with the same spec (not submitted again).
    /// A batch is one frame: over the frame limit it is refused here, before anything is sent.
    public func submitBatch(_ specs: [TaskSpec]) throws(ClientError) -> (ids: [String], existing: [String]) {
        if let problem = Bounds.batchDependencyProblem(specs) { throw .server(.invalidTask, problem) }
        // Quick bound first; only a batch near the limit is encoded to be measured.
        if specs.reduce(0, { $0 + FrameBudget.admissionSize(of: $1) }) > Frame.defaultMaxPayload - 1024 {
            let size = MessageCodec.encode(.submitBatch(.init(requestId: Int.max, tasks: specs))).count
            if size > Frame.defaultMaxPayload {
                throw .server(.invalidTask, "the batch of \(specs.count) tasks is \(size) bytes as one frame; the limit is \(Frame.defaultMaxPayload): split it into smaller batches")
            }
        }
        let reply = try request({ .submitBatch(.init(requestId: $0, tasks: specs)) }, timeoutSeconds: 300,
                                what: "submitting \(specs.count) tasks")
        guard case .batchSubmitted(let result) = reply else { throw .server(.unexpected, "unexpected reply to submitBatch") }
        return (result.ids, result.existing)
    }

    /// Tells the scheduler to place nothing more on `node` (`drain` -> `nodeList`); what runs
    /// there finishes. Returns every node, the drained one `draining`.
    public func drain(node: String) throws(ClientError) -> [NodeInfo] {
        guard case .nodeList(let reply) = try request({ .drain(.init(requestId: $0, name: node)) }) else {
            throw .server(.unexpected, "unexpected reply to drain")
        }
        return reply.nodes
    }

    /// Undoes `drain` (`undrain` -> `nodeList`): placements on `node` again. Returns every node.
    public func undrain(node: String) throws(ClientError) -> [NodeInfo] {
        guard case .nodeList(let reply) = try request({ .undrain(.init(requestId: $0, name: node)) }) else {
            throw .server(.unexpected, "unexpected reply to undrain")
        }
        return reply.nodes
    }

    /// A task's log text (`logs` -> `logChunk`s with the request's id): the `data` of each
    /// chunk, as it arrives (see `logChunks`).
    public func logs(_ id: String, follow: Bool, onChunk: (String) -> Void) throws(ClientError) -> TaskState? {
        try logChunks(id, follow: follow) { chunk in if !chunk.data.isEmpty { onChunk(chunk.data) } }
    }

    /// A task's log (`logs` -> `logChunk`s with the request's id), each chunk handed to
    /// `onChunk` as it arrives (`LogView` renders them). Without `follow`, or for an ended
    /// task: the whole log (relayed from the worker's log file, or the scheduler's copy with a
    /// notice). With `follow`: then chunks until the task ends, however long it stays silent
    /// (no timeout; a lost connection is an error, and so is a path to the scheduler that went
    /// dead: `followKeepAlive`). Returns the task's state from the last chunk (`done`).
    public func logChunks(_ id: String, follow: Bool, onChunk: (Message.LogChunk) -> Void) throws(ClientError) -> TaskState? {
        try ensureConnected()
        if follow {
            let alive = Self.followKeepAlive
            connection?.tcp.setKeepAlive(idleSeconds: alive.idleSeconds, intervalSeconds: alive.intervalSeconds, probes: alive.probes)
        }
        let requestId = nextRequestId
        nextRequestId += 1
        streams[requestId] = []
        defer { streams[requestId] = nil }
        connection?.send(.logs(.init(requestId: requestId, id: id, follow: follow)))
        while true {
            try runUntil(timeoutSeconds: follow ? nil : 30, what: "waiting for the log of \(id)") {
                streams[requestId]?.isEmpty == false
            }
            let arrived = streams[requestId] ?? []
            streams[requestId] = []
            for message in arrived {
                switch message {
                case .logChunk(let chunk):
                    onChunk(chunk)
                    if chunk.done { return chunk.state }
                case .error(let e):
                    throw .server(e.code, e.reason)
                default:
                    throw .server(.unexpected, "unexpected reply to logs")
                }
            }
        }
    }

    /// A follow waits as long as its task stays silent, so it asks the kernel to check the
    /// path (TCP keepalive): a scheduler host that is gone, or a path cut without a word, ends
    /// the follow with an error after 15 s of silence plus 3 probes 5 s apart (about 30 s),
    /// where it used to wait forever. A scheduler that is alive answers the probes, stopped
    /// or busy as it may be, and costs a probe every 15 s of silence.
    public static let followKeepAlive: (idleSeconds: Int32, intervalSeconds: Int32, probes: Int32) = (15, 5, 3)

    // MARK: Machinery

    func request(_ make: (Int) -> Message, timeoutSeconds: Double? = 30,
                         what: String = "waiting for the scheduler") throws(ClientError) -> Message {
        let replies = try requestMany(count: 1, timeoutSeconds: timeoutSeconds, what: what) { make($1) }
        if case .error(let e) = replies[0] { throw .server(e.code, e.reason) }
        return replies[0]
    }

    /// Sends a request without waiting for its reply, for `whileWaiting` to ask something
    /// aside while another request waits on the same connection (a progress line's
    /// `states`). Returns its request id (nil when not connected); `takeReply` picks the reply
    /// up once it has come.
    public func sendAside(_ make: (Int) -> Message) -> Int? {
        guard let connection, established else { return nil }
        let id = nextRequestId
        nextRequestId += 1
        connection.send(make(id))
        return id
    }

    /// The reply to a `sendAside` request once it has come (then forgotten), else nil.
    public func takeReply(_ requestId: Int) -> Message? { replies.removeValue(forKey: requestId) }

    // For a long-lived user of one client (`Spool`): its loop, its health, a fresh start.

    /// The loop every call runs; handles of the same thread may join it.
    var eventLoop: EventLoop { loop }
    /// Whether the handshake is done and no failure has ended the connection.
    var isUsable: Bool { established && failure == nil }
    /// What ended the connection (sticky until `resetConnection`).
    var connectionFailure: ClientError? { failure }
    /// Whether any reply waits to be taken (`takeReply`).
    var hasReplies: Bool { !replies.isEmpty }

    /// Forgets the connection and its failure: the next request connects again. Replies not
    /// taken are dropped (their requests must be sent again).
    func resetConnection() {
        connection?.onEnd = nil
        connection?.onMessage = nil
        connection?.close(reason: "client reconnecting")
        connection = nil
        handshake = nil
        established = false
        failure = nil
        replies = [:]
        streams = [:]
    }

    /// Sends `count` requests (`make(index, requestId)`) at once, then collects the replies.
    private func requestMany(count: Int, timeoutSeconds: Double? = 60, what: String = "waiting for the scheduler",
                             _ make: (Int, Int) -> Message) throws(ClientError) -> [Message] {
        try ensureConnected()
        var ids: [Int] = []
        for index in 0..<count {
            let id = nextRequestId
            nextRequestId += 1
            ids.append(id)
            connection?.send(make(index, id))
        }
        try runUntil(timeoutSeconds: timeoutSeconds, what: what) { ids.allSatisfy { replies[$0] != nil } }
        return ids.map { replies.removeValue(forKey: $0)! }
    }

    /// Connects and completes the handshake now, when not yet done (a request otherwise does
    /// it first); throws what that request would.
    public func connect() throws(ClientError) { try ensureConnected() }

    func ensureConnected() throws(ClientError) {
        if let failure { throw failure }
        if established { return }
        let tcp: UVTCP
        do { tcp = try UVTCP(loop: loop) } catch { throw .unreachable(address, error) }
        var connectError: UVError?
        var connectDone = false
        tcp.connect(host: host, port: port) { error in
            connectError = error
            connectDone = true
        }
        try runUntil(timeoutSeconds: 10, what: "connecting to \(address)") { connectDone }
        if let connectError {
            tcp.close()
            throw .unreachable(address, connectError)
        }
        // Task replies fit the 16 MiB frame (listing pages, wait summaries, log chunks), but a
        // `nodes` or `stats` reply grows with the number of workers, unbounded so far: the
        // client, which only talks to its scheduler, accepts more.
        let tls: TLSSession?
        do { tls = try makeTLSSession() } catch {
            tcp.close()
            throw .handshake(error.description)
        }
        let connection = FramedConnection(tcp: tcp, maxFrame: 512 * 1024 * 1024, tls: tls)
        self.connection = connection
        var handshake = ClientHandshake(role: .client, name: name, token: token)
        let first = handshake.start()
        self.handshake = handshake
        connection.onMessage = { [unowned self] message in self.received(message) }
        connection.onEnd = { [unowned self] end in
            self.connection = nil
            if self.failure == nil { self.failure = .connectionLost("\(end)") }
        }
        connection.start()
        apply(first)
        try runUntil(timeoutSeconds: 10, what: "during the handshake with \(address)") { established }
    }

    private func makeTLSSession() throws(TLSError) -> TLSSession? {
        guard TLSContext.enabled(token: token, files: tlsFiles) else { return nil }
        if tlsContext == nil {
            tlsContext = try TLSContext(clientToken: token, role: .client, name: name, files: tlsFiles)
        }
        return try TLSSession(context: tlsContext!)
    }

    private func apply(_ directives: [HandshakeDirective]) {
        for directive in directives {
            switch directive {
            case .send(let m): connection?.send(m)
            case .close: connection?.close(reason: "handshake failed")
            case .established: established = true; handshake = nil
            case .failed(let reason): failure = .handshake(reason)
            }
        }
    }

    private func received(_ message: Message) {
        if handshake != nil {
            let directives = handshake!.receive(message)
            serverFeatures = handshake!.serverFeatures
            apply(directives)
            return
        }
        if let id = message.requestId {
            if streams[id] != nil { streams[id]!.append(message) } else { replies[id] = message }
        } else if case .error(let e) = message {
            failure = .server(e.code, e.reason)
        }
    }

    /// Runs the loop until `done()` or a failure or the timeout.
    func runUntil(timeoutSeconds: Double?, what: String, _ done: () -> Bool) throws(ClientError) {
        let deadline = timeoutSeconds.map { monotonicMillis() + Bounds.int64(min(max($0, 0), 1e9) * 1000) }
        var timedOut = false
        var timer: UVTimer?
        if let deadline {
            timer = try? UVTimer(loop: loop)
            timer?.start(afterMs: UInt64(max(0, deadline - monotonicMillis()))) { timedOut = true }
        }
        var watch: UVTimer?
        if let whileWaiting {
            watch = try? UVTimer(loop: loop)
            watch?.start(afterMs: whileWaitingEveryMs, repeatMs: whileWaitingEveryMs, whileWaiting)
        }
        defer { timer?.close(); watch?.close() }
        while !done() {
            if let failure { throw failure }
            if timedOut { throw .timeout(what) }
            loop.runOnce()
        }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension SwarmClient: Sendable {}
