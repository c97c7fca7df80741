import ArgumentParser
import SwarmClient

struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nodes", abstract: "List workers.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print a JSON array.")
    var json = false

    func run() throws {
        let nodes = try runClient { try client.client().listNodes() }
        printLine(json ? Output.json(nodes) : Output.nodeTable(nodes))
    }
}
