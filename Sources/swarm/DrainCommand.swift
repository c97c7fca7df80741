import ArgumentParser
import SwarmClient

struct DrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Place nothing more on a worker; what runs there finishes. Prints the nodes.",
        discussion: "A durable scheduler saves the drain: it holds across its restarts and the worker's reconnects until 'swarm undrain NODE'.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the nodes as a JSON array.")
    var json = false
    @Argument(help: ArgumentHelp("Worker name.", valueName: "NODE"))
    var node: String

    func run() throws {
        let nodes = try runClient { try client.client().drain(node: node) }
        printLine(json ? Output.json(nodes) : Output.nodeTable(nodes))
    }
}
