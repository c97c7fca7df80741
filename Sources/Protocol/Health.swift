#if canImport(Glibc)
import Glibc
#endif

/// A runtime's health on one worker, as its probes found it. Workers send it on register,
/// in a `health` message whenever it changes, and the scheduler places runtime tasks only
/// where the runtime is healthy.
public struct RuntimeStatus: Codable, Sendable, Equatable {
    public var name: String
    /// False until the first probe passed (a runtime without a health command is healthy).
    public var healthy: Bool
    public var checkedAt: Int64?
    public var latencyMs: Int64?
    /// Why the last probe failed (or what it printed).
    public var detail: String?
    public var passed: Int
    public var failed: Int
    /// Sum over all probes, for the mean.
    public var totalLatencyMs: Int64
    /// The runtime's definition, as far as the scheduler needs it (absent from older workers):
    /// the model a task naming none runs with (resolved at submit, so limits see it).
    public var defaultModel: String?
    /// Whether the prompt goes into argv (through `{prompt}`) rather than stdin.
    public var promptInArgv: Bool?
    /// What the command template takes in exec (each part's bytes, NUL and pointer), and the
    /// bytes around `{prompt}` in the longest part holding it: a prompt in argv must fit
    /// beside them (`ExecLimits`).
    public var argvTemplateBytes: Int?
    public var promptArgumentBytes: Int?

    public init(name: String, healthy: Bool, checkedAt: Int64? = nil, latencyMs: Int64? = nil,
                detail: String? = nil, passed: Int = 0, failed: Int = 0, totalLatencyMs: Int64 = 0) {
        self.name = name
        self.healthy = healthy
        self.checkedAt = checkedAt
        self.latencyMs = latencyMs
        self.detail = detail
        self.passed = passed
        self.failed = failed
        self.totalLatencyMs = totalLatencyMs
    }

    enum CodingKeys: String, CodingKey {
        case name, healthy, checkedAt, latencyMs, detail, passed, failed, totalLatencyMs
        case defaultModel, promptInArgv, argvTemplateBytes, promptArgumentBytes
    }

    /// Every key, `null` when unknown (`nodes --json` shows the same keys for every runtime).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(healthy, forKey: .healthy)
        try c.encode(checkedAt, forKey: .checkedAt)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(detail, forKey: .detail)
        try c.encode(passed, forKey: .passed)
        try c.encode(failed, forKey: .failed)
        try c.encode(totalLatencyMs, forKey: .totalLatencyMs)
        try c.encode(defaultModel, forKey: .defaultModel)
        try c.encode(promptInArgv, forKey: .promptInArgv)
        try c.encode(argvTemplateBytes, forKey: .argvTemplateBytes)
        try c.encode(promptArgumentBytes, forKey: .promptArgumentBytes)
    }
}

/// Counters of finished and running tasks, for `swarm stats`.
public struct StatsCounters: Codable, Sendable, Equatable {
    public var active = 0
    public var completed = 0
    public var succeeded = 0
    /// Ended any other way than `succeeded`.
    public var failed = 0
    /// Failed runs by their state (`failed`, `timed_out`, `silence_killed`, ...).
    public var failedByReason: [String: Int] = [:]
    public var extensions = 0
    public var silenceWarnings = 0
    public var silenceKills = 0
    public var timeouts = 0
    /// Sum of run durations of completed tasks (for the mean).
    public var totalRunMs: Int64 = 0

    public init() {}
}

/// Health probe figures of one runtime.
public struct HealthStats: Codable, Sendable, Equatable {
    public var healthy: Bool
    public var passed: Int
    public var failed: Int
    public var lastLatencyMs: Int64?
    public var meanLatencyMs: Int64?

    public init(healthy: Bool, passed: Int, failed: Int, lastLatencyMs: Int64?, meanLatencyMs: Int64?) {
        self.healthy = healthy
        self.passed = passed
        self.failed = failed
        self.lastLatencyMs = lastLatencyMs
        self.meanLatencyMs = meanLatencyMs
    }

    enum CodingKeys: String, CodingKey { case healthy, passed, failed, lastLatencyMs, meanLatencyMs }

    /// Every key, `null` when unknown.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(healthy, forKey: .healthy)
        try c.encode(passed, forKey: .passed)
        try c.encode(failed, forKey: .failed)
        try c.encode(lastLatencyMs, forKey: .lastLatencyMs)
        try c.encode(meanLatencyMs, forKey: .meanLatencyMs)
    }
}

/// Statistics of one worker, or of the whole cluster.
public struct StatsBlock: Codable, Sendable, Equatable {
    public var totals = StatsCounters()
    /// Keyed by model; tasks without a model under "-".
    public var byModel: [String: StatsCounters] = [:]
    /// Keyed by runtime (on the cluster level: summed over workers).
    public var health: [String: HealthStats] = [:]
    /// A worker's process figures from its last heartbeat (nil on the cluster level).
    public var process: ProcessUsage?
    /// Blob bytes the scheduler sent (downloads: inputs to workers, `swarm fetch` to clients)
    /// and received (uploads) since it started: cluster level, every peer; worker level, that
    /// worker's connection (0 before its first transfer). Null when the sender does not count.
    public var blobBytesOut: Int64?
    public var blobBytesIn: Int64?

    public init() {}

    enum CodingKeys: String, CodingKey { case totals, byModel, health, process, blobBytesOut, blobBytesIn }

    /// Every key, `null` when unknown.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(totals, forKey: .totals)
        try c.encode(byModel, forKey: .byModel)
        try c.encode(health, forKey: .health)
        try c.encode(process, forKey: .process)
        try c.encode(blobBytesOut, forKey: .blobBytesOut)
        try c.encode(blobBytesIn, forKey: .blobBytesIn)
    }
}

/// CPU time and peak memory of one swarm process (scheduler or worker; not its tasks), from
/// `getrusage(RUSAGE_SELF)`. Workers send theirs with each heartbeat; `swarm stats` shows them.
/// In an in-process cluster (`swarm up`) every role shares one process, so one figure.
public struct ProcessUsage: Codable, Sendable, Equatable {
    public var pid: Int
    public var cpuUserMs: Int64
    public var cpuSystemMs: Int64
    public var maxRssKiB: Int64
    /// Unix milliseconds when it was read.
    public var at: Int64

    public init(pid: Int, cpuUserMs: Int64, cpuSystemMs: Int64, maxRssKiB: Int64, at: Int64) {
        self.pid = pid
        self.cpuUserMs = cpuUserMs
        self.cpuSystemMs = cpuSystemMs
        self.maxRssKiB = maxRssKiB
        self.at = at
    }

    /// This process's figures now; `at` (wall-clock unix ms) dates them.
    public static func ofSelf(at: Int64) -> ProcessUsage {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func ms(_ t: timeval) -> Int64 { Int64(t.tv_sec) * 1000 + Int64(t.tv_usec) / 1000 }
        return ProcessUsage(pid: Int(getpid()), cpuUserMs: ms(usage.ru_utime), cpuSystemMs: ms(usage.ru_stime),
                            maxRssKiB: Int64(usage.ru_maxrss), at: at)
    }
}

/// `swarm stats --json` and the dashboard's `/api/stats`: the `statsReply` payload without its
/// `requestId`. One type for both, so their field names cannot drift apart.
public struct StatsSnapshot: Codable, Sendable, Equatable {
    public var cluster: StatsBlock
    /// Keyed by worker name.
    public var workers: [String: StatsBlock]
    /// The scheduler process's CPU time and peak RSS (each worker's is in its block's `process`).
    public var scheduler: ProcessUsage?

    public init(_ reply: Message.StatsReply) {
        cluster = reply.cluster
        workers = reply.workers
        scheduler = reply.scheduler
    }

    enum CodingKeys: String, CodingKey { case cluster, workers, scheduler }

    /// Every key, `null` when unknown.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(workers, forKey: .workers)
        try c.encode(scheduler, forKey: .scheduler)
    }
}
