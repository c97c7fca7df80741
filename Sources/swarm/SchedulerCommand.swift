import ArgumentParser
import SwarmClient
import SwarmCluster
import SwarmScheduler

struct SchedulerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler", abstract: "Run the scheduler: accepts workers and clients, places tasks.")

    @Option(help: ArgumentHelp("HOST:PORT to listen on; port 0 picks a free one (default 127.0.0.1:7700).", valueName: "HOST:PORT"))
    var listen: String?
    @Option(help: ArgumentHelp("Directory for the scheduler's durable state, swarm.db (default .swarm/scheduler).", valueName: "DIR"))
    var stateDir: String?
    @Option(help: ArgumentHelp("File holding the cluster token (default: $SWARM_TOKEN).", valueName: "FILE"))
    var tokenFile: String?
    @Option(help: ArgumentHelp("File holding the worker token: its holders may register workers and run tasks, nothing else (needs the cluster token too).", valueName: "FILE"))
    var workerTokenFile: String?
    @Option(help: ArgumentHelp("File holding the submit token: its holders may submit, cancel, read and fetch (needs the cluster token too).", valueName: "FILE"))
    var submitTokenFile: String?
    @Option(help: ArgumentHelp("File holding the read token: its holders may only read (status, tasks, nodes, logs, stats, metrics; needs the cluster token too).", valueName: "FILE"))
    var readTokenFile: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds without a heartbeat before a worker is marked lost (default 10).", valueName: "SECONDS"))
    var lostAfter: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds between worker heartbeats (default 1).", valueName: "SECONDS"))
    var heartbeat: Double?
    @Option(help: ArgumentHelp("cluster.json to read the 'scheduler' section from; flags override it.", valueName: "FILE"))
    var config: String?
    @Option(help: ArgumentHelp("Placement policy: spread (most free slots first, default) or binpack (fewest that fit).", valueName: "spread|binpack"))
    var placement: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Assignments sent ahead to a worker whose slots are all busy, started there the moment a slot frees; per worker, 0 to 64, 0 off (default \(SchedulerSettings.defaultPrefetch)).", valueName: "N"))
    var prefetch: Int?
    @Option(help: ArgumentHelp("MODEL=N: at most N running tasks with this model cluster-wide; repeatable.", valueName: "MODEL=N"))
    var modelLimit: [String] = []
    @Option(help: ArgumentHelp("Serve /metrics (Prometheus) over HTTP on HOST:PORT; port 0 picks a free one. Loopback only without a cluster token; with one, requests need 'Authorization: Bearer TOKEN'. HTTPS off loopback (default: off).", valueName: "HOST:PORT"))
    var httpListen: String?
    @Flag(help: "Keep the state in memory only: nothing survives a restart, no fsync per turn (benchmarks, throwaway clusters).")
    var inMemory = false
    @Flag(help: "Allow a non-loopback listen address without a token (anyone reaching it can run commands).")
    var insecureListenAny = false
    @OptionGroup var tls: TLSOptions
    @OptionGroup var httpTLS: HTTPTLSOptions
    @OptionGroup var log: LogOptions

    func run() throws {
        let file = try config.map { path in try loadConfig(path) }?.scheduler
        let listen = self.listen ?? file?.listen ?? "127.0.0.1:7700"
        let lostAfter = self.lostAfter ?? file?.lostAfterSeconds ?? ClusterFile.SchedulerSection.defaultLostAfterSeconds
        let heartbeat = self.heartbeat ?? file?.heartbeatSeconds ?? ClusterFile.SchedulerSection.defaultHeartbeatSeconds
        guard let (host, port) = parseHostPort(listen) else { throw usageError("--listen wants HOST:PORT, got '\(listen)'") }
        if let problem = ClusterFile.SchedulerSection.timingProblem(heartbeat: heartbeat, lostAfter: lostAfter) {
            throw usageError(problem)
        }

        let http = try (httpListen ?? file?.httpListen).map { text in
            guard let (host, port) = parseHostPort(text) else { throw usageError("--http-listen wants HOST:PORT, got '\(text)'") }
            return (host, port)
        }
        let logger = try log.bootstrap(default: .info)
        var settings = SchedulerConfig()
        settings.host = host
        settings.port = port
        settings.httpHost = http?.0
        settings.httpPort = http?.1 ?? 0
        settings.stateDir = stateDir ?? file?.stateDir ?? ".swarm/scheduler"
        settings.durable = !inMemory
        settings.insecureListenAny = insecureListenAny
        settings.tls = try tls.files(cert: file?.tlsCert, key: file?.tlsKey, ca: file?.tlsCa)
        if let pair = try httpTLS.pair(cert: file?.httpTlsCert, key: file?.httpTlsKey) {
            settings.httpTLSCert = pair.cert
            settings.httpTLSKey = pair.key
        }
        settings.settings.lostAfterMs = Int64(lostAfter * 1000)
        settings.settings.heartbeatMs = max(1, Int(heartbeat * 1000))
        let policyName = placement ?? file?.placement ?? "spread"
        guard let policy = PlacementPolicy(rawValue: policyName) else {
            throw usageError("--placement must be spread or binpack, got '\(policyName)'")
        }
        settings.settings.placementPolicy = policy
        let prefetch = self.prefetch ?? file?.prefetch ?? SchedulerSettings.defaultPrefetch
        guard (0...SchedulerSettings.maxPrefetch).contains(prefetch) else {
            throw usageError("--prefetch must be 0 to \(SchedulerSettings.maxPrefetch), got \(prefetch)")
        }
        settings.settings.prefetch = prefetch
        var limits = file?.modelLimits ?? [:]
        for (model, value) in try parsePairs(modelLimit, option: "--model-limit") {
            guard let n = Int(value), (0...1_000_000_000).contains(n) else {
                throw usageError("--model-limit wants MODEL=N with N from 0 to 1000000000 (as in cluster.json), got '\(model)=\(value)'")
            }
            limits[model] = n
        }
        settings.settings.modelLimits = limits
        if let bytes = file?.maxInputBytesPerTask { settings.settings.maxInputBytesPerTask = bytes }
        if let retention = file?.retention { settings.retention = retention }
        do {
            settings.token = try loadClusterToken(file: tokenFile ?? file?.tokenFile)
            settings.workerToken = try (workerTokenFile ?? file?.workerTokenFile).flatMap { try loadClusterToken(file: $0) }
            settings.submitToken = try (submitTokenFile ?? file?.submitTokenFile).flatMap { try loadClusterToken(file: $0) }
            settings.readToken = try (readTokenFile ?? file?.readTokenFile).flatMap { try loadClusterToken(file: $0) }
            try Foreground.runScheduler(settings, logger: logger) { address, http, https in
                printLine("swarm scheduler listening on \(address)")
                // After the line above: harnesses take the first "listening on" as the scheduler's.
                if let http { printLine("swarm scheduler http listening on \(http)") }
                if let https { printLine("swarm scheduler \(https)") }
            }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// Reads cluster.json, turning its problems into a one-line usage error.
func loadConfig(_ path: String) throws -> ClusterFile {
    do { return try ClusterFile.load(path: path) } catch let error as ConfigError {
        throw usageError(error.description)
    }
}
