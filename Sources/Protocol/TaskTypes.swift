import Foundation

/// Lifecycle of a task as users see it. Raw values are a contract (`--json`, results).
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case queued
    case running
    case succeeded
    case failed
    case timedOut = "timed_out"
    case silenceKilled = "silence_killed"
    case cancelled
    case lost
    case healthFailed = "health_failed"
    case spawnFailed = "spawn_failed"

    public var isTerminal: Bool { self != .queued && self != .running }
}

/// A worker as the scheduler sees it. Raw values are a contract.
public enum NodeState: String, Codable, Sendable {
    case ready
    case draining
    case lost
}

/// Task ids become file names on workers, so they are checked everywhere they arrive.
public enum TaskID {
    public static let maxLength = 128

    /// Nil when `id` is acceptable, else the reason it is not.
    public static func problem(with id: String) -> String? {
        if id.isEmpty || id.utf8.count > maxLength {
            return "task id must be 1 to \(maxLength) characters, got \(id.utf8.count)"
        }
        for byte in id.utf8 {
            let ok = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
                || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F || byte == 0x2D
            if !ok { return "task id \(quoted(id)) may contain only A-Z a-z 0-9 . _ -" }
        }
        // Each is a valid pattern match but names a directory, not a task's own file.
        if id == "." || id == ".." { return "task id \(quoted(id)) is reserved" }
        return nil
    }

    /// `{prefix}-{unix ms}-{6 random [a-z0-9]}`.
    public static func generate(prefix: String = "task", nowMs: Int64) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var rng = SystemRandomNumberGenerator()
        let suffix = String((0..<6).map { _ in alphabet[Int(rng.next(upperBound: UInt64(alphabet.count)))] })
        return "\(prefix)-\(nowMs)-\(suffix)"
    }

    static func quoted(_ s: String) -> String {
        let shown = s.count > 40 ? String(s.prefix(40)) + "..." : s
        return "'\(shown)'"
    }
}

/// What a client submits.
public struct TaskSpec: Codable, Sendable, Equatable {
    /// Client-chosen id, or nil for a generated one.
    public var id: String?
    /// argv; the first element is looked up in PATH.
    public var command: [String]
    /// Extra environment for the task.
    public var env: [String: String]?

    public init(id: String? = nil, command: [String], env: [String: String]? = nil) {
        self.id = id
        self.command = command
        self.env = env
    }

    /// Linux refuses to exec a single argument or variable over 128 KiB (MAX_ARG_STRLEN),
    /// and the whole set is bounded too: refuse such a task at submit, not at spawn.
    public static let maxArgumentBytes = 128 * 1024
    public static let maxCommandAndEnvBytes = 1024 * 1024

    /// Nil when the spec can be accepted, else the reason.
    public func problem() -> String? {
        if let id, let p = TaskID.problem(with: id) { return p }
        if command.isEmpty { return "a task needs a command" }
        if command[0].isEmpty { return "the command's program name is empty" }
        var total = 0
        for (index, argument) in command.enumerated() {
            if argument.utf8.contains(0) { return "argument \(index) contains a NUL byte" }
            // The kernel's per-string limit counts the terminating NUL.
            if argument.utf8.count + 1 > Self.maxArgumentBytes {
                return "argument \(index) is \(argument.utf8.count) bytes; the limit is \(Self.maxArgumentBytes - 1)"
            }
            total += argument.utf8.count + 1
        }
        for (key, value) in env ?? [:] {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) {
                return "invalid environment variable name \(TaskID.quoted(key))"
            }
            if value.utf8.contains(0) { return "environment variable \(key) contains a NUL byte" }
            if key.utf8.count + value.utf8.count + 2 > Self.maxArgumentBytes {
                return "environment variable \(key) is over \(Self.maxArgumentBytes) bytes"
            }
            total += key.utf8.count + value.utf8.count + 2
        }
        if total > Self.maxCommandAndEnvBytes {
            return "command and environment are \(total) bytes; the limit is \(Self.maxCommandAndEnvBytes)"
        }
        return nil
    }
}

/// One run of a task: a task id and its attempt number. A result, a kill or a report of what
/// runs names the run, so a late report of an earlier run is never taken for the current one.
public struct RunRef: Codable, Sendable, Hashable {
    public var id: String
    public var attempt: Int
    public init(id: String, attempt: Int) { self.id = id; self.attempt = attempt }
}

/// What a worker is told to run.
public struct TaskAssignment: Codable, Sendable, Equatable {
    public var id: String
    public var command: [String]
    public var env: [String: String]?
    public var attempt: Int

    public init(id: String, command: [String], env: [String: String]?, attempt: Int) {
        self.id = id
        self.command = command
        self.env = env
        self.attempt = attempt
    }
}

/// How a run ended, as reported by the worker that ran it.
public struct TaskResult: Codable, Sendable, Equatable {
    public var id: String
    public var state: TaskState
    public var exitCode: Int?
    public var signal: Int?
    public var reason: String?
    /// The last 64 KiB of stdout and stderr, interleaved as they arrived.
    public var output: String
    public var pid: Int?
    public var attempt: Int
    public var startedAt: Int64?
    public var finishedAt: Int64

    /// The run this result belongs to.
    public var run: RunRef { RunRef(id: id, attempt: attempt) }

    public init(id: String, state: TaskState, exitCode: Int?, signal: Int?, reason: String?,
                output: String, pid: Int?, attempt: Int, startedAt: Int64?, finishedAt: Int64) {
        self.id = id
        self.state = state
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.output = output
        self.pid = pid
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// A task as clients see it. Times are unix milliseconds. Absent values are `null`, never
/// missing keys, so scripts can rely on every field being there.
public struct TaskInfo: Codable, Sendable, Equatable {
    public var id: String
    public var state: TaskState
    public var command: [String]
    public var node: String?
    public var exitCode: Int?
    public var signal: Int?
    public var reason: String?
    public var attempts: Int
    public var submittedAt: Int64
    public var placedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// Last 64 KiB of output once the task has ended; null in listings and multi-task waits.
    public var output: String?

    public init(id: String, state: TaskState, command: [String], node: String? = nil,
                exitCode: Int? = nil, signal: Int? = nil, reason: String? = nil, attempts: Int = 0,
                submittedAt: Int64, placedAt: Int64? = nil, startedAt: Int64? = nil,
                finishedAt: Int64? = nil, output: String? = nil) {
        self.id = id
        self.state = state
        self.command = command
        self.node = node
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.attempts = attempts
        self.submittedAt = submittedAt
        self.placedAt = placedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.output = output
    }

    enum CodingKeys: String, CodingKey {
        case id, state, command, node, exitCode, signal, reason, attempts
        case submittedAt, placedAt, startedAt, finishedAt, output
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(state, forKey: .state)
        try c.encode(command, forKey: .command)
        try c.encode(node, forKey: .node)
        try c.encode(exitCode, forKey: .exitCode)
        try c.encode(signal, forKey: .signal)
        try c.encode(reason, forKey: .reason)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(submittedAt, forKey: .submittedAt)
        try c.encode(placedAt, forKey: .placedAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
        try c.encode(output, forKey: .output)
    }
}

/// A worker as clients see it.
public struct NodeInfo: Codable, Sendable, Equatable {
    public var name: String
    public var slots: Int
    public var freeSlots: Int
    public var running: Int
    public var state: NodeState
    public var labels: [String: String]
    public var address: String?
    public var connected: Bool
    /// Milliseconds since the last heartbeat.
    public var lastSeenMsAgo: Int64
    public var completed: Int

    public init(name: String, slots: Int, freeSlots: Int, running: Int, state: NodeState,
                labels: [String: String], address: String?, connected: Bool,
                lastSeenMsAgo: Int64, completed: Int) {
        self.name = name
        self.slots = slots
        self.freeSlots = freeSlots
        self.running = running
        self.state = state
        self.labels = labels
        self.address = address
        self.connected = connected
        self.lastSeenMsAgo = lastSeenMsAgo
        self.completed = completed
    }
}
