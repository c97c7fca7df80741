import CSQLite
import SwarmProtocol

/// The store's schema (README, "State directory"): made in a new database, checked in one
/// found (a swarm database, a version this swarm knows, intact), and version 1 migrated.
extension TaskStore {
    static let schema = """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE tasks (
            id           TEXT PRIMARY KEY,
            sequence     INTEGER NOT NULL UNIQUE,
            state        TEXT NOT NULL,
            priority     INTEGER NOT NULL DEFAULT 0,
            node         TEXT,
            attempts     INTEGER NOT NULL,
            submitted_at INTEGER NOT NULL,
            finished_at  INTEGER,
            spec         TEXT NOT NULL,
            info         TEXT NOT NULL,
            retry        TEXT
        );
        CREATE INDEX tasks_by_state ON tasks (state, priority DESC, sequence);
        CREATE TABLE runs (
            task_id     TEXT NOT NULL,
            attempt     INTEGER NOT NULL,
            node        TEXT,
            placed_at   INTEGER,
            started_at  INTEGER,
            finished_at INTEGER,
            state       TEXT NOT NULL,
            reason      TEXT,
            exit_code   INTEGER,
            signal      INTEGER,
            PRIMARY KEY (task_id, attempt)
        ) WITHOUT ROWID;
        CREATE INDEX runs_by_node ON runs (node, state);
        """ + logsTable + dependenciesTable

    /// Version 3: what each task waits for (its spec's `after`, `any_end` 0, and `afterAny`,
    /// `any_end` 1), written with the task; indexed by dependency, so the tasks waiting for one
    /// can be found without reading every spec (once finished tasks leave memory, issue 14).
    static let dependenciesTable = """
        CREATE TABLE dependencies (
            task_id       TEXT NOT NULL,
            dependency_id TEXT NOT NULL,
            any_end       INTEGER NOT NULL,
            PRIMARY KEY (task_id, dependency_id)
        ) WITHOUT ROWID;
        CREATE INDEX dependencies_by_dependency ON dependencies (dependency_id);
        """

    /// Output of ended tasks as the scheduler received it (also added to databases made
    /// before it existed: a new table, not a new schema version).
    static let logsTable = """
        CREATE TABLE IF NOT EXISTS logs (
            task_id TEXT PRIMARY KEY,
            text    TEXT NOT NULL
        ) WITHOUT ROWID;
        """

    static func prepareSchema(_ db: SQLiteDatabase, path: String, directory: String) throws(TaskStoreError) {
        do {
            // The first read of the file: a file that is not SQLite fails here.
            let mode = try db.scalar("PRAGMA journal_mode = WAL")
            guard mode == "wal" else { throw TaskStoreError.corrupt(path: path, detail: "cannot switch to WAL mode (got \(mode ?? "nothing"))") }
            try db.execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000")
            let tables = Int(try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? "0") ?? 0
            if tables == 0 {
                try db.transaction { () throws(SQLiteError) in
                    try db.execute(schema)
                    let meta = try db.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
                    try meta.run([.text("schema_version"), .text(String(schemaVersion))])
                    try meta.run([.text("created_at"), .text(String(unixMillis()))])
                }
                return
            }
            guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'") == "1",
                  let text = try db.scalar("SELECT value FROM meta WHERE key = 'schema_version'"),
                  let version = Int(text) else {
                throw TaskStoreError.notASwarmDatabase(path: path, detail: "it has tables but no swarm schema version")
            }
            if version > schemaVersion { throw TaskStoreError.newerSchema(path: path, found: version, supported: schemaVersion) }
            if version < schemaVersion { try migrate(db, from: version) }
            guard version >= 1 && version <= schemaVersion else {
                throw TaskStoreError.notASwarmDatabase(path: path, detail: "unknown schema version \(version)")
            }
            let check = try db.scalar("PRAGMA quick_check") ?? "no answer"
            guard check == "ok" else { throw TaskStoreError.corrupt(path: path, detail: "integrity check: \(check)") }
            try db.execute(logsTable)
        } catch let error as SQLiteError {
            throw classify(error, path: path, directory: directory)
        } catch let error as TaskStoreError {
            throw error
        } catch {
            throw .corrupt(path: path, detail: "\(error)")
        }
    }

    /// Versions 1 and 2 to 3, in one transaction, additively. 1 to 2: new columns, empty
    /// for what is already there (a task without a retry state has had no retries;
    /// `loadTasks` counts its node losses from its attempts, the rule version 1 applied).
    /// 2 to 3: the `dependencies` table, empty (no task before it had dependencies).
    private static func migrate(_ db: SQLiteDatabase, from version: Int) throws(SQLiteError) {
        guard version >= 1 else { return }
        try db.transaction { () throws(SQLiteError) in
            if version < 2 {
                try db.execute("""
                    ALTER TABLE tasks ADD COLUMN retry TEXT;
                    ALTER TABLE runs ADD COLUMN exit_code INTEGER;
                    ALTER TABLE runs ADD COLUMN signal INTEGER;
                    """)
            }
            try db.execute(dependenciesTable)
            try db.execute("UPDATE meta SET value = '\(schemaVersion)' WHERE key = 'schema_version'")
        }
    }
}
