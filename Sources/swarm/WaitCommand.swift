import ArgumentParser
import Foundation
import SwarmClient
import SwarmProtocol

struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait for tasks to end; exit 0 only if all succeeded (124 on timeout).")

    @OptionGroup var client: ClientOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("Give up after this many seconds.", valueName: "SECONDS"))
    var timeout: Double?
    @Flag(help: "Print the tasks as a JSON array.")
    var json = false
    @Flag(help: "Wait for the task and every descendant, also those submitted while it waits (one task id).")
    var recursive = false
    @Argument(help: "Task ids.")
    var ids: [String]

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("give at least one task id") }
        if recursive && ids.count != 1 { throw ValidationError("--recursive takes one task id, got \(ids.count)") }
        if let timeout, !(timeout > 0 && timeout <= 1e9) {
            throw ValidationError("--timeout must be more than 0 and at most 1000000000 seconds, got \(timeout)")
        }
    }

    func run() throws {
        let connection = try runClient { try client.client() }
        let infos: [TaskInfo]
        do {
            infos = try recursive ? connection.waitTreeShowingProgress(ids[0], json: json, timeoutSeconds: timeout)
                : connection.waitShowingProgress(ids, json: json, timeoutSeconds: timeout)
        } catch .waitTimedOut {
            try reportTimeout(connection)
            throw ExitCode(124)
        } catch {
            throw try runClient { throw error }
        }
        print(infos)
        if infos.contains(where: { $0.state != .succeeded }) { throw ExitCode(1) }
    }

    private func print(_ infos: [TaskInfo]) {
        if json {
            printLine(Output.json(infos))
        } else {
            for info in infos {
                let pending = info.state.isTerminal ? "" : " (still pending)"
                printLine("\(info.id) \(info.state.rawValue)\(info.exitCode.map { " (exit \($0))" } ?? "")\(pending)")
            }
        }
    }

    /// On a timeout: every task as it is now (the ended ones with their results, the others
    /// queued or running), in the same forms as a full answer, and one line naming the tasks
    /// still pending. The exit code stays 124.
    private func reportTimeout(_ connection: SwarmClient) throws {
        let infos = try runClient { () throws -> [TaskInfo] in
            if recursive { return try connection.tree(id: ids[0]).entries.map(\.task) }
            return try ids.map { id throws(ClientError) in try connection.status(id) }
        }
        print(infos)
        let pending = infos.filter { !$0.state.isTerminal }.map(\.id)
        let shown = pending.prefix(10).joined(separator: ", ") + (pending.count > 10 ? ", ..." : "")
        let what = recursive ? "the tree of \(ids[0])" : ids.count == 1 ? ids[0] : "\(ids.count) tasks"
        printError("timed out after \(String(format: "%g s", timeout ?? 0)) waiting for \(what): "
            + "\(pending.count) still pending (\(shown)), \(infos.count - pending.count) ended")
    }
}
