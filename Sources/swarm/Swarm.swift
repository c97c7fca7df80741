import ArgumentParser
import SwarmUV

@main
enum SwarmMain {
    static func main() {
        // A parent may hand us a blocked signal mask (threads of test runners and shells
        // do): SIGCHLD blocked would hide every child's exit, SIGTERM would not stop us.
        EventLoop.resetSignalMask()
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do {
            command = try Swarm.parseAsRoot(arguments)
        } catch {
            // Usage errors: one line, exit 64. Help and version requests print as usual.
            if Swarm.exitCode(for: error) == .validationFailure {
                let sub = arguments.first.map { Swarm.configuration.subcommands.compactMap { $0.configuration.commandName }.contains($0) ? " \($0)" : "" } ?? ""
                printError("\(Swarm.message(for: error)) (see 'swarm\(sub) --help')")
                Swarm.exit(withError: ExitCode.validationFailure)
            }
            Swarm.exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            Swarm.exit(withError: error)
        }
    }
}

struct Swarm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm",
        abstract: "Run agent processes (or any command) across a cluster of machines.",
        subcommands: [
            SchedulerCommand.self, WorkerCommand.self, SubmitCommand.self, StatusCommand.self,
            WaitCommand.self, TasksCommand.self, NodesCommand.self, CancelCommand.self, LogsCommand.self,
            StatsCommand.self, DrainCommand.self, UpCommand.self, DemoCommand.self, BenchCommand.self,
        ]
    )
}
