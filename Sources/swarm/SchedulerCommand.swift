import ArgumentParser
import SwarmClient
import SwarmCluster
import SwarmScheduler

struct SchedulerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler", abstract: "Run the scheduler: accepts workers and clients, places tasks.")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen = "127.0.0.1:7700"
    @Option(help: "Directory for the scheduler's state.")
    var stateDir = ".swarm/scheduler"
    @Option(help: "File holding the cluster token (default: $SWARM_TOKEN).")
    var tokenFile: String?
    @Option(help: "Seconds without a heartbeat before a worker is marked lost.")
    var lostAfter: Double = 10
    @Option(help: "Seconds between worker heartbeats.")
    var heartbeat: Double = 1
    @Flag(help: "Allow a non-loopback listen address without a token (anyone reaching it can run commands).")
    var insecureListenAny = false
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard parseHostPort(listen) != nil else { throw ValidationError("--listen wants HOST:PORT, got '\(listen)'") }
        guard lostAfter > 0, heartbeat > 0 else { throw ValidationError("--lost-after and --heartbeat must be positive") }
        guard heartbeat < lostAfter else { throw ValidationError("--heartbeat must be shorter than --lost-after") }
    }

    func run() throws {
        let logger = try log.bootstrap(default: .info)
        var config = SchedulerConfig()
        let (host, port) = parseHostPort(listen)!
        config.host = host
        config.port = port
        config.stateDir = stateDir
        config.insecureListenAny = insecureListenAny
        config.settings.lostAfterMs = Int64(lostAfter * 1000)
        config.settings.heartbeatMs = max(1, Int(heartbeat * 1000))
        do {
            config.token = try loadClusterToken(file: tokenFile)
            try Foreground.runScheduler(config, logger: logger) { address in
                printLine("swarm scheduler listening on \(address)")
            }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}
