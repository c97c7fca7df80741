import Foundation
import SwarmProtocol

/// What a restart reads, and the reads of finished tasks that left the scheduler's memory
/// (`TaskArchive`). Every query here goes through an index (README, "State directory"): a
/// restart costs the tasks in flight plus the recent finished ones, whatever the history.
extension TaskStore {
    /// States of tasks that have not ended (quoted for SQL): all of them are read at restart.
    static let openStates = TaskState.allCases.filter { !$0.isTerminal }.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    static let endedStates = TaskState.allCases.filter(\.isTerminal).map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// What a restart needs: every task that has not ended, and the `recentFinished` that
    /// ended last (by `finished_at`), with their runs, in submission order; and the highest
    /// submission number given (new tasks come after it). Rows read: those tasks and their
    /// runs, through `tasks_by_state`, `tasks_by_finished` (walked from its newest end; the
    /// `+state` keeps SQLite from choosing `tasks_by_state` and sorting every finished task)
    /// and the runs' primary key.
    public func loadRestart(recentFinished: Int) throws(TaskStoreError) -> (tasks: [TaskSnapshot], lastSequence: UInt64) {
        do {
            var tasks = try rows(Self.restartQueries[0], [])
            if recentFinished > 0 { tasks += try rows(Self.restartQueries[1], [.int(recentFinished)]) }
            tasks.sort { $0.sequence < $1.sequence }
            // A task never placed (attempts 0: most queued ones) has no runs to look up.
            for i in tasks.indices where tasks[i].info.attempts > 0 { tasks[i].runs = try runs(of: tasks[i].info.id) }
            let last = try statement("SELECT max(sequence) FROM tasks")
            defer { last.reset() }
            let lastSequence = try last.step() ? UInt64(max(0, last.int64(0) ?? 0)) : 0
            return (tasks, lastSequence)
        } catch let error as SQLiteError {
            throw Self.classify(error, path: path, directory: directory)
        } catch let error as TaskStoreError {
            throw error
        } catch {
            throw .corrupt(path: path, detail: "\(error)")
        }
    }

    /// What a restart reads: the tasks in flight, then the `?1` that finished last.
    static let restartQueries = [
        "SELECT \(rowColumns) FROM tasks WHERE state IN (\(openStates))",
        """
        SELECT \(rowColumns) FROM tasks
        WHERE finished_at IS NOT NULL AND +state IN (\(endedStates))
        ORDER BY finished_at DESC, sequence DESC LIMIT ?1
        """,
    ]

    /// `EXPLAIN QUERY PLAN` of `sql`, its lines joined (tests check that an index is used).
    func queryPlan(_ sql: String) throws(SQLiteError) -> String {
        let plan = try database.prepare("EXPLAIN QUERY PLAN " + sql)
        var lines: [String] = []
        while try plan.step() { lines.append(plan.string(3) ?? "") }
        return lines.joined(separator: "; ")
    }

    /// The stored tasks as `ClusterState` asks for those that left memory. A read that fails
    /// answers as for no task (the next save would stop the scheduler on a failing disk).
    public var archive: TaskArchive {
        TaskArchive(
            task: { [unowned self] id in
                guard var task = try? rows("SELECT \(Self.rowColumns) FROM tasks WHERE id = ?1", [.text(id)]).first else { return nil }
                task.runs = (try? runs(of: id)) ?? []
                return task
            },
            contains: { [unowned self] id in
                guard let query = try? statement("SELECT 1 FROM tasks WHERE id = ?1") else { return false }
                defer { query.reset() }
                return (try? query.bindAll([.text(id)])) != nil && (try? query.step()) == true
            },
            page: { [unowned self] after, limit in
                // Listings show no output: it is left out before decoding.
                (try? rows("""
                    SELECT id, sequence, spec, json_remove(info, '$.output'), retry, attempts, node FROM tasks
                    WHERE sequence > ?1 ORDER BY sequence LIMIT ?2
                    """, [.integer(Int64(clamping: after)), .int(limit)])) ?? []
            },
            parent: { [unowned self] id in
                // SQLite's JSON reader skips the output; decoding the record in Swift took
                // 1.7 ms for a task with 64 KiB of it, so a 1,000-deep walk 1.7 s.
                guard let query = try? statement("SELECT json_extract(info, '$.parent') FROM tasks WHERE id = ?1") else { return nil }
                defer { query.reset() }
                guard (try? query.bindAll([.text(id)])) != nil, (try? query.step()) == true else { return nil }
                return query.string(0)
            })
    }

    /// A statement prepared once and kept (reset after each use).
    func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let prepared = archiveStatements[sql] { return prepared }
        let prepared = try database.prepare(sql)
        archiveStatements[sql] = prepared
        return prepared
    }

    private func rows(_ sql: String, _ values: [SQLiteValue]) throws -> [TaskSnapshot] {
        let query = try statement(sql)
        defer { query.reset() }
        try query.bindAll(values)
        var tasks: [TaskSnapshot] = []
        while try query.step() { tasks.append(try snapshot(query)) }
        return tasks
    }

    /// A task's runs (its last `TaskRun.maxKept`), oldest first; a run in a state this swarm
    /// does not know is left out.
    private func runs(of id: String) throws(SQLiteError) -> [TaskRun] {
        let query = try statement("""
            SELECT attempt, node, placed_at, started_at, finished_at, state, reason, exit_code, signal, run_ms
            FROM runs WHERE task_id = ?1 ORDER BY attempt
            """)
        defer { query.reset() }
        try query.bindAll([.text(id)])
        var runs: [TaskRun] = []
        while try query.step() {
            guard let attempt = query.int64(0), let state = query.string(5).flatMap(TaskState.init(rawValue:)) else { continue }
            var run = TaskRun(attempt: Int(attempt), node: query.string(1), state: state, reason: query.string(6),
                              placedAt: query.int64(2), startedAt: query.int64(3), finishedAt: query.int64(4))
            run.exitCode = query.int64(7).map { Int($0) }
            run.signal = query.int64(8).map { Int($0) }
            run.runMs = query.int64(9)
            runs.append(run)
        }
        return runs.count > TaskRun.maxKept ? Array(runs.suffix(TaskRun.maxKept)) : runs
    }
}
