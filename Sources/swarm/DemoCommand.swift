import ArgumentParser
import SwarmClient
import SwarmCluster

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a local cluster, run a visible workload and a throughput batch through it, report, stop.")

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of workers.", valueName: "N"))
    var workers = 3
    @Option(parsing: .unconditional, help: ArgumentHelp("Slots per worker.", valueName: "N"))
    var slots = 4
    @Option(parsing: .unconditional, help: ArgumentHelp("Visible tasks (each prints and sleeps 0.3 s).", valueName: "N"))
    var visible = 12
    @Option(parsing: .unconditional, help: ArgumentHelp("Trivial tasks in the throughput batch.", valueName: "N"))
    var batch = 1000
    @Option(help: ArgumentHelp("Directory for the workers' logs and results.", valueName: "DIR"))
    var dataDir = ".swarm/demo"
    @Option(help: ArgumentHelp("Run against this existing scheduler (HOST:PORT) instead of starting a local cluster.", valueName: "HOST:PORT"))
    var scheduler: String?
    @Option(help: ArgumentHelp("File holding the cluster token, with --scheduler (default: $SWARM_TOKEN).", valueName: "FILE"))
    var tokenFile: String?
    @OptionGroup var log: LogOptions

    func validate() throws {
        // The same bounds as `swarm up`: each worker is a thread with its own loop.
        guard (1...1000).contains(workers) else { throw ValidationError("--workers must be 1 to 1000, got \(workers)") }
        guard (1...100_000).contains(slots) else { throw ValidationError("--slots must be 1 to 100000, got \(slots)") }
        guard (0...10_000).contains(visible) else { throw ValidationError("--visible must be 0 to 10000, got \(visible)") }
        guard (0...1_000_000).contains(batch) else { throw ValidationError("--batch must be 0 to 1000000, got \(batch)") }
    }

    func run() throws {
        let logger = try log.bootstrap(default: .warning)
        if let scheduler {
            let report = try runClient {
                let token = try loadClusterToken(file: tokenFile)
                return try Demo.run(address: scheduler, token: token, visibleTasks: visible, batch: batch) { printLine($0) }
            }
            try check(report)
            return
        }
        var options = LocalCluster.Options()
        options.workers = workers
        options.slots = slots
        options.dataDir = dataDir
        let cluster: LocalCluster
        do { cluster = try LocalCluster(options, logger: logger) } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        defer { cluster.stop() }
        // Ctrl-C stops the cluster (its tasks' groups) before the process ends, as in `up`.
        let signals = ClusterSignalGuard(cluster)
        defer { signals.close() }
        let report = try runClient {
            do {
                return try Demo.run(address: cluster.address, token: nil, visibleTasks: visible, batch: batch) { printLine($0) }
            } catch {
                // After Ctrl-C the cluster stops under the workload: no error line, the exit
                // the signal started (130) follows (`close` waits for it).
                if signals.stopping { signals.close() }
                throw error
            }
        }
        try check(report)
    }

    private func check(_ report: Demo.Report) throws {
        if report.failed > 0 || report.ranMoreThanOnce > 0 {
            printError("\(report.failed) task(s) failed, \(report.ranMoreThanOnce) ran more than once")
            throw ExitCode(1)
        }
    }
}
