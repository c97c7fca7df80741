import ArgumentParser
import SwarmUV

@main
enum SwarmMain {
    static func main() {
        // A parent may hand us a blocked signal mask (threads of test runners and shells
        // do): SIGCHLD blocked would hide every child's exit, SIGTERM would not stop us.
        EventLoop.resetSignalMask()
        Swarm.main()
    }
}

struct Swarm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm",
        abstract: "Run agent processes (or any command) across a cluster of machines.",
        subcommands: [
            SchedulerCommand.self, WorkerCommand.self, SubmitCommand.self, StatusCommand.self,
            WaitCommand.self, TasksCommand.self, NodesCommand.self, UpCommand.self, DemoCommand.self,
        ]
    )
}
