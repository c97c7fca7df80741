import ArgumentParser
import Foundation
import SwarmClient

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a task's log; with -f follow it until the task ends (exit 0 only if it succeeded).")

    @OptionGroup var client: ClientOptions
    @Flag(name: [.short, .long], help: "Keep printing output as it comes until the task ends.")
    var follow = false
    @Argument(help: "Task id.")
    var id: String

    func run() throws {
        let state = try runClient {
            try client.client().logs(id, follow: follow) { text in
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
        guard follow else { return }
        if state != .succeeded {
            printError("task \(id) \(state?.rawValue ?? "ended")")
            throw ExitCode(1)
        }
    }
}
