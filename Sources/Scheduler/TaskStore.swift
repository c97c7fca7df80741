import CSQLite
import Foundation
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Why the scheduler's state directory cannot be used. Never answered by starting empty.
public enum TaskStoreError: Error, CustomStringConvertible, Sendable {
    case cannotCreateDirectory(path: String, reason: String)
    /// Another scheduler holds the directory's lock.
    case inUse(path: String)
    case notASwarmDatabase(path: String, detail: String)
    case newerSchema(path: String, found: Int, supported: Int)
    case corrupt(path: String, detail: String)
    /// The disk (or quota) of the state directory is full: what was being written is not saved.
    case noSpace(directory: String, SQLiteError)
    case sqlite(path: String, SQLiteError)

    /// The state directory's disk is full.
    public var isNoSpace: Bool {
        if case .noSpace = self { return true }
        return false
    }

    public var description: String {
        let keep = "; refusing to start with it (move it away to start empty)"
        switch self {
        case let .cannotCreateDirectory(path, reason): return "cannot create state directory \(path): \(reason)"
        case .inUse(let path): return "state directory \(path) is in use by another scheduler (its lock \(path)/\(TaskStore.lockName) is held)"
        case let .notASwarmDatabase(path, detail): return "\(path) is not a swarm state database (\(detail))" + keep
        case let .newerSchema(path, found, supported):
            return "\(path) has schema version \(found), newer than this swarm understands (\(supported)): it was written by a newer swarm" + keep
        case let .corrupt(path, detail): return "\(path) is damaged: \(detail)" + keep
        case let .noSpace(directory, error):
            let why = error.systemErrno == EDQUOT ? "disk quota exceeded" : "no space left on device"
            let detail = error.primaryCode == SQLITE_FULL ? "database or disk is full" : error.description
            return "\(why) in state directory \(directory) (sqlite: \(detail))"
        case let .sqlite(path, error): return "state database \(path): \(error)"
        }
    }
}

/// The scheduler's durable state: `swarm.db` (SQLite, WAL) in the state directory, the
/// schema in README ("State directory"). `save` writes one batch of changes in one
/// transaction and returns once it is on disk (`synchronous=FULL`: the WAL is fsynced on
/// commit), so what the scheduler acknowledges after it survives a crash. A lock file keeps a
/// second scheduler out. Use from one thread (the scheduler's loop thread).
public final class TaskStore {
    /// 2 (issue 13): runs keep their exit code and signal, tasks their retry state. 3 (issue
    /// 13): the `dependencies` table. 4 (issue 14): `tasks_by_finished`, `blob_refs`,
    /// incremental auto-vacuum. Older databases are migrated in place when opened (`migrate`,
    /// `migrateToV4`), additively. 6: a placement alone writes the row's state, node and
    /// attempts, not its info (`writePlacement`), which a swarm before it would read as still
    /// queued: so it refuses the file (nothing else changed: opening raises the version).
    public static let schemaVersion = 6
    public static let databaseName = "swarm.db"
    public static let lockName = "swarm.lock"

    public let path: String
    /// The state directory (`path` is its `swarm.db`).
    public let directory: String
    let database: SQLiteDatabase
    private var lockFD: Int32
    private let encoder = JSONEncoder()
    /// Statements of the archive reads (TaskStore+Archive.swift), prepared on first use.
    var archiveStatements: [String: SQLiteStatement] = [:]
    let decoder = JSONDecoder()
    private let updateTask: SQLiteStatement
    private let placeTask: SQLiteStatement
    private let insertTask: SQLiteStatement
    private let upsertTask: SQLiteStatement
    private let placeRun: SQLiteStatement
    private let startRun: SQLiteStatement
    private let endRun: SQLiteStatement
    private let withdrawRun: SQLiteStatement
    private let pruneRuns: SQLiteStatement
    private let saveLog: SQLiteStatement
    private let readLog: SQLiteStatement
    private let addBlobRef: SQLiteStatement
    private let insertDependency: SQLiteStatement
    private let readState: SQLiteStatement

    /// `mkdir -p directory`, or what is wrong with the path, in words (which component is
    /// not a directory, or the system's reason), never a Foundation error code.
    static func makeDirectories(_ directory: String) -> String? {
        var current = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) == 0 { continue }
            let error = errno
            var info = stat()
            if error == EEXIST && stat(current, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFDIR { continue }
                return "\(current) exists and is not a directory"
            }
            return "\(current): \(String(cString: strerror(error)))"
        }
        return nil
    }

    /// Whether a commit returns only once it is on disk (`synchronous=FULL`). Off, a commit
    /// is written to the WAL without an fsync (`synchronous=NORMAL`) and made durable by a
    /// later `syncJob` run on another thread (group commit, TaskStore+Sync.swift).
    public let syncOnCommit: Bool
    /// Whether a sync job has fsynced the state directory (it holds the WAL's name) yet.
    var directorySynced = false

    /// Opens (creating) `directory/swarm.db`. Throws if it is not a swarm database, was
    /// written by a newer schema, is damaged, or another scheduler has the directory.
    /// `syncOnCommit`: see the property.
    public init(directory: String, syncOnCommit: Bool = true) throws(TaskStoreError) {
        self.syncOnCommit = syncOnCommit
        path = directory + "/" + Self.databaseName
        self.directory = directory
        if let problem = Self.makeDirectories(directory) {
            throw .cannotCreateDirectory(path: directory, reason: problem)
        }
        lockFD = open(directory + "/" + Self.lockName, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else {
            throw .cannotCreateDirectory(path: directory, reason: String(cString: strerror(errno)))
        }
        guard Self.lock(lockFD) else {
            Glibc.close(lockFD)
            throw .inUse(path: directory)
        }
        let path = self.path
        let fd = lockFD
        func fail(_ error: TaskStoreError) -> TaskStoreError {
            Glibc.close(fd)
            return error
        }
        do {
            database = try SQLiteDatabase(path: path)
            try Self.prepareSchema(database, path: path, directory: directory)
            // Migrations and the schema are on disk by now (each committed with FULL).
            if !syncOnCommit {
                try database.execute("PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = \(Self.walSizeLimit)")
                // Checkpoints mostly off the loop thread (`checkpointJob`, TaskStore+Sync.swift).
                database.countWALFrames()
            }
            updateTask = try database.prepare("""
                UPDATE tasks SET state = ?2, node = ?3, attempts = ?4, finished_at = ?5, info = ?6, retry = ?7 WHERE id = ?1
                """)
            // `writePlacement`: the row's info keeps the task as it was before. `finished_at`
            // stays too (a retried task's last end): whatever reads it also asks for an ended
            // `state` (retention, a restart's recent finished tasks).
            placeTask = try database.prepare("UPDATE tasks SET state = ?2, node = ?3, attempts = ?4 WHERE id = ?1")
            insertTask = try database.prepare("""
                INSERT INTO tasks (id, state, node, attempts, finished_at, info, retry, sequence, submitted_at, spec, priority)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, coalesce(CAST(json_extract(?10, '$.priority') AS INTEGER), 0))
                """)
            // A new task's row (`StateChanges.inserted`): one statement, where an update that
            // found nothing came first. A row of that id (never, but for a reused generated
            // id) is updated as before: its spec and sequence stay.
            upsertTask = try database.prepare("""
                INSERT INTO tasks (id, state, node, attempts, finished_at, info, retry, sequence, submitted_at, spec, priority)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, coalesce(CAST(json_extract(?10, '$.priority') AS INTEGER), 0))
                ON CONFLICT (id) DO UPDATE SET state = ?2, node = ?3, attempts = ?4, finished_at = ?5, info = ?6, retry = ?7
                """)
            placeRun = try database.prepare("""
                INSERT INTO runs (task_id, attempt, node, placed_at, state) VALUES (?1, ?2, ?3, ?4, 'running')
                ON CONFLICT (task_id, attempt) DO NOTHING
                """)
            startRun = try database.prepare("UPDATE runs SET started_at = ?3 WHERE task_id = ?1 AND attempt = ?2")
            endRun = try database.prepare("""
                UPDATE runs SET state = ?3, reason = ?4, finished_at = ?5, exit_code = ?6, signal = ?7, run_ms = ?8
                WHERE task_id = ?1 AND attempt = ?2 AND state = 'running'
                """)
            withdrawRun = try database.prepare("DELETE FROM runs WHERE task_id = ?1 AND attempt = ?2")
            pruneRuns = try database.prepare("DELETE FROM runs WHERE task_id = ?1 AND attempt <= ?2")
            saveLog = try database.prepare("INSERT OR REPLACE INTO logs (task_id, text) VALUES (?1, ?2)")
            readLog = try database.prepare("SELECT text FROM logs WHERE task_id = ?1")
            addBlobRef = try database.prepare("INSERT OR IGNORE INTO blob_refs (sha256, task_id) VALUES (?1, ?2)")
            insertDependency = try database.prepare("""
                INSERT OR IGNORE INTO dependencies (task_id, dependency_id, any_end) VALUES (?1, ?2, ?3)
                """)
            readState = try database.prepare("SELECT state FROM tasks WHERE id = ?1")
        } catch let error as TaskStoreError {
            throw fail(error)
        } catch let error as SQLiteError {
            throw fail(Self.classify(error, path: path, directory: directory))
        } catch {
            throw fail(.corrupt(path: path, detail: "\(error)"))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    deinit { close() }

    /// Takes the directory's lock, trying for up to 200 ms: a process of ours that forks (to
    /// spawn a task) holds a copy of a previous store's lock descriptor until its child execs,
    /// so a store closed and reopened at once could find its own old lock still held.
    private static func lock(_ fd: Int32) -> Bool {
        for attempt in 0..<20 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            guard errno == EWOULDBLOCK, attempt < 19 else { return false }
            usleep(10_000)
        }
        return false
    }

    /// Closes the database and releases the directory's lock. Idempotent.
    public func close() {
        database.close()
        if lockFD >= 0 {
            Glibc.close(lockFD)
            lockFD = -1
        }
    }

    /// Every task, in submission order, with its retry state and runs (tests and tools: a
    /// restart reads only what it needs, `loadRestart`).
    public func loadTasks() throws(TaskStoreError) -> [TaskSnapshot] {
        var tasks: [TaskSnapshot] = []
        do {
            var runs = try loadRuns()
            let rows = try database.prepare("SELECT \(Self.rowColumns) FROM tasks ORDER BY sequence")
            while try rows.step() {
                var task = try snapshot(rows)
                task.runs = runs.removeValue(forKey: task.info.id) ?? []
                tasks.append(task)
            }
        } catch let error as SQLiteError {
            throw Self.classify(error, path: path, directory: directory)
        } catch let error as TaskStoreError {
            throw error
        } catch {
            throw .corrupt(path: path, detail: "\(error)")
        }
        return tasks
    }

    /// The columns `snapshot` reads, in its order.
    static let rowColumns = "id, sequence, spec, info, retry, attempts, node"

    /// The task of a row of columns `rowColumns`, without its runs. A row placed since its
    /// info was written (its `attempts` column ahead of the info's: `writePlacement`) gets the
    /// placement redone on that info, as `ClusterState.markPlaced` made it in memory.
    func snapshot(_ rows: SQLiteStatement) throws(TaskStoreError) -> TaskSnapshot {
        let id = rows.string(0) ?? "?"
        guard let sequence = rows.int64(1), sequence > 0,
              let spec = Self.decodeSpec(rows.string(2) ?? "", fallback: decoder),
              var info = Self.decodeInfo(rows.string(3) ?? "", fallback: decoder),
              info.id == id else {
            throw TaskStoreError.corrupt(path: path, detail: "task row '\(id)' cannot be read back")
        }
        // Rows written since the lists left the info row (`storedInfo`) get them from the spec;
        // older rows have both, the same.
        if info.after == nil { info.after = spec.after }
        if info.afterAny == nil { info.afterAny = spec.afterAny }
        var retry = RetryState(losses: max(0, info.attempts - 1))
        if let text = rows.string(4) {
            guard let saved = (try? FastJSONDecoder().decode(RetryState.self, from: Array(text.utf8)))
                    ?? (try? decoder.decode(RetryState.self, from: Data(text.utf8))) else {
                throw TaskStoreError.corrupt(path: path, detail: "task row '\(id)' has a retry state that cannot be read back")
            }
            retry = saved
        }
        if let attempts = rows.int64(5), attempts != info.attempts {
            ClusterState.markPlaced(&info, on: rows.string(6), attempt: Int(attempts), at: placedAt(id: id, attempt: attempts))
            retry.avoidNode = nil
        }
        return TaskSnapshot(spec: spec, info: info, sequence: UInt64(sequence), retry: retry)
    }

    /// When run `attempt` of task `id` was placed (nil: not found, or unreadable).
    private func placedAt(id: String, attempt: Int64) -> Int64? {
        guard let query = try? statement("SELECT placed_at FROM runs WHERE task_id = ?1 AND attempt = ?2") else { return nil }
        defer { query.reset() }
        guard (try? query.bindAll([.text(id), .integer(attempt)])) != nil, (try? query.step()) == true else { return nil }
        return query.int64(0)
    }

    /// Every task's runs (its last `TaskRun.maxKept`), oldest first. A run in a state this swarm
    /// does not know is left out.
    private func loadRuns() throws -> [String: [TaskRun]] {
        var runs: [String: [TaskRun]] = [:]
        let rows = try database.prepare("""
            SELECT task_id, attempt, node, placed_at, started_at, finished_at, state, reason, exit_code, signal, run_ms
            FROM runs ORDER BY task_id, attempt
            """)
        while try rows.step() {
            guard let id = rows.string(0), let attempt = rows.int64(1),
                  let state = rows.string(6).flatMap(TaskState.init(rawValue:)) else { continue }
            var run = TaskRun(attempt: Int(attempt), node: rows.string(2), state: state, reason: rows.string(7),
                              placedAt: rows.int64(3), startedAt: rows.int64(4), finishedAt: rows.int64(5))
            run.exitCode = rows.int64(8).map { Int($0) }
            run.signal = rows.int64(9).map { Int($0) }
            run.runMs = rows.int64(10)
            runs[id, default: []].append(run)
        }
        return runs.mapValues { $0.count > TaskRun.maxKept ? Array($0.suffix(TaskRun.maxKept)) : $0 }
    }

    /// Writes `changes` in one transaction; returns once they are durable. `at` (wall-clock
    /// unix ms) dates runs that ended without a time of their own (requeued). Every time
    /// stored is a wall-clock timestamp, for people: no monotonic reading is ever saved, since
    /// it would mean nothing after a restart.
    ///
    /// The logs of ended tasks are the one part that may be left out: when the disk has no
    /// room for the transaction, it is written again without them (a stored log is a copy:
    /// the task's state and output tail are saved, and its worker keeps the whole log).
    /// Returns the ids of the logs left out. Throws `.noSpace` when even that does not fit:
    /// then nothing of `changes` is saved.
    @discardableResult
    public func save(_ changes: StateChanges, at: Int64) throws(TaskStoreError) -> [String] {
        guard !changes.isEmpty else { return [] }
        do {
            try write(changes, at: at)
            return []
        } catch let error where error.isNoSpace && !changes.logs.isEmpty && !database.inTransaction {
            var lean = changes
            lean.logs = [:]
            do { try write(lean, at: at) } catch { throw Self.classify(error, path: path, directory: directory) }
            return changes.logs.keys.sorted()
        } catch {
            throw Self.classify(error, path: path, directory: directory)
        }
    }

    private func write(_ changes: StateChanges, at: Int64) throws(SQLiteError) {
        guard !changes.isEmpty else { return }
        try database.transaction { () throws(SQLiteError) in
            for task in changes.tasks {
                if !changes.placedOnly.isEmpty, changes.placedOnly.contains(task.info.id) {
                    try writePlacement(task)
                } else {
                    try write(task, isNew: changes.inserted.contains(task.info.id))
                }
            }
            for change in changes.runs { try write(change, at: at) }
            for (id, text) in changes.logs.sorted(by: { $0.key < $1.key }) {
                try saveLog.run([.text(id), .text(text)])
            }
            if let drained = changes.drainedNodes { try saveDrained(drained) }
            if let roots = changes.treeCancelRoots { try saveTreeCancels(roots) }
            GapTrace.mark("s_commit")
        }
    }

    // MARK: Writing

    /// A row's JSON (a task's info, its retry state) by `FastJSONEncoder`: Foundation's encoder
    /// (Codable dispatch, sorted keys) took about 45% of a durable scheduler's CPU writing a
    /// task's info at each change (perf, `swarm bench spawn`). Any key order reads back.
    private func json<T: Encodable>(_ value: T) -> String {
        if let bytes = try? FastJSONEncoder().encode(value) { return String(decoding: bytes, as: UTF8.self) }
        // These types hold only strings, integers and collections of them: encoding cannot fail.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    /// A task's info as its row keeps it: without `after` and `afterAny`, which are the spec's
    /// (its row, written once) and are put back from it when read (`snapshot`). The info row
    /// is rewritten at every change of the task (placed, started, ended): with them, a task
    /// after a layer of 100 wrote its 100 ids three times, most of the CPU of a durable
    /// scheduler running `swarm bench dag` and most of the bytes each turn's sync waited for.
    static func storedInfo(_ info: TaskInfo) -> TaskInfo {
        guard info.after != nil || info.afterAny != nil else { return info }
        var stored = info
        stored.after = nil
        stored.afterAny = nil
        return stored
    }

    /// A spec's row text, by `FastJSONEncoder`: a context's numbers keep their literal text
    /// (Foundation's encoder would round them through Double, and fail on `1e400`).
    static func specJSON(_ spec: TaskSpec) -> String {
        // Durations are finite (checked at submit) and context numbers are text: cannot fail.
        String(decoding: try! FastJSONEncoder().encode(spec), as: UTF8.self)
    }

    /// A task's info by `FastJSONDecoder` (several times faster than Foundation's: a restart
    /// decodes thousands); rows it refuses, by Foundation.
    static func decodeInfo(_ text: String, fallback: JSONDecoder) -> TaskInfo? {
        let bytes = Array(text.utf8)
        if let info = try? FastJSONDecoder().decode(TaskInfo.self, from: bytes) { return info }
        return try? fallback.decode(TaskInfo.self, from: Data(bytes))
    }

    /// A spec read back exactly by `FastJSONDecoder`; rows it refuses, by Foundation.
    static func decodeSpec(_ text: String, fallback: JSONDecoder) -> TaskSpec? {
        let bytes = Array(text.utf8)
        if let spec = try? FastJSONDecoder().decode(TaskSpec.self, from: bytes) { return spec }
        return try? fallback.decode(TaskSpec.self, from: Data(bytes))
    }

    /// `isNew`: it has no row yet (`StateChanges.inserted`).
    private func write(_ task: TaskSnapshot, isNew: Bool) throws(SQLiteError) {
        let info = task.info
        let common: [SQLiteValue] = [.text(info.id), .text(info.state.rawValue), .string(info.node),
                                     .int(info.attempts), .int64(info.finishedAt), .text(json(Self.storedInfo(info))),
                                     .text(json(task.retry))]
        if !isNew { try updateTask.run(common) }
        if isNew || database.changes == 0 {
            let insert = isNew ? upsertTask : insertTask
            try insert.run(common + [.integer(Int64(task.sequence)), .integer(info.submittedAt), .text(Self.specJSON(task.spec))])
            // Written once, with the task: what it waits for, queryable by either end.
            for dependency in task.spec.dependencies {
                try insertDependency.run([.text(info.id), .text(dependency.id), .int(dependency.anyEnd ? 1 : 0)])
            }
        }
        // The blobs it names, for retention (`purgeFinished`): its inputs, its artifacts.
        for sha in (task.spec.inputBlobs ?? []).map(\.sha256) + (info.artifacts ?? []).map(\.sha256) {
            try addBlobRef.run([.text(sha), .text(info.id)])
        }
    }

    /// A task whose only change is a placement (`StateChanges.placedOnly`): its state, node
    /// and attempts columns; its info and retry state stay as they were, and `snapshot` redoes
    /// the placement on them when it reads the row (the run, with its date, is written from
    /// `StateChanges.runs`). A task without a row (never: a new task is not placed alone) gets
    /// its whole row.
    private func writePlacement(_ task: TaskSnapshot) throws(SQLiteError) {
        let info = task.info
        try placeTask.run([.text(info.id), .text(info.state.rawValue), .string(info.node), .int(info.attempts)])
        if database.changes == 0 { try write(task, isNew: false) }
    }

    private func write(_ change: RunChange, at: Int64) throws(SQLiteError) {
        switch change {
        case let .placed(run, node, placedAt):
            try placeRun.run([.text(run.id), .int(run.attempt), .string(node), .int64(placedAt)])
            // The history a task keeps (`TaskRun.maxKept`): the oldest run goes.
            if run.attempt > TaskRun.maxKept { try pruneRuns.run([.text(run.id), .int(run.attempt - TaskRun.maxKept)]) }
        case let .started(run, startedAt):
            try startRun.run([.text(run.id), .int(run.attempt), .int64(startedAt)])
        case let .ended(run, state, reason, finishedAt, exitCode, signal, runMs):
            try endRun.run([.text(run.id), .int(run.attempt), .text(state.rawValue), .string(reason),
                            .integer(finishedAt ?? at), .int(exitCode), .int(signal), .int64(runMs)])
        case .withdrawn(let run):
            try withdrawRun.run([.text(run.id), .int(run.attempt)])
        }
    }

    /// The state of task `id` when the store has it and it has ended (nil: no such task, or
    /// it has not ended): how a dependency on a task no longer held in memory is judged.
    public func endedState(of id: String) -> TaskState? {
        defer { readState.reset() }
        guard (try? readState.bindAll([.text(id)])) != nil, (try? readState.step()) == true,
              let state = readState.string(0).flatMap(TaskState.init(rawValue:)), state.isTerminal else { return nil }
        return state
    }

    /// The stored log of an ended task, nil when there is none.
    public func log(id: String) -> String? {
        defer { readLog.reset() }
        guard (try? readLog.bindAll([.text(id)])) != nil, (try? readLog.step()) == true else { return nil }
        return readLog.string(0)
    }

    static func classify(_ error: SQLiteError, path: String, directory: String) -> TaskStoreError {
        if error.isNoSpace { return .noSpace(directory: directory, error) }
        return switch error.primaryCode {
        case SQLITE_NOTADB: .notASwarmDatabase(path: path, detail: "not an SQLite database")
        case SQLITE_CORRUPT: .corrupt(path: path, detail: "\(error)")
        default: .sqlite(path: path, error)
        }
    }
}

/// Confined to one thread: not Sendable, on purpose.
@available(*, unavailable)
extension TaskStore: Sendable {}
