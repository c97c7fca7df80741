import Foundation

/// Protocol version spoken by this build; `hello` carries it and a mismatch is refused.
public let protocolVersion = 1

/// Who opens a connection.
public enum PeerRole: String, Codable, Sendable {
    case worker
    case client
}

/// Every message on the wire: one JSON object with a `type` and the payload's fields beside
/// it, e.g. `{"type":"submit","requestId":1,"task":{...}}`. Field names are camelCase.
public enum Message: Sendable, Equatable {
    // Handshake (Handshake.swift drives it).
    case hello(Hello)
    case challenge(Challenge)
    case auth(Auth)
    case welcome(Welcome)
    case error(ErrorMessage)
    // Worker <-> scheduler.
    case register(Register)
    case registered(Registered)
    case heartbeat(Heartbeat)
    case assign(Assign)
    case taskStarted(TaskStarted)
    case taskFinished(TaskFinished)
    case resultAck(ResultAck)
    case reject(Reject)
    case kill(Kill)
    /// Scheduler -> worker: send a part of a task's log file (`logData` answers).
    case readLog(ReadLog)
    case leave(Leave)
    case health(HealthReport)
    case taskEvent(TaskEvent)
    case taskOutput(TaskOutput)
    /// A part of a task's log file, read for `swarm logs` (answers `readLog`).
    case logData(LogData)
    // Client -> scheduler, each answered with the same `requestId`.
    case submit(Submit)
    case status(TaskRef)
    case wait(Wait)
    case listTasks(ListTasks)
    case listNodes(RequestOnly)
    case cancel(TaskRef)
    case stats(RequestOnly)
    case logs(LogsRequest)
    case drain(NodeRef)
    /// `swarm undrain NODE`: placements on the node again (answered with `nodeList`).
    case undrain(NodeRef)
    case submitBatch(SubmitBatch)
    /// A finished task's spec submitted again as a new task (answered with `submitted`).
    case rerun(Rerun)
    /// `swarm gc`: apply retention now (answered with `gcResult`).
    case gc(Gc)
    /// `swarm cancel --recursive ID`: the task and every descendant (`TaskTree.swift`),
    /// answered with `treeCancelled`.
    case cancelTree(TaskRef)
    /// A page of a task tree (`TaskTree.swift`), answered with `taskTree`.
    case listTree(ListTree)
    /// The states of tasks a client waits for (`TaskStates.swift`), answered with `taskStates`.
    case states(States)
    // Scheduler -> client.
    case submitted(Submitted)
    case taskInfo(TaskInfoReply)
    case waitResult(TaskListReply)
    case taskList(TaskListReply)
    case nodeList(NodeListReply)
    case statsReply(StatsReply)
    case logChunk(LogChunk)
    case batchSubmitted(BatchSubmitted)
    case gcResult(GcResult)
    case taskTree(TaskTree)
    case treeCancelled(TreeCancelled)
    case taskStates(TaskStates)
    // Blobs (inputs, artifacts), either direction; see `Blob.swift`.
    case blobOffer(BlobOffer)
    case blobAccept(BlobAccept)
    case blobChunk(BlobChunk)
    case blobStored(BlobStored)
    case blobGet(BlobGet)

    public struct Hello: Codable, Sendable, Equatable {
        public var version: Int
        public var role: PeerRole
        public var name: String
        /// The peer's challenge to the server (servers prove the token too).
        public var nonce: String?
        public init(version: Int = protocolVersion, role: PeerRole, name: String, nonce: String? = nil) {
            self.version = version; self.role = role; self.name = name; self.nonce = nonce
        }
    }
    public struct Challenge: Codable, Sendable, Equatable {
        public var nonce: String
        public init(nonce: String) { self.nonce = nonce }
    }
    public struct Auth: Codable, Sendable, Equatable {
        public var mac: String
        public init(mac: String) { self.mac = mac }
    }
    public struct Welcome: Codable, Sendable, Equatable {
        public var version: Int
        public var server: String
        /// The server's proof over the peer's nonce, when a token is configured.
        public var mac: String?
        /// Optional requests this scheduler serves that came after its protocol version (nil
        /// from schedulers older than the field: none). A client sends such a request only when
        /// it is listed here: an unknown message type ends a connection.
        public var features: [String]?
        /// To a worker only: digests of the tokens that may read (cluster, submit, read), so its
        /// `/metrics` takes them as bearer tokens (`BearerDigests`). Nil from older schedulers,
        /// and without tokens: the worker then takes its own token only.
        public var readerDigests: [String]?
        /// What this build's scheduler announces: `states` (a wait's progress line).
        public static let serverFeatures = ["states"]
        public init(version: Int = protocolVersion, server: String, mac: String? = nil, features: [String]? = Welcome.serverFeatures,
                    readerDigests: [String]? = nil) {
            self.version = version; self.server = server; self.mac = mac; self.features = features
            self.readerDigests = readerDigests
        }
    }
    public struct ErrorMessage: Codable, Sendable, Equatable {
        public var code: ErrorCode
        public var reason: String
        public var requestId: Int?
        public init(code: ErrorCode, reason: String, requestId: Int? = nil) {
            self.code = code; self.reason = reason; self.requestId = requestId
        }
    }
    public struct Register: Codable, Sendable, Equatable {
        public var slots: Int
        public var labels: [String: String]
        /// Runs the worker has now (after a reconnect), still going or being killed.
        public var running: [RunRef]
        /// Runs whose results the worker holds, not yet acknowledged; sent right after.
        public var finished: [RunRef]
        /// The runtimes this worker runs and their health; nil: none.
        public var runtimes: [RuntimeStatus]?
        /// Whether plain commands may run here; nil: yes.
        public var allowsCommands: Bool?
        /// Slots its health probes hold right now.
        public var probing: Int?
        /// It holds assignments sent ahead (`TaskAssignment.prefetch`) until a slot frees, and
        /// drops them when its connection ends (they never started). Nil: none are sent to it.
        public var prefetch: Bool?
        public init(slots: Int, labels: [String: String], running: [RunRef], finished: [RunRef],
                    runtimes: [RuntimeStatus]? = nil, allowsCommands: Bool? = nil, probing: Int? = nil,
                    prefetch: Bool? = nil) {
            self.slots = slots; self.labels = labels; self.running = running; self.finished = finished
            self.runtimes = runtimes; self.allowsCommands = allowsCommands; self.probing = probing
            self.prefetch = prefetch
        }
    }
    /// A worker's runtimes changed health (sent on every change, not periodically).
    public struct HealthReport: Codable, Sendable, Equatable {
        public var runtimes: [RuntimeStatus]
        /// Slots held by health probes now (the scheduler places nothing in them).
        public var probing: Int?
        public init(runtimes: [RuntimeStatus], probing: Int? = nil) { self.runtimes = runtimes; self.probing = probing }
    }
    /// Something happened to a run that is not its end: `silence_warning`, `extended`.
    public struct TaskEvent: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        public var kind: String
        public var at: Int64
        public var detail: String
        public init(id: String, attempt: Int, kind: String, at: Int64, detail: String) {
            self.id = id; self.attempt = attempt; self.kind = kind; self.at = at; self.detail = detail
        }
    }
    /// A piece of a run's output, streamed to the scheduler as it arrives.
    public struct TaskOutput: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        /// `stdout` or `stderr`.
        public var stream: String
        public var data: String
        public var at: Int64
        public init(id: String, attempt: Int, stream: String, data: String, at: Int64) {
            self.id = id; self.attempt = attempt; self.stream = stream; self.data = data; self.at = at
        }
    }
    public struct LogsRequest: Codable, Sendable, Equatable {
        public var requestId: Int
        public var id: String
        /// Keep sending output as it comes until the task ends.
        public var follow: Bool
        public init(requestId: Int, id: String, follow: Bool) { self.requestId = requestId; self.id = id; self.follow = follow }
    }
    /// Log text of a task; many chunks, the last one with `done`.
    public struct LogChunk: Codable, Sendable, Equatable {
        public var requestId: Int
        public var id: String
        public var data: String
        public var done: Bool
        /// The task's state when `done`.
        public var state: TaskState?
        /// What `data` is (`LogChunkStream`): nil, output as the scheduler keeps it (stderr
        /// lines labelled `[stderr] `); `stdout`/`stderr`, that stream's output as it came;
        /// `log`, whole lines of the worker's log file (`TaskLogLine`).
        public var stream: String?
        /// A line for the person reading (e.g. that the rest of the log is no longer available).
        public var notice: String?
        public init(requestId: Int, id: String, data: String, done: Bool, state: TaskState? = nil,
                    stream: String? = nil, notice: String? = nil) {
            self.requestId = requestId; self.id = id; self.data = data; self.done = done; self.state = state
            self.stream = stream; self.notice = notice
        }
    }
    /// `swarm gc [--older-than S]`: delete now the finished tasks past the retention limits,
    /// and those finished more than `olderThanSeconds` ago (0 to 10^9).
    public struct Gc: Codable, Sendable, Equatable {
        public var requestId: Int
        public var olderThanSeconds: Double?
        public init(requestId: Int, olderThanSeconds: Double? = nil) { self.requestId = requestId; self.olderThanSeconds = olderThanSeconds }
    }
    /// What `gc` removed, and the database file's size before and after.
    public struct GcResult: Codable, Sendable, Equatable {
        public var requestId: Int
        public var tasks: Int
        public var runs: Int
        public var logs: Int
        public var blobs: Int
        public var blobBytes: Int64
        /// Finished tasks past the limits kept because tasks in flight still need them.
        public var kept: Int
        public var dbBytesBefore: Int64
        public var dbBytesAfter: Int64
        public init(requestId: Int, tasks: Int = 0, runs: Int = 0, logs: Int = 0, blobs: Int = 0, blobBytes: Int64 = 0,
                    kept: Int = 0, dbBytesBefore: Int64 = 0, dbBytesAfter: Int64 = 0) {
            self.requestId = requestId; self.tasks = tasks; self.runs = runs; self.logs = logs; self.blobs = blobs
            self.blobBytes = blobBytes; self.kept = kept; self.dbBytesBefore = dbBytesBefore; self.dbBytesAfter = dbBytesAfter
        }
    }
    /// `swarm rerun ID [--id NEW]`: `newId` nil gives `ID.rN`, N the first free.
    public struct Rerun: Codable, Sendable, Equatable {
        public var requestId: Int
        public var id: String
        public var newId: String?
        public init(requestId: Int, id: String, newId: String? = nil) { self.requestId = requestId; self.id = id; self.newId = newId }
    }
    public struct NodeRef: Codable, Sendable, Equatable {
        public var requestId: Int
        public var name: String
        public init(requestId: Int, name: String) { self.requestId = requestId; self.name = name }
    }
    public struct SubmitBatch: Codable, Sendable, Equatable {
        public var requestId: Int
        public var tasks: [TaskSpec]
        public init(requestId: Int, tasks: [TaskSpec]) { self.requestId = requestId; self.tasks = tasks }
    }
    public struct BatchSubmitted: Codable, Sendable, Equatable {
        public var requestId: Int
        /// Every task's id, in the order given.
        public var ids: [String]
        /// The ids that existed already (same spec): not submitted again.
        public var existing: [String]
        public init(requestId: Int, ids: [String], existing: [String]) {
            self.requestId = requestId; self.ids = ids; self.existing = existing
        }
    }
    public struct StatsReply: Codable, Sendable, Equatable {
        public var requestId: Int
        public var cluster: StatsBlock
        public var workers: [String: StatsBlock]
        /// The scheduler process's CPU time and peak RSS, read when it answered.
        public var scheduler: ProcessUsage?
        public init(requestId: Int, cluster: StatsBlock, workers: [String: StatsBlock], scheduler: ProcessUsage? = nil) {
            self.requestId = requestId; self.cluster = cluster; self.workers = workers; self.scheduler = scheduler
        }
    }
    public struct Registered: Codable, Sendable, Equatable {
        public var heartbeatMs: Int
        /// How long the scheduler hears nothing from this worker before it marks it lost
        /// (absent from older schedulers): the worker gives up a connection that stays
        /// unacknowledged past it (`WorkerSession.deadConnectionMs`).
        public var lostAfterMs: Int?
        public init(heartbeatMs: Int, lostAfterMs: Int? = nil) {
            self.heartbeatMs = heartbeatMs
            self.lostAfterMs = lostAfterMs
        }
    }
    public struct Heartbeat: Codable, Sendable, Equatable {
        public var freeSlots: Int
        public var running: [RunRef]
        /// The worker process's own CPU time and peak RSS (absent from older workers).
        public var usage: ProcessUsage?
        public init(freeSlots: Int, running: [RunRef], usage: ProcessUsage? = nil) {
            self.freeSlots = freeSlots; self.running = running; self.usage = usage
        }
    }
    public struct Assign: Codable, Sendable, Equatable {
        public var task: TaskAssignment
        public init(task: TaskAssignment) { self.task = task }
    }
    public struct TaskStarted: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        public var pid: Int
        public var startedAt: Int64
        public init(id: String, attempt: Int, pid: Int, startedAt: Int64) {
            self.id = id; self.attempt = attempt; self.pid = pid; self.startedAt = startedAt
        }
    }
    public struct TaskFinished: Codable, Sendable, Equatable {
        public var result: TaskResult
        public init(result: TaskResult) { self.result = result }
    }
    public struct ResultAck: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        public init(id: String, attempt: Int) { self.id = id; self.attempt = attempt }
    }
    /// A worker refuses an assignment (full, or invalid); the scheduler requeues it, or with
    /// `permanent` (the worker could not even read it) ends it `failed` with the reason.
    public struct Reject: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        public var reason: String
        public var permanent: Bool?
        public init(id: String, attempt: Int, reason: String, permanent: Bool? = nil) {
            self.id = id; self.attempt = attempt; self.reason = reason; self.permanent = permanent
        }
    }
    /// A worker is stopping: place nothing more on it; what it still had comes back as `lost`
    /// results, and anything it never reports is requeued as soon as it disconnects.
    public struct Leave: Codable, Sendable, Equatable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }
    /// The scheduler tells a worker to kill a task's whole process group.
    public struct Kill: Codable, Sendable, Equatable {
        public var id: String
        /// The run to kill; a later run of the same task is left alone.
        public var attempt: Int
        public var reason: String
        public init(id: String, attempt: Int, reason: String) { self.id = id; self.attempt = attempt; self.reason = reason }
    }
    public struct Submit: Codable, Sendable, Equatable {
        public var requestId: Int
        public var task: TaskSpec
        public init(requestId: Int, task: TaskSpec) { self.requestId = requestId; self.task = task }
    }
    public struct TaskRef: Codable, Sendable, Equatable {
        public var requestId: Int
        public var id: String
        public init(requestId: Int, id: String) { self.requestId = requestId; self.id = id }
    }
    public struct Wait: Codable, Sendable, Equatable {
        public var requestId: Int
        public var ids: [String]
        public init(requestId: Int, ids: [String]) { self.requestId = requestId; self.ids = ids }
    }
    public struct RequestOnly: Codable, Sendable, Equatable {
        public var requestId: Int
        public init(requestId: Int) { self.requestId = requestId }
    }
    public struct Submitted: Codable, Sendable, Equatable {
        public var requestId: Int
        public var id: String
        public init(requestId: Int, id: String) { self.requestId = requestId; self.id = id }
    }
    public struct TaskInfoReply: Codable, Sendable, Equatable {
        public var requestId: Int
        public var task: TaskInfo
        public init(requestId: Int, task: TaskInfo) { self.requestId = requestId; self.task = task }
    }
    /// One page of the task listing: tasks submitted after the task `after` (nil: from the
    /// first), at most `limit` of them (nil or over the scheduler's page size: a full page).
    public struct ListTasks: Codable, Sendable, Equatable {
        public var requestId: Int
        public var after: String?
        public var limit: Int?
        /// Only the tasks it matches (nil: all). A page may then hold fewer than `limit` tasks,
        /// none even, and still have a `next`: the scheduler looks at a bounded number per page.
        public var filter: TaskFilter?
        public init(requestId: Int, after: String? = nil, limit: Int? = nil, filter: TaskFilter? = nil) {
            self.requestId = requestId; self.after = after; self.limit = limit; self.filter = filter
        }
    }
    public struct TaskListReply: Codable, Sendable, Equatable {
        public var requestId: Int
        public var tasks: [TaskInfo]
        /// For `taskList`: the `after` of the next page; absent on the last page.
        public var next: String?
        public init(requestId: Int, tasks: [TaskInfo], next: String? = nil) {
            self.requestId = requestId; self.tasks = tasks; self.next = next
        }
    }
    public struct NodeListReply: Codable, Sendable, Equatable {
        public var requestId: Int
        public var nodes: [NodeInfo]
        public init(requestId: Int, nodes: [NodeInfo]) { self.requestId = requestId; self.nodes = nodes }
    }
}

/// Machine-readable error kinds carried by `error` frames.
public enum ErrorCode: String, Codable, Sendable {
    case badFrame
    case badMessage
    case versionMismatch
    case handshakeRequired
    case authFailed
    case unexpected
    case invalidTask
    case duplicateId
    case unknownTask
    /// The task already has its outcome (e.g. `cancel` after it ended).
    case taskEnded
    case unknownNode
    case internalError
    /// A blob named in a request is not held by the scheduler.
    case unknownBlob
    /// A transfer broke its own rules (wrong offset, hash mismatch, over a limit).
    case badBlob
    /// The token the peer proved does not allow this (a read token submitting, a submit
    /// token registering a worker: `TokenScope`).
    case forbidden
}
