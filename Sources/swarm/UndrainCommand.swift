import ArgumentParser
import SwarmClient

struct UndrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undrain",
        abstract: "Undo 'swarm drain': place tasks on the worker again. Prints the nodes.",
        discussion: "A drain is saved by a durable scheduler and holds across its restarts until undone here; a worker that is stopping stays draining.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the nodes as a JSON array.")
    var json = false
    @Argument(help: ArgumentHelp("Worker name.", valueName: "NODE"))
    var node: String

    func run() throws {
        let nodes = try runClient { try client.client().undrain(node: node) }
        printLine(json ? Output.json(nodes) : Output.nodeTable(nodes))
    }
}
