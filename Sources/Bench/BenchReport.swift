import Foundation

// The figures `swarm bench` produces. This is the JSON file's schema (`schema` =
// "swarm-bench/1"): field names are a contract for scripts that compare runs. Add fields
// freely; never rename or remove one. Times are milliseconds unless the name says otherwise.

/// A median over repeated runs, with the smallest and largest run.
public struct Spread: Codable, Sendable, Equatable {
    public var median: Double
    public var min: Double
    public var max: Double
    public var runs: Int

    public init(median: Double, min: Double, max: Double, runs: Int) {
        self.median = median
        self.min = min
        self.max = max
        self.runs = runs
    }

    /// Median (mean of the two middle values for an even count), min and max; nil if empty.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        min = sorted[0]
        max = sorted[sorted.count - 1]
        runs = sorted.count
    }
}

/// Percentiles of one latency sample, in milliseconds (fractional: microsecond resolution).
public struct Percentiles: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    /// The sample at every percentile 0, 1, ..., 100 (101 values), for distribution charts.
    public var cdf: [Double]

    public init(count: Int, mean: Double, p50: Double, p90: Double, p99: Double, max: Double, cdf: [Double]) {
        self.count = count
        self.mean = mean
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.cdf = cdf
    }

    /// Nearest-rank percentiles of `samples`; nil if empty.
    public init?(_ samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        func rank(_ p: Double) -> Double {
            let index = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.min(sorted.count - 1, Swift.max(0, index))]
        }
        count = sorted.count
        mean = sorted.reduce(0, +) / Double(sorted.count)
        p50 = rank(50)
        p90 = rank(90)
        p99 = rank(99)
        max = sorted[sorted.count - 1]
        cdf = (0...100).map { $0 == 0 ? sorted[0] : rank(Double($0)) }
    }
}

/// CPU time and peak memory of one process of the cluster over a run (or the whole bench).
public struct ProcessFigures: Codable, Sendable, Equatable {
    /// `scheduler` or the worker's name.
    public var name: String
    public var role: String
    public var pid: Int?
    public var cpuUserMs: Double
    public var cpuSystemMs: Double
    public var peakRssMiB: Double

    public init(name: String, role: String, pid: Int?, cpuUserMs: Double, cpuSystemMs: Double, peakRssMiB: Double) {
        self.name = name
        self.role = role
        self.pid = pid
        self.cpuUserMs = cpuUserMs
        self.cpuSystemMs = cpuSystemMs
        self.peakRssMiB = peakRssMiB
    }
}

/// One run of a batch through swarm (one repetition, one concurrency step or one model).
public struct RunFigures: Codable, Sendable, Equatable {
    /// What this run was: "run 2", "concurrency 500", "model fast".
    public var label: String
    public var tasks: Int
    /// Tasks allowed to run at once (slots used, or the limit the workload set).
    public var concurrency: Int
    public var succeeded: Int
    /// Ended in any other state than `succeeded` (a workload that expects failures says so).
    public var failed: Int
    /// Accepted but never reported as ended, or ended without having started.
    public var lost: Int
    /// Ran more than once (attempts > 1) or started twice.
    public var duplicated: Int
    /// From the first submit to the last task's end, as the bench saw it.
    public var wallSeconds: Double
    /// tasks / wallSeconds.
    public var throughput: Double
    /// For sleeping workloads: (tasks x sleep / concurrency) / wallSeconds; else nil.
    public var efficiency: Double?
    /// tasks x sleep / wallSeconds: how many tasks' worth of work ran at once; else nil.
    public var speedup: Double?
    /// Scheduler accepted the task -> worker spawned it.
    public var submitToStart: Percentiles?
    /// Scheduler accepted the task -> scheduler placed it on a worker.
    public var submitToPlaced: Percentiles?
    /// Worker spawned it -> its first byte of output (tasks that printed anything).
    public var startToFirstOutput: Percentiles?
    /// Process started -> process ended.
    public var runTime: Percentiles?
    /// CPU used by the scheduler and the workers (not their tasks) during this run.
    public var schedulerCpuMs: Double?
    public var workersCpuMs: Double?
    /// Scheduler plus worker CPU per task, in microseconds: the coordinator's overhead.
    public var overheadCpuUsPerTask: Double?
    /// The most tasks whose processes were alive at the same instant (from their start and
    /// exit times): whether a batch really ran at the concurrency it was given.
    public var peakConcurrent: Int?
    /// Peak RSS so far (high-water marks cannot be reset between runs).
    public var schedulerPeakRssMiB: Double?
    public var workersPeakRssMiB: Double?

    public init(label: String, tasks: Int, concurrency: Int) {
        self.label = label
        self.tasks = tasks
        self.concurrency = concurrency
        succeeded = 0
        failed = 0
        lost = 0
        duplicated = 0
        wallSeconds = 0
        throughput = 0
    }
}

/// The same commands run by another tool (xargs -P, GNU parallel) at the same concurrency.
public struct BaselineReport: Codable, Sendable, Equatable {
    /// "xargs" or "parallel".
    public var tool: String
    /// The command line used, e.g. `xargs -P 64 -n 1 true`.
    public var command: String
    /// False when the tool cannot serve here (not installed, not GNU parallel): `problem` says why, and `runs` is empty.
    public var available: Bool
    public var runs: [RunFigures]
    public var throughput: Spread?
    public var wallSeconds: Spread?
    public var efficiency: Spread?
    /// swarm's median throughput / this tool's median throughput (>1: swarm was faster).
    public var swarmThroughputRatio: Double?
    /// swarm's median efficiency / this tool's median efficiency (sleeping workloads).
    public var swarmEfficiencyRatio: Double?
    /// swarm's run r throughput / this tool's run r (the two ran one after the other), over
    /// the repeats: how much the ratio moved between repeats.
    public var swarmThroughputRatioSpread: Spread?
    /// Why the tool was not run ("not installed", "/usr/bin/parallel is not GNU parallel"),
    /// or why some of its runs are not counted (the pipeline exited non-zero).
    public var problem: String?

    public init(tool: String, command: String, available: Bool) {
        self.tool = tool
        self.command = command
        self.available = available
        runs = []
    }
}

/// A free-form table for findings that are not run figures (isolation, per-model limits).
public struct ReportTable: Codable, Sendable, Equatable {
    public var title: String
    public var columns: [String]
    public var rows: [[String]]

    public init(title: String, columns: [String], rows: [[String]]) {
        self.title = title
        self.columns = columns
        self.rows = rows
    }
}

/// Medians (with min and max) over a workload's repeated swarm runs.
public struct WorkloadSummary: Codable, Sendable, Equatable {
    public var throughput: Spread?
    public var wallSeconds: Spread?
    public var efficiency: Spread?
    public var speedup: Spread?
    /// Spreads of each run's p50 / p99 submit-to-start and start-to-first-output.
    public var submitToStartP50: Spread?
    public var submitToStartP99: Spread?
    public var startToFirstOutputP50: Spread?
    public var startToFirstOutputP99: Spread?
    public var overheadCpuUsPerTask: Spread?

    public init() {}
}

/// One workload's section of the report.
public struct WorkloadReport: Codable, Sendable, Equatable {
    /// `spawn`, `parallel`, `agent`, `isolation`, `models` or `scale`.
    public var name: String
    public var title: String
    /// What was run and what it shows, one paragraph.
    public var description: String
    /// The workload's settings (tasks, concurrency, sleep seconds, ...), as text.
    public var parameters: [String: String]
    /// Repetitions of the same batch (spawn, parallel, agent) or the steps of a ramp (scale)
    /// or the per-model groups (models).
    public var runs: [RunFigures]
    public var summary: WorkloadSummary
    public var baselines: [BaselineReport]
    public var tables: [ReportTable]
    public var notes: [String]
    /// False when the workload broke a check of its own (lost tasks, isolation surprise).
    public var passed: Bool
    /// `workspace` only: its transfer, dedup, worktree and artifact figures.
    public var workspace: WorkspaceFigures?
    /// `soak` only: its limits, samples and verdicts.
    public var soak: SoakFigures?

    public init(name: String, title: String, description: String) {
        self.name = name
        self.title = title
        self.description = description
        parameters = [:]
        runs = []
        summary = WorkloadSummary()
        baselines = []
        tables = []
        notes = []
        passed = true
    }
}

/// A target from the issue or README, and whether this run met it.
public struct TargetCheck: Codable, Sendable, Equatable {
    public var name: String
    /// e.g. ">= 1.0x xargs -P", "< 1 ms".
    public var target: String
    /// e.g. "1.12x", "0.41 ms".
    public var measured: String
    /// nil when the workload that measures it did not run.
    public var met: Bool?

    public init(name: String, target: String, measured: String, met: Bool?) {
        self.name = name
        self.target = target
        self.measured = measured
        self.met = met
    }
}

public struct MachineInfo: Codable, Sendable, Equatable {
    public var hostname: String
    public var os: String
    public var kernel: String
    public var cpuModel: String
    public var cpus: Int
    public var memoryGiB: Double
    public var libuvVersion: String
    public var swarmVersion: String

    public init(hostname: String, os: String, kernel: String, cpuModel: String, cpus: Int,
                memoryGiB: Double, libuvVersion: String, swarmVersion: String) {
        self.hostname = hostname
        self.os = os
        self.kernel = kernel
        self.cpuModel = cpuModel
        self.cpus = cpus
        self.memoryGiB = memoryGiB
        self.libuvVersion = libuvVersion
        self.swarmVersion = swarmVersion
    }
}

public struct ClusterDescription: Codable, Sendable, Equatable {
    /// `local` (started and stopped by the bench) or `remote` (`--scheduler`).
    public var mode: String
    public var scheduler: String
    public var workers: Int
    public var totalSlots: Int
    /// Whether the scheduler persisted its state (SQLite, fsync per loop turn).
    public var durable: Bool?

    public init(mode: String, scheduler: String, workers: Int, totalSlots: Int, durable: Bool?) {
        self.mode = mode
        self.scheduler = scheduler
        self.workers = workers
        self.totalSlots = totalSlots
        self.durable = durable
    }
}

/// The whole report: `report.json`, and the source of `report.md` and `report.html`.
public struct BenchReport: Codable, Sendable, Equatable {
    public static let schemaName = "swarm-bench/1"
    public var schema = BenchReport.schemaName
    /// ISO 8601, UTC.
    public var startedAt: String
    public var finishedAt: String
    public var durationSeconds: Double
    /// The command line that produced this report.
    public var commandLine: String
    public var machine: MachineInfo
    public var cluster: ClusterDescription
    /// Repetitions per measured batch.
    public var repeats: Int
    public var workloads: [WorkloadReport]
    public var targets: [TargetCheck]
    /// Over every workload; any lost or duplicated task fails the bench (non-zero exit).
    public var lostTasks: Int
    public var duplicatedTasks: Int
    /// CPU time and peak RSS of each cluster process over the whole bench.
    public var processes: [ProcessFigures]
    public var limitations: [String]
    /// No lost or duplicated task and every workload passed its own checks.
    public var passed: Bool

    public init(startedAt: String, commandLine: String, machine: MachineInfo, cluster: ClusterDescription, repeats: Int) {
        self.startedAt = startedAt
        finishedAt = startedAt
        durationSeconds = 0
        self.commandLine = commandLine
        self.machine = machine
        self.cluster = cluster
        self.repeats = repeats
        workloads = []
        targets = []
        lostTasks = 0
        duplicatedTasks = 0
        processes = []
        limitations = []
        passed = true
    }
}
