import ArgumentParser
import SwarmClient

struct DrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Place nothing more on a worker; what runs there finishes. Prints the nodes.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the nodes as a JSON array.")
    var json = false
    @Argument(help: "Worker name.")
    var node: String

    func run() throws {
        let nodes = try runClient { try client.client().drain(node: node) }
        printLine(json ? Output.json(nodes) : Output.nodeTable(nodes))
    }
}
