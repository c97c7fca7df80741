import ArgumentParser
import Foundation
import SwarmClient
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks", abstract: "List tasks in submission order (filtered and paged on request).")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print a JSON array.")
    var json = false
    @Option(help: ArgumentHelp("Only tasks in these states (repeatable, or comma-separated): \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "STATE"))
    var state: [String] = []
    @Option(help: ArgumentHelp("Only tasks that run or last ran on this worker.", valueName: "NODE"))
    var node: String?
    @Option(help: ArgumentHelp("Only tasks of this model.", valueName: "MODEL"))
    var model: String?
    @Option(help: ArgumentHelp("Only the direct children of this task (their `parent`).", valueName: "ID"))
    var parent: String?
    @Option(help: ArgumentHelp("Only tasks submitted since: a duration back from now (90s, 10m, 2h, 7d) or a UTC time (2026-12-02T10:00:00Z) or date (2026-12-02).", valueName: "WHEN"))
    var since: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("At most N tasks (default 1000 on a terminal, all otherwise; 0: all).", valueName: "N"))
    var limit: Int?
    @Option(help: ArgumentHelp("Start after this task (the last id of the previous page).", valueName: "ID"))
    var cursor: String?
    @Flag(help: "Show parents and children as an indented tree: of task ID, or of every root (a task without a parent, or whose parent is not known).")
    var tree = false
    @Argument(help: ArgumentHelp("With --tree: the tree's root.", valueName: "ID"))
    var root: String?
    @Flag(help: "Refresh the table in place every --interval seconds until interrupted (on a terminal; otherwise each refresh is printed after the last, a blank line between).")
    var watch = false
    @Option(parsing: .unconditional, help: ArgumentHelp("With --watch: seconds between refreshes, 0.2 to 3600 (default 2).", valueName: "SECONDS"))
    var interval: Double?

    func run() throws {
        let filter = try makeFilter()
        if let limit, limit < 0 { throw usageError("--limit must be 0 (all) or more, got \(limit)") }
        if let cursor, let problem = TaskID.problem(with: cursor) { throw usageError("--cursor: \(problem)") }
        let toTerminal = isatty(STDOUT_FILENO) == 1
        let most = limit.map { $0 == 0 ? nil : $0 } ?? (toTerminal && !json ? 1_000 : nil)
        if interval != nil && !watch { throw usageError("--interval goes with --watch") }
        if watch { return try runWatch(filter: filter, most: most, toTerminal: toTerminal) }
        if tree || root != nil { return try runTree(filter: filter, most: most) }
        let (tasks, more) = try runClient { try client.client().listTasks(filter: filter.isEmpty ? nil : filter, after: cursor, limit: most) }
        printLine(json ? Output.json(tasks) : Output.taskTable(tasks))
        if more, let last = tasks.last {
            Console.write("swarm: more tasks may follow: --cursor \(last.id) (or --limit 0 for all)\n", to: 2)
        }
    }

    /// `--watch`: the table again every `--interval` seconds, over one connection, until
    /// interrupted (or the scheduler goes away: exit 2, as for any client command). On a
    /// terminal the screen is cleared and redrawn from its top, with a header line (the time,
    /// the interval, the count); elsewhere each table follows the last after a blank line.
    private func runWatch(filter: TaskFilter, most: Int?, toTerminal: Bool) throws {
        if json { throw usageError("--watch draws a table; for JSON, run 'swarm tasks --json' when needed") }
        if tree || root != nil { throw usageError("--watch shows the task list, not a tree") }
        let seconds = interval ?? 2
        guard seconds >= 0.2 && seconds <= 3_600 else { throw usageError("--interval must be 0.2 to 3600 seconds, got \(seconds)") }
        try runClient {
            let connection = try client.client()
            for refresh in 0... {
                let (tasks, more) = try connection.listTasks(filter: filter.isEmpty ? nil : filter, after: cursor, limit: most)
                let clock = Self.clockTime(Date())
                let header = "every \(String(format: "%g", seconds)) s, \(clock): \(tasks.count)\(more ? "+" : "") tasks"
                let table = Output.taskTable(tasks)
                writeOut(toTerminal ? "\u{1B}[H\u{1B}[2J" + header + "\n" + table + "\n" : (refresh > 0 ? "\n" : "") + header + "\n" + table + "\n")
                usleep(useconds_t(seconds * 1_000_000))
            }
        }
    }

    /// `HH:MM:SS` local time, for the watch header.
    static func clockTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: date)
    }

    /// `--tree [ID]`: the tree's preorder, page by page, as an indented table or nested JSON
    /// (`TreeOutput`). Filters do not apply to a tree.
    private func runTree(filter: TaskFilter, most: Int?) throws {
        guard tree else { throw usageError("a task id is taken only with --tree (swarm tasks --tree ID)") }
        guard filter.isEmpty else { throw usageError("--tree takes no filter (--state, --node, --model, --parent, --since)") }
        if let root, let problem = TaskID.problem(with: root) { throw usageError(problem) }
        let (entries, more) = try runClient { try client.client().tree(id: root, after: cursor, limit: most) }
        printLine(json ? TreeOutput.json(entries) : TreeOutput.table(entries))
        if more, let last = entries.last {
            Console.write("swarm: more of the tree may follow: --cursor \(last.task.id) (or --limit 0 for all)\n", to: 2)
        }
    }

    private func makeFilter() throws -> TaskFilter {
        var filter = TaskFilter(node: node, model: model, parent: parent)
        let names = state.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if !state.isEmpty && names.isEmpty { throw usageError("--state wants a state, got '\(state.joined(separator: ","))'") }
        if !names.isEmpty {
            var states: [TaskState] = []
            for name in names {
                guard let s = TaskState(rawValue: name) else {
                    throw usageError("--state: unknown state '\(name)' (known: \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                if !states.contains(s) { states.append(s) }
            }
            filter.states = states
        }
        if let since {
            guard let at = Self.time(since, now: Date()) else {
                throw usageError("--since wants a duration (90s, 10m, 2h, 7d) or a time (2026-12-02T10:00:00Z), got '\(since)'")
            }
            filter.since = at
        }
        if let problem = filter.problem { throw usageError(problem) }
        return filter
    }

    /// `text` as unix ms: a duration back from `now` (a number with s, m, h or d) or an ISO
    /// 8601 time; nil when it is neither.
    static func time(_ text: String, now: Date) -> Int64? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
        if let unit = text.last, let seconds = units[unit], let n = Double(text.dropLast()), n.isFinite, n >= 0, n <= 36_500 * 86_400 / seconds {
            return Int64(((now.timeIntervalSince1970 - n * seconds) * 1000).rounded())
        }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate]] {
            formatter.formatOptions = options
            // Read back and compared: the formatter is lenient (hour 25 became the next day).
            if let date = formatter.date(from: text), formatter.string(from: date) == text {
                return Int64((date.timeIntervalSince1970 * 1000).rounded())
            }
        }
        return nil
    }
}
