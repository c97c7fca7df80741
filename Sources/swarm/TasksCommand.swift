import ArgumentParser
import SwarmClient

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tasks", abstract: "List tasks in submission order.")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print a JSON array.")
    var json = false

    func run() throws {
        let tasks = try runClient { try client.client().listTasks() }
        printLine(json ? Output.json(tasks) : Output.taskTable(tasks))
    }
}
