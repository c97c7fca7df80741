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
/// (and header) the same way, whichever descriptor it goes through. A checkpoint syncs the
/// WAL before copying it into the database, then the database, so frames a restarted WAL
/// overwrites are durable in the database already. The WAL's name in the directory is made durable by one fsync of the
/// directory (SQLite does that at the first sync of a new WAL). Nothing here locks: SQLite
/// takes its locks on the database and `-shm` files, never on the WAL, so opening and closing
/// the WAL here releases none of them.
///
/// Checkpoints leave the loop thread too, mostly: with `syncOnCommit` off, no commit
/// checkpoints (SQLite's automatic one, every 1,000 frames, synced the WAL and the database on
/// the committing thread: 586 `fdatasync`s on the scheduler's loop thread in one `swarm bench
/// dag`, 2.8 s of 60). The owner runs `checkpointJob` on another thread once `checkpointDue`:
/// a passive checkpoint on a connection of its own, syncing as SQLite's would. It copies only
/// the frames written before it started, and the WAL starts over (at a commit) only once
/// every frame is copied: a loop that commits all along may keep that from happening, so past
/// `inlineCheckpointFrames` the owner checkpoints on its own connection (`checkpointHere`),
/// which copies what the background ones left, and the next commit starts the WAL over. So
/// the WAL stays under about `inlineCheckpointFrames` frames, and `journal_size_limit` cuts
/// the file back to that after a transaction that grew it further.
extension TaskStore {
    /// WAL frames (pages) past which a checkpoint is due, on another thread.
    public static let checkpointFrames = 500
    /// WAL frames past which the owner checkpoints on its own thread (`checkpointHere`):
    /// SQLite's default for its automatic checkpoint, so the WAL stays as long as it was. With
    /// 2,000 the soak's database bound failed (its WAL grew from 5 to 9 MB over the run).
    public static let inlineCheckpointFrames = 1_000
    /// The WAL file is cut back to this many bytes (about `inlineCheckpointFrames` frames of
    /// 4 KiB) when it starts over (`PRAGMA journal_size_limit`).
    public static let walSizeLimit = 4 << 20

    /// Whether the WAL is long enough for a background checkpoint (`checkpointJob`).
    public var checkpointDue: Bool { !syncOnCommit && database.walFrames >= Self.checkpointFrames }

    /// Whether the WAL is long enough for a checkpoint on the owner's thread (`checkpointHere`).
    public var inlineCheckpointDue: Bool { !syncOnCommit && database.walFrames >= Self.inlineCheckpointFrames }

    /// Frames in the WAL after the last commit.
    public var walFrames: Int { database.walFrames }

    /// A checkpoint here, on the store's connection (no other writer beside it: it copies every
    /// frame, so the next commit starts the WAL over). Not while a `checkpointJob` runs (that
    /// one holds the checkpoint lock: this one would fail, busy).
    public func checkpointHere() throws(TaskStoreError) {
        do { try database.checkpoint() } catch { throw Self.classify(error, path: path, directory: directory) }
    }

    /// Work for another thread: a passive checkpoint of the WAL into the database, on a
    /// connection of its own (opened and closed there; the store's connection stays open
    /// meanwhile, so this close neither checkpoints again nor removes the WAL). Returns nil
    /// once done, or what failed: nothing is lost then (the WAL still holds every frame), and
    /// a later checkpoint tries again.
    public func checkpointJob() -> @Sendable () -> TaskStoreError? {
        let path = self.path, directory = self.directory
        return {
            do throws(SQLiteError) {
                let database = try SQLiteDatabase(path: path)
                defer { database.close() }
                // The syncs of a checkpoint: the WAL before the copy, the database after.
                try database.execute("PRAGMA synchronous = FULL")
                try database.checkpoint()
                return nil
            } catch {
                return Self.classify(error, path: path, directory: directory)
            }
        }
    }

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
