import SwarmClient
import SwarmProtocol

extension BenchContext {
    /// None known (test doubles).
    public func processFigures() -> [ProcessFigures] { [] }
    /// Not known (test doubles): workloads that run the CLI skip that part.
    public var swarmExecutable: String? { nil }
    public var schedulerAddress: String? { nil }
    /// Not known (test doubles, remote clusters): the durable floor is not measured.
    public var stateDirectory: String? { nil }
}

/// Settings of one `swarm bench` invocation that workloads read.
public struct BenchOptions: Sendable {
    /// Workloads to run, in order.
    public var workloads: [String] = BenchOptions.allWorkloads
    /// Repetitions of each measured batch (swarm and baselines interleaved).
    public var repeats = 3
    /// Smaller batches for a quick look (and for tests): each workload scales itself down.
    public var quick = false
    /// `spawn`: tasks per run and the concurrency (also xargs -P's) of its top level.
    public var spawnTasks = 2000
    public var spawnConcurrency = 64
    /// `spawn`: every concurrency it runs at (ascending; the last is `spawnConcurrency`), each
    /// on a local cluster of that many slots, against xargs at the same P.
    public var spawnLevels = [4, 16, 64]
    /// The level whose batch also goes through the CLI (`spawn-cli`): the middle one.
    public var spawnCLIConcurrency: Int { spawnLevels.isEmpty ? spawnConcurrency : spawnLevels[spawnLevels.count / 2] }
    /// `parallel`: tasks and their sleep; all run at once.
    public var parallelTasks = 100
    public var parallelSleepSeconds = 10.0
    /// The second `parallel` shape (1,000 x 2 s); zero tasks skips it.
    public var parallelWideTasks = 1000
    public var parallelWideSleepSeconds = 2.0
    /// `agent` and `models`: tasks, and the synthetic agent's duration distribution
    /// (`uniform:MIN-MAX`, `fixed:S` or `lognormal:MEDIAN,SIGMA`, seconds).
    public var agentTasks = 200
    public var agentDuration = "uniform:0.5-2"
    /// `models`: per-model concurrency limit set on the local cluster (`deep` model).
    public var modelLimit = 4
    /// `isolation`: concurrent writers.
    public var isolationTasks = 50
    /// `scale`: concurrency steps, ramped until one fails or the list ends.
    public var scaleSteps = [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
    public var scaleSleepSeconds = 5.0
    /// `workspace`: the transfer input (MiB; the packed blob stays within the default
    /// 256 MiB per-task input limit), the fan-out's tasks and shared input, the concurrent
    /// `repo` tasks and the repository's files, the artifact-writing tasks.
    public var workspaceInputMiB = 256
    public var workspaceFanoutTasks = 1000
    public var workspaceFanoutInputMiB = 50
    public var workspaceWorktreeTasks = 100
    public var workspaceRepoFiles = 5000
    public var workspaceArtifactTasks = 50
    /// `soak`: tasks (nil: 1,000,000, or 100,000 with `quick`).
    public var soakTasks: Int?
    /// Where the bench writes its report and scratch files (the tasks' shared files).
    public var outputDirectory = "bench-results"

    /// Every workload, in the order they run: what `all` (the default) runs.
    public static let allWorkloads = ["spawn", "dashboard", "parallel", "agent", "isolation", "models", "scale", "workspace", "dag"]
    /// Workloads that run only when named (not part of `all`): the soak takes an hour at full size.
    /// `tls` starts a second cluster (with a token) beside the first.
    public static let namedOnlyWorkloads = ["soak", "tls"]

    public init() {}
}

/// Terminal progress: a bar per phase. Implementations must be cheap to call often.
public protocol BenchProgress: AnyObject {
    /// Starts a phase ("spawn: swarm run 2/3") of `total` steps (tasks).
    func begin(_ phase: String, total: Int)
    /// Sets how many steps of the current phase are done.
    func update(done: Int)
    /// Ends the phase with a one-line result ("2,000 tasks in 1.02 s: 1,960/s").
    func end(_ result: String)
}

/// What a workload is given: the client, the cluster, the options, and the measuring helper.
public protocol BenchContext: AnyObject {
    var options: BenchOptions { get }
    var client: SwarmClient { get }
    var cluster: ClusterDescription { get }
    var progress: BenchProgress { get }
    /// Absolute path of the synthetic agent script (written by the bench), run with /bin/sh.
    var agentScript: String { get }
    /// Name of the runtime that runs the synthetic agent, if the cluster has it healthy
    /// somewhere; nil means agent workloads must be skipped (with a note).
    var agentRuntime: String? { get }
    /// Model limits the cluster enforces, as far as the bench knows (local: what it set).
    var modelLimits: [String: Int] { get }
    /// Absolute scratch directory for this workload's files, created and empty.
    func scratchDirectory(_ workload: String) throws -> String
    /// The scheduler's and workers' process figures now (CPU, RSS), as far as known.
    func processFigures() -> [ProcessFigures]
    /// The `swarm` executable that can talk to this cluster as a child process, and the
    /// cluster's `HOST:PORT` (for the CLI arm of `spawn`); nil when not known.
    var swarmExecutable: String? { get }
    var schedulerAddress: String? { get }
    /// A durable local scheduler's `--state-dir` (where `spawn` measures the disk's sync, for
    /// its durable floor); nil otherwise.
    var stateDirectory: String? { get }

    /// Submits `specs` as one batch, waits for every task to end (bounded by
    /// `timeoutSeconds`), and measures the run: lost and duplicated tasks, wall time,
    /// throughput, latencies, cluster CPU and RSS. `sleepSeconds` (each task's intended
    /// run time) turns on efficiency and speedup. Returns the figures and every task's final
    /// info (in the order of `specs`).
    func runBatch(_ specs: [TaskSpec], label: String, concurrency: Int, sleepSeconds: Double?,
                  timeoutSeconds: Double) throws -> (RunFigures, [TaskInfo])
}

/// One workload: builds its section of the report.
public protocol Workload {
    var name: String { get }
    func run(_ context: BenchContext) throws -> WorkloadReport
}
