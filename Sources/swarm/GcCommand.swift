import ArgumentParser
import SwarmClient
import SwarmProtocol

struct GcCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Delete now the finished tasks past the scheduler's retention (with their runs, logs and unused blobs); prints what was removed.",
        discussion: "Without --older-than, applies scheduler.retention (maxFinishedTasks, maxAgeHours) at once. A task that tasks in flight still name (as parent) is kept until they are done.")

    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("Also delete the tasks that finished more than S seconds ago (0 to 1000000000).", valueName: "SECONDS"))
    var olderThan: Double?
    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if let olderThan, !(0...1e9).contains(olderThan) {
            throw ValidationError("--older-than must be 0 to 1000000000 seconds, got \(olderThan)")
        }
    }

    func run() throws {
        let result = try runClient { try client.client().gc(olderThanSeconds: olderThan) }
        if json { return printLine(Output.json(result)) }
        func mib(_ bytes: Int64) -> String {
            let tenths = bytes * 10 / 1_048_576
            return "\(tenths / 10).\(tenths % 10) MiB"
        }
        printLine("removed \(result.tasks) finished task(s), \(result.runs) run(s), \(result.logs) stored log(s), \(result.blobs) blob(s) (\(mib(result.blobBytes)))")
        if result.kept > 0 { printLine("kept \(result.kept) past the limits: tasks in flight still need them") }
        printLine("swarm.db: \(mib(result.dbBytesBefore)) before, \(mib(result.dbBytesAfter)) after")
    }
}
