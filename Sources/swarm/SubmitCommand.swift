import ArgumentParser
import SwarmClient
import SwarmProtocol

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Submit a task; prints its id.",
        usage: "swarm submit [--scheduler HOST:PORT] [--id ID] [--wait] [--json] -- COMMAND [ARGS...]")

    @OptionGroup var client: ClientOptions
    @Option(help: "Task id ([A-Za-z0-9._-], 1-128 characters); generated when absent.")
    var id: String?
    @Option(help: "A KEY=VALUE environment variable for the task; repeatable.")
    var env: [String] = []
    @Flag(help: "Wait for the task to end; exit 0 only if it succeeded.")
    var wait = false
    @Flag(help: "Print the task as JSON (with --wait, once it has ended).")
    var json = false
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        // The command captures everything after the options, so a help flag lands there.
        if let first = command.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
        if let first = command.first, first.hasPrefix("-"), first != "--" {
            throw ValidationError("unknown option '\(first)' (the command goes after --)")
        }
        guard !argv.isEmpty else { throw ValidationError("missing command: swarm submit [options] -- COMMAND [ARGS...]") }
        if let id, let problem = TaskID.problem(with: id) { throw ValidationError(problem) }
        _ = try parsePairs(env, option: "--env")
    }

    func run() throws {
        let spec = TaskSpec(id: id, command: argv, env: env.isEmpty ? nil : try parsePairs(env, option: "--env"))
        let info: TaskInfo? = try runClient {
            let client = try client.client()
            let id = try client.submit(spec)
            if !wait {
                if json { printLine(Output.json(try client.status(id))) } else { printLine(id) }
                return nil
            }
            if !json { printLine(id) }
            return try client.wait([id])[0]
        }
        guard let info else { return }
        if json { printLine(Output.json(info)) }
        if info.state != .succeeded {
            if !json { printError("task \(info.id) \(info.state.rawValue)\(info.reason.map { ": \($0)" } ?? "")") }
            throw ExitCode(1)
        }
    }
}
