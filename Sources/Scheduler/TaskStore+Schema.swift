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
        CREATE INDEX tasks_by_finished ON tasks (finished_at, sequence);
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
            run_ms      INTEGER,
            PRIMARY KEY (task_id, attempt)
        ) WITHOUT ROWID;
        CREATE INDEX runs_by_node ON runs (node, state);
        """ + logsTable + dependenciesTable + blobRefsTable

    /// Version 3: what each task waits for (its spec's `after`, `any_end` 0, and `afterAny`,
    /// `any_end` 1), written with the task; indexed by dependency, so the tasks waiting for one
    /// can be found without reading every spec.
    static let dependenciesTable = """
        CREATE TABLE IF NOT EXISTS dependencies (
            task_id       TEXT NOT NULL,
            dependency_id TEXT NOT NULL,
            any_end       INTEGER NOT NULL,
            PRIMARY KEY (task_id, dependency_id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS dependencies_by_dependency ON dependencies (dependency_id);
        """

    /// Version 4: which tasks name which blobs (inputs in their spec, artifacts in their info): a
    /// finished task's blobs are deleted with it when no kept task names them (retention).
    static let blobRefsTable = """
        CREATE TABLE IF NOT EXISTS blob_refs (
            sha256  TEXT NOT NULL,
            task_id TEXT NOT NULL,
            PRIMARY KEY (sha256, task_id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS blob_refs_by_task ON blob_refs (task_id);
        """

    /// Output of ended tasks as the scheduler received it (also added to databases made
    /// before it existed: a new table, not a new schema version).
    static let logsTable = """
        CREATE TABLE IF NOT EXISTS logs (
            task_id TEXT PRIMARY KEY,
            text    TEXT NOT NULL
        ) WITHOUT ROWID;
        """

    /// Databases up to this many pages (64 MiB of 4 KiB pages) get `PRAGMA quick_check` at open.
    static let quickCheckMaxPages = 16_384

    static func prepareSchema(_ db: SQLiteDatabase, path: String, directory: String) throws(TaskStoreError) {
        do {
            // The first read of the file: a file that is not SQLite fails here.
            let mode = try db.scalar("PRAGMA journal_mode = WAL")
            guard mode == "wal" else { throw TaskStoreError.corrupt(path: path, detail: "cannot switch to WAL mode (got \(mode ?? "nothing"))") }
            try db.execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000")
            let tables = Int(try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? "0") ?? 0
            if tables == 0 {
                // Freed pages are reused and given back in steps (`incrementalVacuum`); only
                // settable before the first table.
                try db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                try db.transaction { () throws(SQLiteError) in
                    try db.execute(schema)
                    let meta = try db.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
                    try meta.run([.text("schema_version"), .text(String(schemaVersion))])
                    try meta.run([.text("created_at"), .text(String(unixMillis()))])
                }
                // WAL mode wrote the header before the pragma could apply: rewrite the (empty) file.
                if try db.scalar("PRAGMA auto_vacuum") != "2" { try db.execute("VACUUM") }
                return
            }
            guard try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'") == "1",
                  let text = try db.scalar("SELECT value FROM meta WHERE key = 'schema_version'"),
                  let version = Int(text) else {
                throw TaskStoreError.notASwarmDatabase(path: path, detail: "it has tables but no swarm schema version")
            }
            if version > schemaVersion { throw TaskStoreError.newerSchema(path: path, found: version, supported: schemaVersion) }
            guard (1...schemaVersion).contains(version) else {
                throw TaskStoreError.notASwarmDatabase(path: path, detail: "unknown schema version \(version)")
            }
            if version < 3 { try migrate(db, from: version) }
            if version < 4 { try migrateToV4(db) }
            if version < 5 { try migrateToV5(db) }
            if version < 6 { try db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'") }
            // The whole-file check reads every page: done while the file is small, skipped past
            // `quickCheckMaxPages` so a restart does not grow with history (damage in a large
            // file is found when its pages are read, and is the same error then).
            if Int(try db.scalar("PRAGMA page_count") ?? "0") ?? 0 <= quickCheckMaxPages {
                let check = try db.scalar("PRAGMA quick_check") ?? "no answer"
                guard check == "ok" else { throw TaskStoreError.corrupt(path: path, detail: "integrity check: \(check)") }
            }
            try db.execute(logsTable + blobRefsTable)
            if try db.scalar("PRAGMA auto_vacuum") != "2" {
                // A database made before version 4: one VACUUM rewrites it with incremental
                // auto-vacuum (a one-time cost, about a second per 100 MB here).
                try db.execute("PRAGMA auto_vacuum = INCREMENTAL; VACUUM")
            }
        } catch let error as SQLiteError {
            throw classify(error, path: path, directory: directory)
        } catch let error as TaskStoreError {
            throw error
        } catch {
            throw .corrupt(path: path, detail: "\(error)")
        }
    }

    /// Versions 1 and 2 to 3 (then `migrateToV4`), in one transaction, additively. 1 to 2: new columns, empty
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
            try db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        }
    }

    /// Version 4 to 5 (additive): a run's duration as its worker measured it on its monotonic
    /// clock (`TaskRun.runMs`); null for the runs before it, whose duration stays the
    /// difference of their dates.
    private static func migrateToV5(_ db: SQLiteDatabase) throws(SQLiteError) {
        try db.transaction { () throws(SQLiteError) in
            // A database made by this schema and marked older (tests) has the column already.
            if try db.scalar("SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'run_ms'") == "0" {
                try db.execute("ALTER TABLE runs ADD COLUMN run_ms INTEGER")
            }
            try db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
        }
    }

    /// Version 2 or 3 to 4, in one transaction (additive): the index restarts and retention
    /// find finished tasks by (`tasks_by_finished`), and `blob_refs` filled from what the
    /// tasks name. Auto-vacuum is switched on after it (`prepareSchema`), as it needs a
    /// VACUUM outside any transaction.
    private static func migrateToV4(_ db: SQLiteDatabase) throws(SQLiteError) {
        try db.transaction { () throws(SQLiteError) in
            try db.execute("CREATE INDEX IF NOT EXISTS tasks_by_finished ON tasks (finished_at, sequence);" + blobRefsTable)
            try db.execute("""
                INSERT OR IGNORE INTO blob_refs (sha256, task_id)
                    SELECT json_extract(j.value, '$.sha256'), t.id FROM tasks t, json_each(t.spec, '$.inputBlobs') j
                    WHERE json_type(t.spec, '$.inputBlobs') = 'array' AND json_extract(j.value, '$.sha256') IS NOT NULL;
                INSERT OR IGNORE INTO blob_refs (sha256, task_id)
                    SELECT json_extract(j.value, '$.sha256'), t.id FROM tasks t, json_each(t.info, '$.artifacts') j
                    WHERE json_type(t.info, '$.artifacts') = 'array' AND json_extract(j.value, '$.sha256') IS NOT NULL;
                UPDATE meta SET value = '4' WHERE key = 'schema_version';
                """)
        }
    }
}
