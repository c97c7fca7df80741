import Foundation
import Logging
import SwarmHTTP
import SwarmProtocol
import SwarmTransport
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Everything `swarm worker` is told on its command line.
public struct WorkerConfig: Sendable {
    public var name: String
    public var slots: Int
    public var labels: [String: String] = [:]
    public var dataDir: String
    public var schedulerHost = "127.0.0.1"
    public var schedulerPort = 7700
    public var token: ClusterToken?
    /// Certificate mode (`--tls-cert`, `--tls-key`, `--tls-ca`); without it a token means
    /// TLS with a PSK from the token (see `TLSContext`).
    public var tls: TLSCertificateFiles?
    /// One shared directory all tasks run in; nil: each task gets `{workRoot}/{id}`.
    public var workDir: String?
    /// Root of the per-task working directories; nil: `{dataDir}/work`.
    public var workRootDir: String?
    public var workRoot: String { workRootDir ?? dataDir + "/work" }
    /// Runtimes this worker runs (by name) and whether it runs plain commands.
    public var runtimes: [RuntimeDefinition] = []
    public var allowsCommands = true
    /// Context above this many characters (serialized JSON) goes to a file.
    public var contextInlineMax = 500
    public var supervisor = TaskSupervisor.Settings()
    /// Work in and out (issue 11): the blob cache's bound (`DATA/blobs/`), the artifact bytes
    /// one run may upload, and how collection is bounded in time.
    public var blobCacheBytes: Int64 = 2 << 30
    public var maxArtifactBytesPerTask: Int64 = BlobLimits.defaultArtifactBytesPerTask
    /// Git checkouts (writing a worktree's files) at once; nil: one per core of this machine.
    /// Workers that share a machine should share its cores (the bench gives each cores / workers).
    public var checkoutSlots: Int?
    /// The largest `--checkout-slots`.
    public static let maxCheckoutSlots = 1_024
    var pipelineLimits = TaskPipeline.Limits()
    /// Time given to finished runs' files per loop iteration (WorkerAgent+Finishing.swift);
    /// at least one run's are written each time.
    var finishedFilesSliceMicros: Int64 = 500
    /// Time given to sending finished runs' results per loop iteration (at least one each
    /// time): thousands ending together are sent over several iterations, the loop free between.
    var deliverSliceMicros: Int64 = 20_000
    /// Time the scheduler's messages may take of the loop before the rest wait for the next
    /// turn (`FramedConnection.yieldTurn`; at least one message a turn). A batch of 1,000
    /// assignments (or the kills of a cancelled tree) in one read held the loop 14 s (1.6 s)
    /// in a debug build at load 20: no heartbeat, no output, no result meanwhile.
    var dispatchSliceMicros: Int64 = 20_000
    /// The largest `--blob-cache-mb` (16 TiB): a typo, not a plan, above it.
    public static let maxBlobCacheMB = 1 << 24
    public var reconnectMinMs: UInt64 = 100
    public var reconnectMaxMs: UInt64 = 5_000
    /// An unanswered connect is abandoned and tried again after this (`WorkerSession`).
    public var connectTimeoutMs: UInt64 = 5_000
    /// `--prefetch-hold`: how long an assignment sent ahead is held waiting for a slot before
    /// it is handed back to the scheduler, to go to a slot free elsewhere (ms, 1 to
    /// `maxPrefetchHoldMs`).
    public var prefetchHoldMs: Int64 = 1_000
    /// The largest `prefetchHoldMs` (a day).
    public static let maxPrefetchHoldMs: Int64 = 86_400_000
    /// What the worker keeps of finished tasks (`workers.NAME.retention`, `--retention-hours`,
    /// `--retention-gib`).
    public var retention = WorkerRetention.Limits()
    /// `--http-listen HOST:PORT`: where this worker serves `/metrics` (nil: nowhere).
    public var httpHost: String?
    public var httpPort = 0
    /// `--http-tls-cert`, `--http-tls-key`: the certificate the HTTP listener serves over
    /// HTTPS (default: certificate mode's own pair, else a self-signed one where HTTPS is
    /// needed; see `HTTPListen`).
    public var httpTLSCert: String?
    public var httpTLSKey: String?

    public init(name: String, slots: Int, dataDir: String) {
        self.name = name
        self.slots = slots
        self.dataDir = dataDir
    }
}

/// The worker: keeps a connection to the scheduler (reconnecting with backoff), runs what it
/// is assigned, and delivers every result until the scheduler acknowledges it. Tasks keep
/// running while the scheduler is away. Create, start and use on its loop's thread.
public final class WorkerAgent {
    let loop: EventLoop
    let config: WorkerConfig
    let logger: Logger
    /// `monotonic` for every deadline, timer and duration; `wall` only to date what is sent
    /// and stored (starts, results, events, log lines).
    let clocks: Clocks
    /// One journal for the agent's life: its file stays open between appends.
    let runJournal: RunJournal
    /// Connecting, registering, reconnecting and what waits for the scheduler (`WorkerSession`):
    /// this shell feeds it what happens and does what it says (`WorkerAgent+Session`).
    var session: WorkerSession
    var connection: FramedConnection?
    /// The socket whose connect is pending.
    var pendingSocket: UVTCP?
    var reconnectTimer: UVTimer?
    var connectTimer: UVTimer?
    var heartbeatTimer: UVTimer?
    var runners: [String: TaskRunner] = [:]
    /// Assignments sent ahead, waiting for a slot (WorkerAgent+Prefetch.swift), and the timer
    /// handing back those held too long (runs only while something is held).
    var held: PrefetchHold
    var holdTimer: UVTimer?
    /// Results of this loop iteration, delivered right before the next poll (`deliverFinished`),
    /// with the runner whose log is still to be closed.
    var finishing: [(result: TaskResult, runner: TaskRunner?)] = []
    var finisher: UVPrepare?
    /// Runs whose result is sent and whose files are still to write, oldest first, and the
    /// timer giving them a slice per loop iteration (WorkerAgent+Finishing.swift).
    var unwritten = KeyedQueue<String, UnwrittenRun>()
    /// Acknowledged runs whose `resultAck` is still to handle (a slice per iteration too).
    var pendingAcks = KeyedQueue<RunRef, Void>()
    var filesIdle: UVIdle?
    /// Fires every 100 ms to notice a held loop (WorkerAgent+Stalls.swift).
    var stallTimer: UVTimer?
    /// Per run, the bulk-lane ticket of its last output frame on this connection.
    var outputTickets: [RunRef: UInt64] = [:]
    var stopping = false
    /// Loop time the scheduler's messages took since the last yield (`dispatchSliceMicros`).
    var dispatchSpentMicros: Int64 = 0
    /// Prometheus metrics and the HTTP listener serving them (WorkerAgent+Metrics.swift).
    let metrics = WorkerMetrics()
    var http: HTTPServer?
    /// Where `/metrics` is served (nil: no `--http-listen`).
    public internal(set) var httpAddress: SocketAddress?
    /// The HTTPS listener's certificate and fingerprint, for the start line (nil: plain HTTP).
    public internal(set) var httpsNote: String?
    /// Digests of the scheduler's other reading tokens (cluster, submit, read) from its last
    /// `welcome`: bearer tokens `/metrics` accepts besides this worker's own.
    var readerDigests = BearerDigests()
    private var onStopped: (() -> Void)?
    var health: HealthMonitor
    var healthTimer: UVTimer?
    /// Health probes running now, by runtime; each holds one slot.
    var probes: [String: TaskRunner] = [:]
    let baseEnvironment: [String: String]
    /// What exec takes in argv + environment here, from the stack rlimit at start.
    let execLimit = ExecLimits.limit(stackRlimit: ResourceLimits.stackLimit)
    /// Tasks with work in or out (inputs, repo, workdir, artifacts) and the blob cache.
    let workspace: WorkerWorkspace
    /// Blob fetches (inputs) and uploads (artifacts) with the scheduler.
    lazy var blobs = BlobTransfers(loop: loop, logger: logger)
    /// Whether the data dir had room at the last task's start (`roomProblem`).
    var diskRoom = DiskRoom()
    /// Finished tasks' files: kept, then removed (`WorkerAgent+Retention`). A stored property,
    /// not `lazy`: a lazy one is mutated through get-and-set, which copied its whole table of
    /// kept tasks at every task acknowledged (O(tasks kept) each, a fifth of a busy worker's CPU).
    var retention: RetentionShell
    var retentionTimer: UVTimer?
    /// Holds the next measuring pass of acknowledged tasks (`RetentionShell.measureGapMs`).
    var measureTimer: UVTimer?
    /// Fatal problems (wrong token, incompatible scheduler): the worker stops.
    public var onFatal: ((String) -> Void)?
    /// TLS for the connection to the scheduler (nil: plaintext), or why it cannot be set up.
    lazy var tlsSetup: Result<TLSContext?, TLSError> = Result { () throws(TLSError) -> TLSContext? in
        guard TLSContext.enabled(token: config.token, files: config.tls) else { return nil }
        return try TLSContext(clientToken: config.token, role: .worker, name: config.name, files: config.tls)
    }

    public init(loop: EventLoop, config: WorkerConfig, logger: Logger, clocks: Clocks = .system) {
        self.loop = loop
        self.config = config
        self.logger = logger
        self.clocks = clocks
        self.held = PrefetchHold(maxHoldMs: config.prefetchHoldMs)
        self.runJournal = RunJournal(directory: config.dataDir + "/runs")
        self.session = WorkerSession(settings: .init(
            name: config.name, slots: config.slots, token: config.token,
            address: "\(config.schedulerHost):\(config.schedulerPort)", reconnectMinMs: config.reconnectMinMs,
            reconnectMaxMs: config.reconnectMaxMs, connectTimeoutMs: config.connectTimeoutMs))
        self.health = HealthMonitor(runtimes: config.runtimes, nowMs: clocks.monotonic())
        self.workspace = WorkerWorkspace(dataDir: config.dataDir, cacheBytes: config.blobCacheBytes)
        self.retention = RetentionShell(limits: config.retention)
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        // The cluster token authenticates workers and clients; tasks do not get it.
        env["SWARM_TOKEN"] = nil
        baseEnvironment = env
    }

    public var runningCount: Int { runners.count }
    var registered: Bool { session.isRegistered }
    /// Results not yet acknowledged by the scheduler, in finishing order.
    var outbox: [TaskResult] { session.outbox }
    var logsDir: String { config.dataDir + "/logs" }
    var resultsDir: String { config.dataDir + "/results" }
    var journal: RunJournal { runJournal }

    /// Creates the data directories, ends what a previous worker process on them left
    /// running (blocking up to the kill grace period), and connects.
    public func start() throws(FileError) {
        if let workDir = config.workDir {
            var info = stat()
            guard stat(workDir, &info) == 0 else { throw FileError(path: "--work-dir \(workDir)", errno: errno) }
            guard info.st_mode & S_IFMT == S_IFDIR else { throw FileError(path: "--work-dir \(workDir)", errno: ENOTDIR) }
        }
        try Files.makeDirectories(logsDir)
        try Files.makeDirectories(resultsDir)
        try Files.makeDirectories(config.workRoot)
        try Files.makeDirectories(journal.directory)
        let recovered = recoverPreviousRuns()
        scanBlobCache()
        // The pipeline's transfers (a test may have put a fake in their place).
        if workspace.blobs == nil { workspace.blobs = blobs }
        startGitWorkspace()
        startRetention()
        reconnectTimer = try! UVTimer(loop: loop)
        connectTimer = try! UVTimer(loop: loop)
        heartbeatTimer = try! UVTimer(loop: loop)
        healthTimer = try! UVTimer(loop: loop)
        // Orphans of our tasks' processes come to us, so they can be reaped (not left as zombies).
        ProcessGroup.becomeSubreaper()
        startDueProbes()
        startStallWatch()
        feed(.start(recovered: recovered, nowMs: clocks.monotonic()))
    }

    /// Kills every running task (whole groups), delivers what it can, closes everything.
    /// `completion` runs once all handles of the worker are closed.
    public func stop(_ completion: @escaping () -> Void) {
        guard !stopping else { return }
        stopping = true
        onStopped = completion
        logger.info("worker \(config.name) stopping; killing \(runners.count) running task(s)")
        refuseHeld("worker is shutting down")
        feed(.stop)
        // Reported as `lost`: the scheduler runs them again elsewhere (attempts permitting).
        for runner in runners.values {
            runner.kill(reason: "worker \(config.name) shut down while the task ran", state: .lost)
        }
        for probe in probes.values { probe.kill(reason: "worker stopping", state: .cancelled) }
        stopPipelines()
        flushFinishedFiles()
        finishStopIfIdle()
    }

    /// What a stop is waiting for: tasks (and health probes) whose process groups are not
    /// gone yet, and when the first pending SIGKILL is due.
    public struct StopProgress: Sendable, Equatable {
        public var worker: String
        public var tasks: Int
        public var probes: Int
        /// Milliseconds until the next SIGKILL of a group still in its grace period; nil when
        /// every group was sent SIGKILL already.
        public var sigkillInMs: Int64?
    }

    public var stopProgress: StopProgress {
        let now = clocks.monotonic()
        let pending = (runners.values.compactMap(\.sigkillAtMs) + probes.values.compactMap(\.sigkillAtMs)).filter { $0 > now }
        return StopProgress(worker: config.name, tasks: runners.count, probes: probes.count,
                            sigkillInMs: pending.min().map { $0 - now })
    }

    /// A stop in progress, hurried (a second signal): SIGKILL to every task's group now
    /// instead of at the end of its grace period. The stop still waits until the groups are
    /// gone and the results are written. Does nothing unless `stop` was called.
    public func hurryStop() {
        guard stopping else { return }
        logger.notice("worker \(config.name): SIGKILL to \(runners.count) task group(s) now")
        for runner in runners.values { runner.hurryKill() }
        for probe in probes.values { probe.hurryKill() }
        hurryPipelines()
    }

    func finishStopIfIdle() {
        // Once: a stop that ends preparing tasks at once gets here from their results too.
        guard stopping, onStopped != nil, runners.isEmpty, probes.isEmpty, workspace.tasks.isEmpty, finishing.isEmpty,
              unwritten.isEmpty, pendingAcks.isEmpty else { return }
        if let git = workspace.git {
            // Git commands still running (a clone for a task killed while preparing): killed.
            if !git.stopped {
                git.onIdle = { [weak self] in self?.finishStopIfIdle() }
                return git.stop()
            }
            if !git.isIdle { return }
        }
        reconnectTimer?.close(); reconnectTimer = nil
        connectTimer?.close(); connectTimer = nil
        healthTimer?.close(); healthTimer = nil
        retentionTimer?.close(); retentionTimer = nil
        measureTimer?.close(); measureTimer = nil
        holdTimer?.close(); holdTimer = nil
        heartbeatTimer?.close(); heartbeatTimer = nil
        finisher?.close(); finisher = nil
        filesIdle?.close(); filesIdle = nil
        stallTimer?.close(); stallTimer = nil
        http?.stop(); http = nil
        blobs.close()
        workspace.close()
        if let connection {
            self.connection = nil
            connection.onEnd = nil
            connection.closeAfterFlush(.local("worker stopping"))
        }
        let callback = onStopped
        onStopped = nil
        // Let the closes above run before reporting.
        loop.soon { callback?() }
    }

    func sendHeartbeat() {
        guard registered else { return }
        connection?.send(.heartbeat(.init(freeSlots: max(0, config.slots - busySlots), running: runningRuns,
                                          usage: ProcessUsage.ofSelf(at: clocks.wall()))))
    }

    /// Runs with a process, and pipeline tasks holding a slot without one (preparing, collecting).
    var runningRuns: [RunRef] {
        var runs = runners.values.map { RunRef(id: $0.id, attempt: $0.attempt) }
        if workspace.heldSlots > 0 { runs += workspace.runsWithoutProcess }
        return runs.sorted { $0.id < $1.id }
    }

    // MARK: Run journal

    /// Results a previous worker process on this data dir did not deliver, and its runs that
    /// were still going (killed now, reported `lost`): they join the outbox first.
    func recoverPreviousRuns() -> [TaskResult] {
        let recovered = journal.recover(resultsDir: resultsDir, logsDir: logsDir,
                                        killGraceMs: UInt64(max(0, config.supervisor.policy.killGraceMs)), wall: clocks.wall, logger: logger)
        if !recovered.isEmpty { logger.notice("delivering \(recovered.count) result(s) left by the previous worker process") }
        return recovered
    }

    func journalStarted(_ run: RunRef, pid: Int, spawnBootMs: ClosedRange<Int64>) {
        do { try journal.started(run, pid: Int32(pid), startedAt: clocks.wall(), spawnBootMs: spawnBootMs) } catch {
            logger.error("cannot record the run of \(run.id): \(error)")
        }
    }

    /// A start reported while the scheduler was away (or to a scheduler since restarted).
    func resendStarts() {
        for entry in journal.entries() where runners[entry.id]?.attempt == entry.attempt && runners[entry.id]?.pid != nil {
            connection?.send(.taskStarted(.init(id: entry.id, attempt: entry.attempt, pid: Int(entry.pid),
                                                startedAt: entry.startedAt ?? clocks.wall())))
        }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension WorkerAgent: Sendable {}
