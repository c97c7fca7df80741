import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// Group commit's disk side: with `syncOnCommit` off, a commit lands in the WAL (the page
/// cache) at once, and `syncJob` makes every commit written so far durable from another
/// thread, so the loop thread never waits on the disk.
///
/// Why that is as durable as `synchronous=FULL`: in WAL mode FULL differs from NORMAL only by
/// an fsync of the WAL at each commit (and of its header when the WAL restarts). An
/// `fdatasync` of the WAL file started after a commit returned covers that commit's frames
/// (and header) the same way, whichever descriptor it goes through. A checkpoint (still run
/// by SQLite at a commit, on the loop thread) syncs the WAL before copying it into the
/// database, then the database, so frames a restarted WAL overwrites are durable in the
/// database already. The WAL's name in the directory is made durable by one fsync of the
/// directory (SQLite does that at the first sync of a new WAL). Nothing here locks: SQLite
/// takes its locks on the database and `-shm` files, never on the WAL, so opening and closing
/// the WAL here releases none of them.
extension TaskStore {
    /// The store's write position: compare it before and after a sync job (`GroupCommit`).
    public var changeCount: Int64 { database.totalChanges }

    /// Work for another thread: makes durable every commit written before it runs (fdatasync
    /// of `swarm.db-wal`; the first job also fsyncs the state directory). Returns nil once
    /// done, or what failed (`.noSpace` for a full disk or quota). Touches no state of the
    /// store: safe to run while the loop writes on.
    public func syncJob() -> @Sendable () -> TaskStoreError? {
        let wal = path + "-wal", database = path, directory = self.directory
        let withDirectory = !directorySynced
        directorySynced = true
        return {
            // No WAL: SQLite checkpointed it into the database and removed it (only when the
            // store closes): the database file then holds everything.
            if let error = Self.sync(wal, missingIsFine: true) ?? Self.sync(database, missingIsFine: false, onlyIfMissing: wal) {
                return Self.syncError(error, directory: directory)
            }
            if withDirectory, let error = Self.sync(directory, missingIsFine: false) {
                return Self.syncError(error, directory: directory)
            }
            return nil
        }
    }

    /// `fdatasync` of `path` (a directory: `fsync`); `(path, errno)` when it failed.
    /// `onlyIfMissing`: do it only when that other file does not exist.
    private static func sync(_ path: String, missingIsFine: Bool, onlyIfMissing other: String? = nil)
        -> (path: String, errno: Int32)? {
        if let other, access(other, F_OK) == 0 { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            return missingIsFine && e == ENOENT ? nil : (path, e)
        }
        defer { Glibc.close(fd) }
        var info = stat()
        let isDirectory = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
        while true {
            let rc = isDirectory ? fsync(fd) : fdatasync(fd)
            if rc == 0 { return nil }
            if errno != EINTR { return (path, errno) }
        }
    }

    private static func syncError(_ failure: (path: String, errno: Int32), directory: String) -> TaskStoreError {
        let error = SQLiteError.statement(sql: "fdatasync \(failure.path)", code: Int32(SQLITE_IOERR) | (4 << 8),
                                          message: "disk I/O error", systemErrno: failure.errno)
        return error.isNoSpace ? .noSpace(directory: directory, error) : .sqlite(path: failure.path, error)
    }
}
