import ArgumentParser
import SwarmProtocol
import SwarmUV

@main
enum SwarmMain {
    static func main() {
        // A parent may hand us a blocked signal mask (threads of test runners and shells
        // do): SIGCHLD blocked would hide every child's exit, SIGTERM would not stop us.
        EventLoop.resetSignalMask()
        Console.ignoreSigpipe()
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.isEmpty {
            // No verb is a usage error like any other (exit 64), with the usage to pick one.
            Console.write(Swarm.helpMessage() + "\n", to: 2)
            printError("no command given (see 'swarm --help')")
            Swarm.exit(withError: ExitCode.validationFailure)
        }
        var command: ParsableCommand
        do {
            command = try Swarm.parseAsRoot(arguments)
        } catch {
            // Usage errors: one line, exit 64. Help and version requests print as usual.
            if Swarm.exitCode(for: error) == .validationFailure {
                printError("\(Swarm.message(for: error)) (see 'swarm\(sub(arguments)) --help')")
                Swarm.exit(withError: ExitCode.validationFailure)
            }
            Swarm.exit(withError: error)
        }
        // Commands that own processes (and the spool, a server) keep going when their stdout
        // reader leaves (see Console).
        let ownsProcesses: [ParsableCommand.Type] = [UpCommand.self, WorkerCommand.self, SchedulerCommand.self,
                                                     DemoCommand.self, BenchCommand.self, SpoolCommand.self]
        if ownsProcesses.contains(where: { $0 == type(of: command) }) { Console.onBrokenPipe = .dropOutput }
        do {
            try command.run()
        } catch let error as ValidationError {
            // Found while running (a bad K=V, an unknown log level): one line like the
            // parser's own usage errors, never ArgumentParser's Error:/Usage: block.
            printError("\(error.message) (see 'swarm\(sub(arguments)) --help')")
            Swarm.exit(withError: ExitCode.validationFailure)
        } catch {
            Swarm.exit(withError: error)
        }
    }
}

/// ` VERB` when the first argument is a verb, else "": for "see 'swarm VERB --help'".
private func sub(_ arguments: [String]) -> String {
    arguments.first.map { Swarm.configuration.subcommands.compactMap { $0.configuration.commandName }.contains($0) ? " \($0)" : "" } ?? ""
}

struct Swarm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm",
        abstract: "Run agent processes (or any command) across a cluster of machines.",
        version: "swarm \(SwarmVersion.description)",
        subcommands: [
            SchedulerCommand.self, WorkerCommand.self, SubmitCommand.self, StatusCommand.self,
            WaitCommand.self, FetchCommand.self, TasksCommand.self, NodesCommand.self, CancelCommand.self, LogsCommand.self,
            StatsCommand.self, DrainCommand.self, UndrainCommand.self, RerunCommand.self, GcCommand.self, SpoolCommand.self, UpCommand.self, DemoCommand.self, BenchCommand.self, TLSCommand.self,
        ]
    )
}
