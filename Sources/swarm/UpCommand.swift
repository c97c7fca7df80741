import ArgumentParser
import SwarmClient
import SwarmCluster
import SwarmScheduler

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Run a local cluster (scheduler + workers on loopback) until Ctrl-C.")

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of workers.", valueName: "N"))
    var workers = 3
    @Option(parsing: .unconditional, help: ArgumentHelp("Slots per worker.", valueName: "N"))
    var slots = 4
    @Option(help: ArgumentHelp("Scheduler HOST:PORT (loopback); port 0 picks a free one.", valueName: "HOST:PORT"))
    var listen = "127.0.0.1:7700"
    @Option(help: ArgumentHelp("Serve /metrics and the web dashboard on HOST:PORT (loopback unless the cluster has a token); off by default.", valueName: "HOST:PORT"))
    var httpListen: String?
    @Option(help: ArgumentHelp("Directory for the scheduler's state and the workers' logs and results.", valueName: "DIR"))
    var dataDir = ".swarm/local"
    @Option(help: ArgumentHelp("cluster.json with runtimes and timeouts for the local workers.", valueName: "FILE"))
    var config: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Assignments sent ahead to a worker whose slots are all busy (as `swarm scheduler --prefetch`; 0 off).", valueName: "N"))
    var prefetch: Int?
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard parseHostPort(listen) != nil else { throw ValidationError("--listen wants HOST:PORT, got '\(listen)'") }
        if let httpListen, parseHostPort(httpListen) == nil {
            throw ValidationError("--http-listen wants HOST:PORT, got '\(httpListen)'")
        }
        guard (1...1000).contains(workers) else { throw ValidationError("--workers must be 1 to 1000, got \(workers)") }
        guard (1...100_000).contains(slots) else { throw ValidationError("--slots must be 1 to 100000, got \(slots)") }
        if let prefetch, !(0...SchedulerSettings.maxPrefetch).contains(prefetch) {
            throw ValidationError("--prefetch must be 0 to \(SchedulerSettings.maxPrefetch), got \(prefetch)")
        }
    }

    func run() throws {
        let logger = try log.bootstrap(default: .warning)
        var options = LocalCluster.Options()
        (options.host, options.port) = parseHostPort(listen)!
        options.workers = workers
        options.slots = slots
        options.dataDir = dataDir
        options.durable = true
        if let (host, port) = httpListen.flatMap(parseHostPort) { (options.httpHost, options.httpPort) = (host, port) }
        if let config {
            let file = try loadConfig(config)
            options.clusterFile = file
            if let name = file.scheduler.placement, let policy = PlacementPolicy(rawValue: name) { options.settings.placementPolicy = policy }
            options.settings.modelLimits = file.scheduler.modelLimits ?? [:]
            if let bytes = file.scheduler.maxInputBytesPerTask { options.settings.maxInputBytesPerTask = bytes }
            if let retention = file.scheduler.retention { options.retention = retention }
            // Checked at load by the same rule `scheduler` applies (ClusterFile.timingProblem).
            if let seconds = file.scheduler.lostAfterSeconds { options.settings.lostAfterMs = Int64(seconds * 1000) }
            if let seconds = file.scheduler.heartbeatSeconds { options.settings.heartbeatMs = max(1, Int(seconds * 1000)) }
            if let n = file.scheduler.prefetch { options.settings.prefetch = n }
        }
        if let prefetch { options.settings.prefetch = prefetch }
        do {
            try Foreground.runLocalCluster(options, logger: logger) { cluster in
                printLine("swarm scheduler listening on \(cluster.address)")
                if let http = cluster.httpAddress { printLine("swarm scheduler http listening on \(http) (dashboard: http://\(http)/)") }
                printLine("local cluster: \(workers) workers x \(slots) slots (\(cluster.workerNames.joined(separator: ", "))); Ctrl-C stops it")
                printLine("try: swarm submit --scheduler \(cluster.address) --wait -- echo hello")
            }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}
