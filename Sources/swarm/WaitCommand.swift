import ArgumentParser
import SwarmClient

struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait for tasks to end; exit 0 only if all succeeded (124 on timeout).")

    @OptionGroup var client: ClientOptions
    @Option(help: "Give up after this many seconds.")
    var timeout: Double?
    @Flag(help: "Print the tasks as a JSON array.")
    var json = false
    @Argument(help: "Task ids.")
    var ids: [String]

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("give at least one task id") }
        if let timeout, !(timeout > 0 && timeout <= 1e9) { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() throws {
        let infos = try runClient { try client.client().wait(ids, timeoutSeconds: timeout) }
        if json {
            printLine(Output.json(infos))
        } else {
            for info in infos {
                printLine("\(info.id) \(info.state.rawValue)\(info.exitCode.map { " (exit \($0))" } ?? "")")
            }
        }
        if infos.contains(where: { $0.state != .succeeded }) { throw ExitCode(1) }
    }
}
