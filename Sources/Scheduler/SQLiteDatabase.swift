import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A failed SQLite call: the result code (`SQLITE_*`, extended codes included), sqlite's
/// own message, and the `errno` of the system call that failed under it (0 when none did).
public enum SQLiteError: Error, Equatable, CustomStringConvertible, Sendable {
    case open(path: String, code: Int32, message: String, systemErrno: Int32 = 0)
    case statement(sql: String, code: Int32, message: String, systemErrno: Int32 = 0)

    public var code: Int32 {
        switch self {
        case .open(_, let code, _, _), .statement(_, let code, _, _): code
        }
    }

    public var systemErrno: Int32 {
        switch self {
        case .open(_, _, _, let errno), .statement(_, _, _, let errno): errno
        }
    }

    /// The primary result code (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, ...), without the extended bits.
    public var primaryCode: Int32 { code & 0xFF }

    /// The disk (or the user's quota) is full: `SQLITE_FULL` (a write that hit `ENOSPC`), or
    /// an I/O error whose system call failed with `ENOSPC` or `EDQUOT` (an fsync, the WAL
    /// index growing).
    public var isNoSpace: Bool {
        primaryCode == SQLITE_FULL || systemErrno == ENOSPC || systemErrno == EDQUOT
    }

    public var description: String {
        let system = systemErrno == 0 ? "" : ", system error: \(String(cString: strerror(systemErrno)))"
        switch self {
        case let .open(path, code, message, _): return "cannot open \(path): \(message) (sqlite code \(code)\(system))"
        case let .statement(sql, code, message, _):
            return "\(message) (sqlite code \(code)\(system)) in: \(sql.count > 80 ? String(sql.prefix(80)) + "..." : sql)"
        }
    }
}

/// One SQLite connection (the system libsqlite3). A thin wrapper: statements, transactions,
/// typed errors. Not thread-safe: use it from one thread (the scheduler's loop thread).
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    public let path: String
    /// The statements prepared on this connection, finalized by `close`.
    private var statements: [WeakStatement] = []
    /// `BEGIN IMMEDIATE` and `COMMIT`, prepared once (`transaction`): `sqlite3_exec` parsed
    /// them at every transaction. Raw handles, finalized by `close` (a `SQLiteStatement`
    /// would keep this connection alive from inside it).
    private var begin: OpaquePointer?
    private var commit: OpaquePointer?
    /// The WAL's frames after the last commit, once `countWALFrames` replaced SQLite's
    /// automatic checkpoint (written by SQLite's WAL hook, on this connection's thread).
    private let frames = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    /// Opens (creating unless `readOnly`) the database at `path`; ":memory:" for a private
    /// in-memory one.
    public init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        self.path = path
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            let system = db.map { sqlite3_system_errno($0) } ?? 0
            sqlite3_close_v2(db)
            throw .open(path: path, code: rc, message: message, systemErrno: system)
        }
        sqlite3_extended_result_codes(db, 1)
        handle = db
        frames.initialize(to: 0)
    }

    deinit {
        close()
        frames.deallocate()
    }

    /// From now on no commit checkpoints the WAL (SQLite's automatic checkpoint, which syncs
    /// the WAL and the database on the committing thread, is replaced); `walFrames` says how
    /// long the WAL is, and the owner checkpoints (`checkpoint`, here or on another
    /// connection).
    public func countWALFrames() {
        guard let handle else { return }
        swarm_sqlite_count_wal(handle, frames)
    }

    /// Frames in the WAL after the last commit (0 before `countWALFrames`); a checkpoint that
    /// copied them all lets the next commit start the WAL over, from frame 1.
    public var walFrames: Int { Int(frames.pointee) }

    /// A passive checkpoint (it never waits for a lock, and a writer on another connection
    /// goes on meanwhile): copies the WAL's frames that no reader needs into the database,
    /// syncing the WAL before and the database after (synchronous NORMAL or FULL). Returns the
    /// WAL's frames and how many are in the database now.
    @discardableResult
    public func checkpoint() throws(SQLiteError) -> (frames: Int, copied: Int) {
        let db = try open("checkpoint")
        var log: Int32 = 0, copied: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &copied)
        guard rc == SQLITE_OK else { throw error("PRAGMA wal_checkpoint(PASSIVE)", rc) }
        return (Int(log), Int(copied))
    }

    /// Idempotent. Finalizes every statement still alive first, so the connection really
    /// closes now: SQLite checkpoints the WAL and removes `-wal` and `-shm` only then (with
    /// statements left open, `sqlite3_close_v2` defers the close, and a process exiting before
    /// they are released leaves both files behind). A finalized statement refuses further use.
    public func close() {
        guard let handle else { return }
        for box in statements { box.statement?.finalize() }
        statements = []
        sqlite3_finalize(begin)
        sqlite3_finalize(commit)
        begin = nil
        commit = nil
        sqlite3_close_v2(handle)
        self.handle = nil
    }

    /// Runs one or more statements that return no rows we need (DDL, pragmas).
    public func execute(_ sql: String) throws(SQLiteError) {
        let db = try open(sql)
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        guard rc == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errorMessage)
            throw .statement(sql: sql, code: rc, message: message, systemErrno: sqlite3_system_errno(db))
        }
    }

    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        let db = try open(sql)
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(sql, rc) }
        let prepared = SQLiteStatement(database: self, statement: statement, sql: sql)
        statements.removeAll { $0.statement == nil }
        statements.append(WeakStatement(statement: prepared))
        return prepared
    }

    /// The single value of a one-row, one-column query (nil for no row or NULL).
    public func scalar(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try prepare(sql)
        return try statement.step() ? statement.string(0) : nil
    }

    /// Runs `body` in `BEGIN IMMEDIATE ... COMMIT`; rolls back if it throws.
    public func transaction<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try run(&begin, "BEGIN IMMEDIATE")
        do {
            let value = try body()
            try run(&commit, "COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `sql` (no parameters, no rows) through the statement kept in `cached`, preparing
    /// it the first time.
    private func run(_ cached: inout OpaquePointer?, _ sql: String) throws(SQLiteError) {
        let db = try open(sql)
        if cached == nil {
            let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &cached, nil)
            guard rc == SQLITE_OK, cached != nil else { throw error(sql, rc) }
        }
        let rc = sqlite3_step(cached)
        let failure = rc == SQLITE_DONE ? nil : error(sql, rc)
        sqlite3_reset(cached)
        if let failure { throw failure }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }

    /// Rows inserted, updated or deleted on this connection since it opened: only grows, and
    /// moves with every write (what group commit counts durability in).
    public var totalChanges: Int64 { handle.map { sqlite3_total_changes64($0) } ?? 0 }

    /// Whether a transaction is open (after a failed COMMIT, SQLite may or may not have
    /// rolled it back itself).
    public var inTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    func error(_ sql: String, _ rc: Int32) -> SQLiteError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        return .statement(sql: sql, code: rc, message: message, systemErrno: handle.map { sqlite3_system_errno($0) } ?? 0)
    }

    private func open(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        guard let handle else { throw .statement(sql: sql, code: SQLITE_MISUSE, message: "database is closed") }
        return handle
    }
}

/// A prepared statement: bind parameters (1-based), step, read columns (0-based), reset to
/// run it again. Keeps its database open while it lives.
public final class SQLiteStatement {
    private let database: SQLiteDatabase
    /// Nil once finalized (by the database's `close`): every use then throws.
    private var handle: OpaquePointer?
    public let sql: String

    init(database: SQLiteDatabase, statement: OpaquePointer, sql: String) {
        self.database = database
        self.handle = statement
        self.sql = sql
    }

    deinit { finalize() }

    func finalize() {
        guard let handle else { return }
        sqlite3_finalize(handle)
        self.handle = nil
    }

    private var statement: OpaquePointer {
        get throws(SQLiteError) {
            guard let handle else { throw .statement(sql: sql, code: SQLITE_MISUSE, message: "database is closed") }
            return handle
        }
    }

    public func bind(_ index: Int32, _ value: Int64?) throws(SQLiteError) {
        let statement = try statement
        let rc = value.map { sqlite3_bind_int64(statement, index, $0) } ?? sqlite3_bind_null(statement, index)
        try check(rc)
    }

    public func bind(_ index: Int32, _ value: Int?) throws(SQLiteError) {
        try bind(index, value.map { Int64($0) })
    }

    public func bind(_ index: Int32, _ value: String?) throws(SQLiteError) {
        let statement = try statement
        guard let value else { return try check(sqlite3_bind_null(statement, index)) }
        let rc = value.utf8CString.withUnsafeBufferPointer { buffer in
            sqlite3_bind_text(statement, index, buffer.baseAddress, Int32(buffer.count - 1), swarm_sqlite_transient())
        }
        try check(rc)
    }

    /// Binds the values to parameters 1, 2, ... in order.
    public func bindAll(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: try check(sqlite3_bind_null(try statement, index))
            case .integer(let v): try bind(index, v)
            case .text(let v): try bind(index, v)
            }
        }
    }

    /// True when a row is ready to read, false when the statement is done.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(try statement)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw database.error(sql, rc)
    }

    /// Binds `values`, runs to completion, resets: for statements that return no rows.
    public func run(_ values: [SQLiteValue]) throws(SQLiteError) {
        defer { reset() }
        try bindAll(values)
        while try step() {}
    }

    /// Ready to run again; bindings are cleared.
    public func reset() {
        guard let handle else { return }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Column reads answer NULL once the statement is finalized.
    public func isNull(_ column: Int32) -> Bool {
        guard let handle else { return true }
        return sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    public func int64(_ column: Int32) -> Int64? {
        guard let handle, !isNull(column) else { return nil }
        return sqlite3_column_int64(handle, column)
    }

    public func string(_ column: Int32) -> String? {
        guard let handle, let text = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    private func check(_ rc: Int32) throws(SQLiteError) {
        guard rc == SQLITE_OK else { throw database.error(sql, rc) }
    }
}

private struct WeakStatement {
    weak var statement: SQLiteStatement?
}

/// A value to bind.
public enum SQLiteValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case text(String)

    public static func int(_ value: Int?) -> SQLiteValue { value.map { .integer(Int64($0)) } ?? .null }
    public static func int64(_ value: Int64?) -> SQLiteValue { value.map { .integer($0) } ?? .null }
    public static func string(_ value: String?) -> SQLiteValue { value.map { .text($0) } ?? .null }
}

/// Confined to one thread: not Sendable, on purpose.
@available(*, unavailable)
extension SQLiteDatabase: Sendable {}
@available(*, unavailable)
extension SQLiteStatement: Sendable {}
