import SwarmProtocol

/// What one retention step removed from `swarm.db` (`TaskStore.purgeFinished`).
public struct PurgeReport: Sendable, Equatable {
    /// Ids of the finished tasks deleted (with their runs, stored log and blob references).
    public var tasks: [String] = []
    /// Their submission sequences, in the same order.
    public var sequences: [UInt64] = []
    public var runs = 0
    public var logs = 0
    /// Blobs no kept task names any more: the shell removes their files.
    public var blobs: [String] = []
    /// Finished tasks past the limits that were kept because something still needs them
    /// (`keep`): they go in a later step, once it does not.
    public var kept = 0
    /// Whether more tasks past the limits remain (the next step should follow soon).
    public var more = false

    public init() {}
}

/// Retention (issue 14 item 2): finished tasks past `maxFinishedTasks` (the oldest by
/// `finished_at`, then submission) or finished before a cutoff are deleted, a bounded batch
/// per transaction, through `tasks_by_finished`; the freed pages go back to the file system
/// (`auto_vacuum = INCREMENTAL`).
extension TaskStore {
    /// Deletes up to `batch` finished tasks that finished before `cutoffMs` (wall-clock unix
    /// ms; nil: no age limit) or are beyond the newest `maxFinished`, oldest first, in one
    /// transaction, except those `keep` answers true for (still referenced by tasks in
    /// flight). Then returns freed pages to the file system.
    public func purgeFinished(cutoffMs: Int64?, maxFinished: Int?, batch: Int,
                              keep: (String) -> Bool) throws(TaskStoreError) -> PurgeReport {
        do {
            guard let bound = try purgeBound(cutoffMs: cutoffMs, maxFinished: maxFinished) else { return PurgeReport() }
            let report = try database.transaction { () throws(SQLiteError) -> PurgeReport in
                try purge(below: bound, batch: max(1, batch), keep: keep)
            }
            if !report.tasks.isEmpty { try database.execute("PRAGMA incremental_vacuum") }
            return report
        } catch {
            throw Self.classify(error, path: path, directory: directory)
        }
    }

    /// The (finished_at, sequence) below which finished tasks go: the later of the age cutoff
    /// and the newest `maxFinished`'s boundary. Nil: nothing is past either limit.
    private func purgeBound(cutoffMs: Int64?, maxFinished: Int?) throws(SQLiteError) -> (Int64, Int64)? {
        var bound: (Int64, Int64)? = cutoffMs.map { ($0, 0) }
        if let maxFinished {
            // The newest task beyond the limit: it and everything older go. A walk of
            // `maxFinished` entries of the covering index alone (only finished tasks have a
            // `finished_at`: a requeue clears it; the deletion itself checks the state).
            let query = try statement("""
                SELECT finished_at, sequence FROM tasks WHERE finished_at IS NOT NULL
                ORDER BY finished_at DESC, sequence DESC LIMIT 1 OFFSET ?1
                """)
            defer { query.reset() }
            try query.bindAll([.int(max(0, maxFinished))])
            if try query.step(), let at = query.int64(0), let sequence = query.int64(1) {
                let past = (at, sequence + 1)
                if bound.map({ past.0 > $0.0 || (past.0 == $0.0 && past.1 > $0.1) }) ?? true { bound = past }
            }
        }
        return bound
    }

    private func purge(below bound: (Int64, Int64), batch: Int, keep: (String) -> Bool) throws(SQLiteError) -> PurgeReport {
        var report = PurgeReport()
        let candidates = try statement("""
            SELECT id, sequence FROM tasks WHERE (finished_at, sequence) < (?1, ?2) AND +state IN (\(Self.endedStates))
            ORDER BY finished_at, sequence LIMIT ?3
            """)
        var ids: [String] = []
        var sequences: [UInt64] = []
        do {
            defer { candidates.reset() }
            // Kept ones are read past: a batch is `batch` deletions when there are that many.
            try candidates.bindAll([.integer(bound.0), .integer(bound.1), .int(batch + Self.keptLookahead)])
            while try candidates.step() {
                guard let id = candidates.string(0) else { continue }
                if ids.count == batch { report.more = true; break }
                if keep(id) {
                    report.kept += 1
                } else {
                    ids.append(id)
                    sequences.append(UInt64(max(0, candidates.int64(1) ?? 0)))
                }
            }
        }
        var shas = Set<String>()
        let blobsOf = try statement("SELECT sha256 FROM blob_refs WHERE task_id = ?1")
        for id in ids {
            try blobsOf.bindAll([.text(id)])
            while try blobsOf.step() { if let sha = blobsOf.string(0) { shas.insert(sha) } }
            blobsOf.reset()
            try statement("DELETE FROM runs WHERE task_id = ?1").run([.text(id)])
            report.runs += database.changes
            try statement("DELETE FROM logs WHERE task_id = ?1").run([.text(id)])
            report.logs += database.changes
            try statement("DELETE FROM blob_refs WHERE task_id = ?1").run([.text(id)])
            try statement("DELETE FROM dependencies WHERE task_id = ?1").run([.text(id)])
            try statement("DELETE FROM tasks WHERE id = ?1").run([.text(id)])
        }
        let named = try statement("SELECT 1 FROM blob_refs WHERE sha256 = ?1 LIMIT 1")
        for sha in shas.sorted() {
            try named.bindAll([.text(sha)])
            if try !named.step() { report.blobs.append(sha) }
            named.reset()
        }
        report.tasks = ids
        report.sequences = sequences
        return report
    }

    /// Kept tasks a batch reads past at most (beyond its deletions).
    static let keptLookahead = 1_000

    /// The database file's size in bytes (pages in use and free).
    public func databaseBytes() -> Int64 {
        guard let pages = try? database.scalar("PRAGMA page_count").flatMap(Int64.init),
              let size = try? database.scalar("PRAGMA page_size").flatMap(Int64.init) else { return 0 }
        return pages * size
    }
}
