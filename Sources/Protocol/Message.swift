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
    case leave(Leave)
    // Client -> scheduler, each answered with the same `requestId`.
    case submit(Submit)
    case status(TaskRef)
    case wait(Wait)
    case listTasks(RequestOnly)
    case listNodes(RequestOnly)
    // Scheduler -> client.
    case submitted(Submitted)
    case taskInfo(TaskInfoReply)
    case waitResult(TaskListReply)
    case taskList(TaskListReply)
    case nodeList(NodeListReply)

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
        public init(version: Int = protocolVersion, server: String, mac: String? = nil) {
            self.version = version; self.server = server; self.mac = mac
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
        public init(slots: Int, labels: [String: String], running: [RunRef], finished: [RunRef]) {
            self.slots = slots; self.labels = labels; self.running = running; self.finished = finished
        }
    }
    public struct Registered: Codable, Sendable, Equatable {
        public var heartbeatMs: Int
        public init(heartbeatMs: Int) { self.heartbeatMs = heartbeatMs }
    }
    public struct Heartbeat: Codable, Sendable, Equatable {
        public var freeSlots: Int
        public var running: [RunRef]
        public init(freeSlots: Int, running: [RunRef]) { self.freeSlots = freeSlots; self.running = running }
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
    /// A worker refuses an assignment (full, or invalid); the scheduler requeues it.
    public struct Reject: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        public var reason: String
        public init(id: String, attempt: Int, reason: String) { self.id = id; self.attempt = attempt; self.reason = reason }
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
    public struct TaskListReply: Codable, Sendable, Equatable {
        public var requestId: Int
        public var tasks: [TaskInfo]
        public init(requestId: Int, tasks: [TaskInfo]) { self.requestId = requestId; self.tasks = tasks }
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
    case internalError
}
