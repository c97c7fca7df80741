import SwarmProtocol
import SwarmUV

/// What the pipeline needs of the worker's blob transfers (`BlobTransfers`, which the
/// WorkerAgent owns as `blobs`): a seam, so tests can put a fake in its place.
protocol BlobMoving: AnyObject {
    /// Fetches blob `sha256` (`size` bytes) into `path` (via `path.part`, size and hash
    /// checked, renamed); `done` once, on the loop: nil on success, else why not.
    func fetch(_ sha256: String, size: Int64, to path: String, _ done: @escaping (String?) -> Void)
    /// Uploads the file at `path`; `done` once the scheduler holds it (nil) or refused it.
    func upload(file path: String, sha256: String, size: Int64, _ done: @escaping (String?) -> Void)
}

/// One task in the pipeline: its pure core, and what the shell needs to carry it out.
final class PipelineTask {
    var core: TaskPipeline
    let task: TaskAssignment
    let plan: LaunchPlan
    let context: RunnerContext
    var run: RunRef { RunRef(id: task.id, attempt: task.attempt) }
    /// Its process runs (it is in `runners` too).
    var hasProcess = false
    var deadlineTimer: UVTimer?
    /// `repo` tasks: the commit the worktree was made at (`GitWorkspace.prepare`'s answer),
    /// which `GitWorkspace.collect` needs.
    var gitBase: String?
    /// `repo` tasks: the git work of making its worktree (`RunMetrics.worktreeMs`).
    var worktreeMs: Int64?
    /// `repo` tasks: whether the worktree was a reused spare (`RunMetrics.worktreeReused`).
    var worktreeReused: Bool?

    init(core: TaskPipeline, task: TaskAssignment, plan: LaunchPlan, context: RunnerContext) {
        self.core = core
        self.task = task
        self.plan = plan
        self.context = context
    }
}

/// The worker's work-in / work-out state (issue 11): tasks in the pipeline and the blob
/// cache. Loop thread only, owned by the `WorkerAgent`.
final class WorkerWorkspace {
    /// Tasks from their assignment to their result, by id (a task without inputs, repo,
    /// workdir or artifacts is never here).
    var tasks: [String: PipelineTask] = [:]
    /// How many of `tasks` have a process (and so are counted in `runners`).
    var withProcess = 0
    var cache: BlobCacheIndex
    /// `DATA/blobs`: `<first two hex digits>/<sha256>`.
    let blobsDir: String
    var blobsDirMade = false
    /// The transfers; nil: this worker cannot fetch or upload (inputs and uploads fail with
    /// the reason).
    var blobs: BlobMoving?
    /// `repo` tasks whose result is not acknowledged yet: their worktree, removed after the
    /// scheduler holds the result (`GitWorkspace.release`).
    var worktrees: [RunRef: String] = [:]
    /// Runs with inputs whose result is not acknowledged yet: the task directory and the
    /// DESTs unpacked there. Once the scheduler holds the result they are removed: the
    /// blob stays in the cache, and N tasks of one input would otherwise keep N copies.
    var inputCopies: [RunRef: (root: String, dests: [String])] = [:]
    /// The worker's git mirrors and worktrees (made at `start`).
    var git: GitWorkspace?
    /// Blobs fetched from the scheduler that no run has been handed yet, with their size: the
    /// first run handed one counts it in its `inputBytesFetched`. At most one per cached blob
    /// (an evicted blob's entry goes with it).
    var freshBlobs: [String: Int64] = [:]

    init(dataDir: String, cacheBytes: Int64) {
        blobsDir = dataDir + "/blobs"
        cache = BlobCacheIndex(capacity: cacheBytes)
    }

    /// Threads for file work too long for the loop (unpacking, hashing); made on first use.
    private var jobs: BackgroundJobs?

    /// Runs `work` on another thread and `then` with its result on the loop; inline if no
    /// thread can be had. `work` must touch nothing of the loop's.
    func offLoop<T: Sendable>(_ loop: EventLoop, _ work: @escaping @Sendable () -> T, then: @escaping (T) -> Void) {
        if jobs == nil { jobs = try? BackgroundJobs(loop: loop) }
        guard let jobs else { return then(work()) }
        jobs.run(work, then: then)
    }

    /// At the end of a stop (no task left): results still to come are dropped.
    func close() {
        jobs?.close()
        jobs = nil
    }

    /// Slots held by tasks without a process (preparing, collecting).
    var heldSlots: Int { tasks.count - withProcess }

    /// Runs that hold a slot without a process: reported as running (heartbeat, register).
    var runsWithoutProcess: [RunRef] { tasks.values.filter { !$0.hasProcess }.map(\.run) }

    func blobPath(_ sha256: String) -> String {
        "\(blobsDir)/\(sha256.prefix(2))/\(sha256)"
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension WorkerWorkspace: Sendable {}

extension BlobTransfers: BlobMoving {}
