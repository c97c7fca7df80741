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
    /// It never ran: a task it waited for with `after` ended in a state other than
    /// `succeeded` (its reason names that task). Issue 13.
    case dependencyFailed = "dependency_failed"

    public var isTerminal: Bool { self != .queued && self != .running }
}

/// A worker as the scheduler sees it. Raw values are a contract.
public enum NodeState: String, Codable, Sendable {
    case ready
    case draining
    case lost
}

/// Worker names become directory names (`.swarm/worker-NAME`), so they follow the task ids'
/// rule: 1 to 128 of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
public enum WorkerName {
    /// Nil when `name` is acceptable, else the reason it is not.
    public static func problem(with name: String) -> String? {
        guard let problem = TaskID.problem(with: name) else { return nil }
        // The same rule, said of a worker name.
        return "worker name" + problem.dropFirst("task id".count)
    }
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

    /// `{prefix}-{unix ms}-{6 random [a-z0-9]}`, `at` being the wall clock's unix ms.
    /// One draw from the system's generator (one `getrandom`, not one per character) gives the
    /// six characters: 36^6 is under 2^32, so the modulo's bias is below 2^-32.
    public static func generate(prefix: String = "task", at: Int64) -> String {
        var rng = SystemRandomNumberGenerator()
        var bits = rng.next()
        var suffix = [UInt8](repeating: 0, count: 6)
        for i in 0..<6 {
            suffix[i] = suffixAlphabet[Int(bits % 36)]
            bits /= 36
        }
        return "\(prefix)-\(at)-\(String(decoding: suffix, as: UTF8.self))"
    }

    private static let suffixAlphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A bad id as an error quotes it: cut to 40 characters, control characters escaped
    /// (`PeerText.safe`): it may come from anyone (a flag, a file, a peer).
    static func quoted(_ s: String) -> String {
        "'\(PeerText.safe(s, limit: 40))'"
    }
}

/// One run of a task: a task id and its attempt number. A result, a kill or a report of what
/// runs names the run, so a late report of an earlier run is never taken for the current one.
public struct RunRef: Codable, Sendable, Hashable {
    public var id: String
    public var attempt: Int
    public init(id: String, attempt: Int) { self.id = id; self.attempt = attempt }
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
    /// Runtimes the worker runs, with their health.
    public var runtimes: [RuntimeStatus]
    public var allowsCommands: Bool
    /// Tasks sent ahead to this worker that it holds until a slot frees (prefetch); they are
    /// `queued`, not in `running`. Absent (nil) from schedulers before it.
    public var prefetched: Int?

    public init(name: String, slots: Int, freeSlots: Int, running: Int, state: NodeState,
                labels: [String: String], address: String?, connected: Bool,
                lastSeenMsAgo: Int64, completed: Int, runtimes: [RuntimeStatus] = [], allowsCommands: Bool = true,
                prefetched: Int? = nil) {
        self.prefetched = prefetched
        self.runtimes = runtimes
        self.allowsCommands = allowsCommands
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

    enum CodingKeys: String, CodingKey {
        case name, slots, freeSlots, running, state, labels, address, connected, lastSeenMsAgo, completed, runtimes, allowsCommands
        case prefetched
    }

    /// Every key, `null` when unknown.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(slots, forKey: .slots)
        try c.encode(freeSlots, forKey: .freeSlots)
        try c.encode(running, forKey: .running)
        try c.encode(state, forKey: .state)
        try c.encode(labels, forKey: .labels)
        try c.encode(address, forKey: .address)
        try c.encode(connected, forKey: .connected)
        try c.encode(lastSeenMsAgo, forKey: .lastSeenMsAgo)
        try c.encode(completed, forKey: .completed)
        try c.encode(runtimes, forKey: .runtimes)
        try c.encode(allowsCommands, forKey: .allowsCommands)
        try c.encode(prefetched, forKey: .prefetched)
    }
}
