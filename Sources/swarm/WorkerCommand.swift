import ArgumentParser
import SwarmClient
import SwarmCluster
import SwarmNode

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run a worker: connects to the scheduler and runs the tasks it is given.")

    @Option(help: "Scheduler HOST:PORT.")
    var scheduler = "127.0.0.1:7700"
    @Option(help: "How many tasks may run at once.")
    var slots: Int
    @Option(help: "Worker name (default: the host name). Unique in the cluster.")
    var name: String?
    @Option(help: "A KEY=VALUE label; repeatable.")
    var label: [String] = []
    @Option(help: "Directory for task logs and results (default: .swarm/worker-NAME).")
    var dataDir: String?
    @Option(help: "Directory tasks run in (default: the current directory).")
    var workDir: String?
    @Option(help: "File holding the cluster token (default: $SWARM_TOKEN).")
    var tokenFile: String?
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard parseHostPort(scheduler) != nil else { throw ValidationError("--scheduler wants HOST:PORT, got '\(scheduler)'") }
        guard (1...100_000).contains(slots) else { throw ValidationError("--slots must be 1 to 100000, got \(slots)") }
        if let name, name.isEmpty || name.utf8.count > 255 { throw ValidationError("--name must be 1 to 255 bytes") }
        _ = try parsePairs(label, option: "--label")
    }

    func run() throws {
        let logger = try log.bootstrap(default: .info)
        let workerName = name ?? hostName()
        var config = WorkerConfig(name: workerName, slots: slots, dataDir: dataDir ?? ".swarm/worker-\(workerName)")
        let (host, port) = parseHostPort(scheduler)!
        config.schedulerHost = host
        config.schedulerPort = port
        config.labels = try parsePairs(label, option: "--label")
        config.workDir = workDir
        let code: Int32
        do {
            config.token = try loadClusterToken(file: tokenFile)
            code = try Foreground.runWorker(config, logger: logger)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
