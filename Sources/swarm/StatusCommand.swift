import ArgumentParser
import SwarmClient

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show one task.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print JSON.")
    var json = false
    @Argument(help: "Task id.")
    var id: String

    func run() throws {
        let info = try runClient { try client.client().status(id) }
        printLine(json ? Output.json(info) : Output.taskDetail(info))
    }
}
