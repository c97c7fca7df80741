import ArgumentParser
import SwarmClient
import SwarmProtocol

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a task: a queued one ends at once, a running one is killed. A task that had already ended is left as it is (exit 0). --recursive: the task and every descendant.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the task as JSON.")
    var json = false
    @Flag(help: "Cancel the task and every task whose parent chain leads to it, in one request; prints how many.")
    var recursive = false
    @Argument(help: "Task id.")
    var id: String

    func run() throws {
        if recursive {
            let reply = try runClient { try client.client().cancelTree(id) }
            printLine(json ? Output.json(CancelledTree(reply)) : TreeOutput.cancelled(reply))
            return
        }
        let info = try runClient {
            let client = try client.client()
            do {
                return try client.cancel(id)
            } catch ClientError.server(.taskEnded, _) {
                // A scheduler before issue 10 refuses to cancel an ended task: show its state.
                return try client.status(id)
            }
        }
        if info.state.isTerminal && info.state != .cancelled {
            // Ended before the cancel: nothing to do, and not an error.
            printLine(json ? Output.json(info) : "\(info.id) had already ended (\(info.state.rawValue)); nothing to cancel")
        } else {
            printLine(json ? Output.json(info) : Output.cancelled(info))
        }
    }
}

/// `swarm cancel --recursive --json`: the counts of `treeCancelled`.
struct CancelledTree: Encodable {
    var id: String
    var total: Int
    var cancelled: Int
    var killing: Int
    var alreadyEnded: Int

    init(_ reply: Message.TreeCancelled) {
        id = reply.id; total = reply.total; cancelled = reply.cancelled; killing = reply.killing; alreadyEnded = reply.alreadyEnded
    }
}
