import ArgumentParser
import SwarmClient
import SwarmProtocol

struct RerunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerun",
        abstract: "Submit a finished task's spec again as a new task (its stored inputs reused); prints the new id.")

    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("The new task's id (default ID.rN, N the first free).", valueName: "ID"))
    var id: String?
    @Flag(help: "Print the new task as JSON.")
    var json = false
    @Argument(help: "The finished task's id.")
    var task: String

    func validate() throws {
        if let problem = TaskID.problem(with: task) { throw ValidationError(problem) }
        if let id, let problem = TaskID.problem(with: id) { throw ValidationError("--id: \(problem)") }
    }

    func run() throws {
        let (newId, info): (String, TaskInfo?) = try runClient {
            let client = try client.client()
            let newId = try client.rerun(task, newId: id)
            return (newId, json ? try client.status(newId) : nil)
        }
        if let info { printLine(Output.json(info)) } else { printLine(newId) }
    }
}
