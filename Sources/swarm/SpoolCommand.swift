import ArgumentParser
import Foundation
import SwarmClient
import SwarmProtocol

/// `swarm spool DIR`: a drop-in for the original file-based coordinator (issue 18).
struct SpoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Serve the original coordinator's DIR/requests/ through the cluster: each request JSON becomes a task, its result DIR/results/ID.json.")

    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("Runtime of requests that name none (default: claude).", valueName: "NAME"))
    var runtime: String?
    @Option(help: ArgumentHelp("Model of requests that name none (default: the runtime's defaultModel).", valueName: "M"))
    var model: String?
    @Argument(help: ArgumentHelp("The directory holding requests/ (created with processing/, results/, done/, rejected/ when missing).", valueName: "DIR"))
    var dir: String

    func validate() throws {
        // The same rules as a task's own fields, checked on a task that has only them.
        var probe = TaskSpec(id: "spool", runtime: runtime ?? "claude", model: model, prompt: "-")
        probe.objective = nil
        if let problem = probe.problem() { throw ValidationError(problem) }
        if dir.isEmpty { throw ValidationError("DIR is empty") }
    }

    func run() throws {
        let connection = try runClient { try client.client() }
        // A long-running server: its stdout reader going away does not stop it (Swarm.swift).
        connection.whileWaiting = nil
        let absolute = URL(fileURLWithPath: dir).standardizedFileURL.path
        var options = Spool.Options(dir: absolute)
        options.defaults = SpoolRequest.Defaults(runtime: runtime ?? "claude", model: model)
        options.exitWithParent = ProcessInfo.processInfo.environment["SWARM_EXIT_WITH_PARENT"].flatMap { Int32($0) }.flatMap { $0 > 1 ? $0 : nil }
        let spool = Spool(options, client: connection) { line in
            Console.write("swarm spool: \(PeerText.safe(line, limit: maxErrorCharacters))\n", to: 2)
        }
        try runClient {
            try spool.run { printLine("swarm spool serving \(absolute) through \(connection.address)") }
        }
    }
}
