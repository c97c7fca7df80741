import ArgumentParser
import SwarmClient
import SwarmCluster
import SwarmNode
import SwarmProtocol

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run a worker: connects to the scheduler and runs the tasks it is given.")

    @Option(help: ArgumentHelp("Scheduler HOST:PORT (default: the config's scheduler address, then $SWARM_SCHEDULER, then 127.0.0.1:7700).", valueName: "HOST:PORT"))
    var scheduler: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("How many tasks may run at once (required here or in the config).", valueName: "N"))
    var slots: Int?
    @Option(help: ArgumentHelp("Worker name, 1 to 128 of A-Z a-z 0-9 . _ - (default: the host name). Unique in the cluster.", valueName: "NAME"))
    var name: String?
    @Option(help: ArgumentHelp("A KEY=VALUE label; repeatable (added to the config's labels).", valueName: "KEY=VALUE"))
    var label: [String] = []
    @Option(help: ArgumentHelp("Directory for task logs and results (default: .swarm/worker-NAME).", valueName: "DIR"))
    var dataDir: String?
    @Option(help: ArgumentHelp("One directory all tasks share (default: each task gets its own, under --work-root).", valueName: "DIR"))
    var workDir: String?
    @Option(help: ArgumentHelp("Root of the per-task working directories (default: DATA-DIR/work).", valueName: "DIR"))
    var workRoot: String?
    @Option(help: ArgumentHelp("Bytes of input blobs the worker keeps in DATA-DIR/blobs, in MiB (default 2048; least recently used evicted first).", valueName: "MIB"))
    var blobCacheMb: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Git checkouts (--repo worktrees being written) at once, 1 to 1024 (default: one per core).", valueName: "N"))
    var checkoutSlots: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Hours a finished task's log, result and work directory are kept after the scheduler has its result, 0 to 87600, decimals allowed (default 24).", valueName: "HOURS"))
    var retentionHours: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("GiB the kept finished tasks' files may take in all; past it the oldest go first (default 10).", valueName: "GIB"))
    var retentionGib: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds an assignment sent ahead (scheduler.prefetch) waits here for a free slot before it is handed back to go to a slot free elsewhere, 0.001 to 86400, decimals allowed (default 1).", valueName: "SECONDS"))
    var prefetchHold: Double?
    @Option(help: ArgumentHelp("Serve this worker's /metrics (Prometheus) over HTTP on HOST:PORT; port 0 picks a free one. Loopback only without a cluster token; with one, requests need 'Authorization: Bearer TOKEN'. HTTPS off loopback (default: off).", valueName: "HOST:PORT"))
    var httpListen: String?
    @Flag(help: "Run only the config's runtimes, no plain commands.")
    var noCommands = false
    @Option(help: ArgumentHelp("File holding the cluster token (default: $SWARM_TOKEN).", valueName: "FILE"))
    var tokenFile: String?
    @Option(help: ArgumentHelp("cluster.json: this worker's entry under 'workers' (by --name) and the scheduler's address.", valueName: "FILE"))
    var config: String?
    @OptionGroup var tls: TLSOptions
    @OptionGroup var httpTLS: HTTPTLSOptions
    @OptionGroup var log: LogOptions

    func run() throws {
        if workDir != nil && workRoot != nil {
            throw usageError("--work-dir and --work-root exclude each other (one shared directory, or one per task under a root)")
        }
        let workerName = name ?? hostName()
        if let problem = WorkerName.problem(with: workerName) {
            throw usageError(name == nil ? "the host name cannot be the worker's name (\(problem)); give --name" : "--name: \(problem)")
        }
        let file = try config.map { try loadConfig($0) }
        let entry = file?.workers[workerName]
        if let config, file != nil, entry == nil {
            throw usageError("\(config) has no entry for worker '\(workerName)' under 'workers'")
        }
        let address = scheduler ?? file?.scheduler.address ?? file?.scheduler.listen ?? environmentScheduler ?? "127.0.0.1:7700"
        guard let (host, port) = parseHostPort(address) else { throw usageError("--scheduler wants HOST:PORT, got '\(address)'") }
        // Port 0 is for listening ("any free port"); dialled, it never connects.
        guard port != 0 else { throw usageError("--scheduler wants a port from 1 to 65535 to connect to, got '\(address)'") }
        guard let slots = slots ?? entry?.slots else { throw usageError("--slots is required (or 'slots' in the config)") }
        guard (1...100_000).contains(slots) else { throw usageError("--slots must be 1 to 100000, got \(slots)") }
        var labels = entry?.labels ?? [:]
        for (k, v) in try parsePairs(label, option: "--label") { labels[k] = v }

        if let httpListen, parseHostPort(httpListen) == nil {
            throw usageError("--http-listen wants HOST:PORT, got '\(httpListen)'")
        }
        var prefetchHoldMs: Int64?
        if let seconds = prefetchHold {
            let ms = (seconds * 1_000).rounded()
            guard ms.isFinite, ms >= 1, ms <= Double(WorkerConfig.maxPrefetchHoldMs) else {
                throw usageError("--prefetch-hold must be 0.001 to \(WorkerConfig.maxPrefetchHoldMs / 1_000) seconds, got \(seconds)")
            }
            prefetchHoldMs = Int64(ms)
        }
        let logger = try log.bootstrap(default: .info)
        var settings = WorkerConfig(name: workerName, slots: slots, dataDir: dataDir ?? entry?.dataDir ?? ".swarm/worker-\(workerName)")
        settings.schedulerHost = host
        settings.schedulerPort = port
        settings.labels = labels
        settings.tls = try tls.files(cert: entry?.tlsCert, key: entry?.tlsKey, ca: entry?.tlsCa)
        if let pair = try httpTLS.pair(cert: entry?.httpTlsCert, key: entry?.httpTlsKey) {
            settings.httpTLSCert = pair.cert
            settings.httpTLSKey = pair.key
        }
        settings.workDir = workDir ?? entry?.workDir
        if let file { settings.apply(file, worker: workerName) }
        if let workRoot { settings.workRootDir = workRoot }
        if noCommands { settings.allowsCommands = false }
        if let httpListen, let (httpHost, httpPort) = parseHostPort(httpListen) {
            settings.httpHost = httpHost
            settings.httpPort = httpPort
        }
        if let blobCacheMb {
            guard (1...WorkerConfig.maxBlobCacheMB).contains(blobCacheMb) else {
                throw usageError("--blob-cache-mb must be 1 to \(WorkerConfig.maxBlobCacheMB), got \(blobCacheMb)")
            }
            settings.blobCacheBytes = Int64(blobCacheMb) << 20
        }
        if let checkoutSlots {
            guard (1...WorkerConfig.maxCheckoutSlots).contains(checkoutSlots) else {
                throw usageError("--checkout-slots must be 1 to \(WorkerConfig.maxCheckoutSlots), got \(checkoutSlots)")
            }
            settings.checkoutSlots = checkoutSlots
        }
        if retentionHours != nil || retentionGib != nil {
            if let problem = WorkerRetention.Limits.problem(maxAgeHours: retentionHours, maxGiB: retentionGib,
                                                             what: ("--retention-hours", "--retention-gib")) {
                throw usageError(problem)
            }
            settings.retention = WorkerRetention.Limits(
                maxAgeHours: retentionHours ?? Double(settings.retention.maxAgeMs) / 3_600_000,
                maxGiB: retentionGib ?? Double(settings.retention.maxBytes) / 1_073_741_824)
        }
        if let prefetchHoldMs { settings.prefetchHoldMs = prefetchHoldMs }
        let code: Int32
        do {
            settings.token = try loadClusterToken(file: tokenFile ?? entry?.tokenFile ?? file?.scheduler.workerTokenFile ?? file?.scheduler.tokenFile)
            code = try Foreground.runWorker(settings, logger: logger) { http, https in
                printLine("swarm worker http listening on \(http)")
                if let https { printLine("swarm worker \(https)") }
            }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
