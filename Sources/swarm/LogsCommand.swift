import ArgumentParser
import Foundation
import SwarmClient

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a task's output (the whole log, from its worker); with -f follow it until the task ends (exit 0 only if it succeeded).")

    @OptionGroup var client: ClientOptions
    @Flag(name: [.short, .long], help: "Keep printing output as it comes until the task ends.")
    var follow = false
    @Option(parsing: .unconditional, help: ArgumentHelp("Print only the last N lines (1-\(LogView.maxTail)) of what is stored; with -f, then what comes.", valueName: "N"))
    var tail: String?
    @Flag(help: "Also print the worker's lifecycle lines (start, warnings, extensions, kills, result) as '[swarm] TIME TEXT'.")
    var lifecycle = false
    @Argument(help: "Task id.")
    var id: String

    /// `--tail` as a count; nil when absent or out of range (`validate` refuses that).
    var tailLines: Int? { tail.flatMap { Int($0) }.flatMap { (1...LogView.maxTail).contains($0) ? $0 : nil } }

    func validate() throws {
        if let tail, tailLines == nil {
            throw ValidationError("--tail must be a whole number from 1 to \(LogView.maxTail), got '\(tail)'")
        }
    }

    func run() throws {
        var view = LogView(options: .init(tail: tailLines, lifecycle: lifecycle))
        let state = try runClient {
            let state = try client.client().logChunks(id, follow: follow) { chunk in writePieces(view.feed(chunk)) }
            writePieces(view.finish())
            return state
        }
        guard follow else { return }
        if state != .succeeded {
            printOutcome("task \(id) \(state?.rawValue ?? "ended")")
            throw ExitCode(1)
        }
    }
}

/// Writes what a `LogView` gives, consecutive pieces for one stream in one write.
func writePieces(_ pieces: [(LogView.Sink, String)]) {
    var index = 0
    while index < pieces.count {
        let sink = pieces[index].0
        var text = ""
        while index < pieces.count, pieces[index].0 == sink {
            text += pieces[index].1
            index += 1
        }
        // Through Console: a closed stdout ends the command quietly (EPIPE), never a trap.
        Console.write(text, to: sink == .stdout ? 1 : 2)
    }
}
