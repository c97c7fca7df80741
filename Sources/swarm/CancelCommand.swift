import ArgumentParser
import SwarmClient
import SwarmProtocol

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a task: a queued one ends at once, a running one is killed. Exit 1 if it had already ended.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the task as JSON.")
    var json = false
    @Argument(help: "Task id.")
    var id: String

    func run() throws {
        let outcome: CancelOutcome = try runClient {
            let client = try client.client()
            do {
                return .replied(try client.cancel(id))
            } catch ClientError.server(let code, let reason) where code != .unknownTask {
                // A task that already ended is refused with an error; tell that apart from a
                // refused request by looking at the task (on the same connection, if it is open).
                if let info = try? client.status(id), info.state.isTerminal {
                    return .alreadyEnded(reason)
                }
                throw ClientError.server(code, reason)
            }
        }
        switch outcome {
        case .replied(let info):
            printLine(json ? Output.json(info) : Output.cancelled(info))
            // A reply with an ended state other than cancelled: it ended before the cancel.
            if info.state.isTerminal && info.state != .cancelled {
                printError("task \(id) had already ended (\(info.state.rawValue))")
                throw ExitCode(1)
            }
        case .alreadyEnded(let reason):
            printError(reason)
            throw ExitCode(1)
        }
    }

    private enum CancelOutcome {
        case replied(TaskInfo)
        case alreadyEnded(String)
    }
}
