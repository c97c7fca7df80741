import ArgumentParser
import SwarmClient
import SwarmProtocol

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Task counters by model and runtime health, per worker and cluster-wide.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print JSON: {\"cluster\": ..., \"workers\": {NAME: ...}}.")
    var json = false

    func run() throws {
        let stats = try runClient { try client.client().stats() }
        printLine(json ? Output.json(StatsSnapshot(stats)) : Output.stats(stats))
    }
}
