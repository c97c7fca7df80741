import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Issue 14 items 2 and 5 on real SQLite files: a restart reads the tasks in flight and the
/// recent finished ones through indexes (rows read, not time), and retention deletes finished
/// tasks past its limits with their runs, logs and the blobs no kept task names.
@Suite struct StoreRetentionTests {
    /// A store holding `finished` succeeded tasks `h1...` (finished at 10_000 + i, each with
    /// one run and a stored log) and `queued` queued ones `q1...` after them, written in one
    /// statement each (20,000 rows in well under a second).
    static func store(finished: Int, queued: Int) throws -> (TaskStore, String) {
        let dir = TaskStoreTests.tempDir()
        var state = ClusterState()
        _ = try state.submit(TaskSpec(id: "template", command: ["true"]), at: 1)
        _ = try state.cancel("template", at: 2)
        let store = try TaskStore(directory: dir)
        try store.save(state.takeChanges(), at: 2)
        try store.database.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(finished))
            INSERT INTO tasks (id, sequence, state, priority, node, attempts, submitted_at, finished_at, spec, info, retry)
            SELECT 'h' || i, 1 + i, 'succeeded', 0, 'w1', 1, 1, 10000 + i,
                   json_set(t.spec, '$.id', 'h' || i),
                   json_set(t.info, '$.id', 'h' || i, '$.state', 'succeeded', '$.finishedAt', 10000 + i, '$.attempts', 1), t.retry
            FROM n, (SELECT spec, info, retry FROM tasks WHERE id = 'template') t;
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(finished))
            INSERT INTO runs (task_id, attempt, node, placed_at, started_at, finished_at, state)
            SELECT 'h' || i, 1, 'w1', 1, 1, 10000 + i, 'succeeded' FROM n;
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(finished))
            INSERT INTO logs (task_id, text) SELECT 'h' || i, 'output of h' || i FROM n;
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(queued))
            INSERT INTO tasks (id, sequence, state, priority, node, attempts, submitted_at, finished_at, spec, info, retry)
            SELECT 'q' || i, 1 + \(finished) + i, 'queued', 0, NULL, 0, 1, NULL,
                   json_set(t.spec, '$.id', 'q' || i), json_set(t.info, '$.id', 'q' || i, '$.state', 'queued', '$.finishedAt', NULL), t.retry
            FROM n, (SELECT spec, info, retry FROM tasks WHERE id = 'template') t;
            DELETE FROM tasks WHERE id = 'template';
            """)
        return (store, dir)
    }

    @Test func aRestartReadsTheTasksInFlightAndTheRecentFinishedOnlyThroughIndexes() throws {
        let (store, dir) = try Self.store(finished: 20_000, queued: 100)
        defer { store.close(); try? FileManager.default.removeItem(atPath: dir) }
        let (tasks, last) = try store.loadRestart(recentFinished: 500)
        // Rows read: 600 of 20,100 (3%), whatever the history.
        #expect(tasks.count == 600)
        #expect(tasks.filter { $0.info.state == .queued }.count == 100)
        let finished = tasks.filter { $0.info.state == .succeeded }.map(\.info.id)
        #expect(finished.first == "h19501" && finished.last == "h20000", "the 500 that finished last")
        #expect(tasks.map(\.sequence) == tasks.map(\.sequence).sorted())
        #expect(tasks.first { $0.info.id == "h20000" }?.runs.count == 1)
        #expect(last == 20_101)
        // Each query walks an index: no scan of the table, no sort of what it found.
        for sql in TaskStore.restartQueries {
            let plan = try store.queryPlan(sql)
            #expect(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"), "\(plan)")
            #expect(!plan.contains("SCAN") && !plan.contains("TEMP B-TREE"), "\(plan)")
        }
        #expect(try store.queryPlan("SELECT max(sequence) FROM tasks").contains("INDEX"))
        // Nothing is read beyond that: 0 recent, only the 100 queued.
        #expect(try store.loadRestart(recentFinished: 0).tasks.count == 100)
    }

    @Test func retentionDeletesPastTheCountOldestFirstInBatchesKeepingWhatIsNamed() throws {
        let (store, dir) = try Self.store(finished: 2_000, queued: 1)
        defer { store.close(); try? FileManager.default.removeItem(atPath: dir) }
        // h1-h500 name blob A, h501-h1000 blob B, which queued q1 names too.
        try store.database.execute("""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
            INSERT INTO blob_refs (sha256, task_id) SELECT CASE WHEN i <= 500 THEN 'A' ELSE 'B' END, 'h' || i FROM n;
            INSERT INTO blob_refs (sha256, task_id) VALUES ('B', 'q1');
            """)
        var deleted: [String] = []
        var blobs: [String] = []
        var steps = 0
        var kept = 0
        while steps < 10 {
            steps += 1
            let report = try store.purgeFinished(cutoffMs: nil, maxFinished: 1_000, batch: 300, keep: { $0 == "h999" })
            #expect(report.tasks.count <= 300)
            #expect(report.runs == report.tasks.count && report.logs == report.tasks.count)
            deleted += report.tasks
            blobs += report.blobs
            kept = report.kept
            if !report.more { break }
        }
        // Exactly the 1,000 oldest but h999, kept while something needs it; A is free, B is not.
        #expect(steps == 4)
        #expect(deleted.count == 999 && !deleted.contains("h999") && !deleted.contains("h1001"))
        #expect(kept == 1)
        #expect(blobs == ["A"])
        let count = try store.database.scalar("SELECT count(*) FROM tasks")
        #expect(count == "1002")
        // At the limit exactly (1,001 finished left), nothing goes; one below, h999 does.
        #expect(try store.purgeFinished(cutoffMs: nil, maxFinished: 1_001, batch: 300, keep: { _ in false }).tasks.isEmpty)
        #expect(try store.purgeFinished(cutoffMs: nil, maxFinished: 1_000, batch: 300, keep: { _ in false }).tasks == ["h999"])
        // By age: finished before 10_000 + 1_501 (h1001-h1500 left).
        let old = try store.purgeFinished(cutoffMs: 11_501, maxFinished: nil, batch: 1_000, keep: { _ in false })
        #expect(old.tasks.count == 500 && old.tasks.first == "h1001" && old.tasks.last == "h1500")
        // Queued tasks are never deleted, whatever the limits.
        _ = try store.purgeFinished(cutoffMs: Int64.max, maxFinished: 0, batch: 5_000, keep: { _ in false })
        #expect(try store.database.scalar("SELECT group_concat(id) FROM tasks") == "q1")
        // The purge walks `tasks_by_finished`.
        let plan = try store.queryPlan("SELECT id FROM tasks WHERE (finished_at, sequence) < (1, 2) AND +state IN (\(TaskStore.endedStates)) ORDER BY finished_at, sequence LIMIT 3")
        #expect(plan.contains("tasks_by_finished") && !plan.contains("TEMP B-TREE"), "\(plan)")
    }

    @Test func aSavedTaskRecordsTheBlobsItNamesAndTheDatabaseVacuumsIncrementally() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        var spec = TaskSpec(id: "in", command: ["true"])
        let sha = String(repeating: "ab", count: 32)
        spec.inputBlobs = [InputRef(dest: "src", sha256: sha, size: 3)]
        _ = try state.submit(spec, at: 1)
        let store = try TaskStore(directory: dir)
        defer { store.close() }
        try store.save(state.takeChanges(), at: 1)
        #expect(try store.database.scalar("SELECT task_id FROM blob_refs WHERE sha256 = '\(sha)'") == "in")
        #expect(try store.database.scalar("PRAGMA auto_vacuum") == "2", "incremental")
    }

    @Test func aVersion2DatabaseIsMigratedToVersion4WithItsBlobReferences() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            var state = ClusterState()
            var spec = TaskSpec(id: "in", command: ["true"])
            spec.inputBlobs = [InputRef(dest: "src", sha256: String(repeating: "fe", count: 32), size: 3)]
            _ = try state.submit(spec, at: 1)
            let store = try TaskStore(directory: dir)
            try store.save(state.takeChanges(), at: 1)
            // Back to what version 2 had: no index, no blob_refs, no auto-vacuum.
            try store.database.execute("""
                DROP INDEX tasks_by_finished; DROP TABLE blob_refs;
                UPDATE meta SET value = '2' WHERE key = 'schema_version';
                PRAGMA auto_vacuum = NONE; VACUUM;
                """)
            #expect(try store.database.scalar("PRAGMA auto_vacuum") == "0")
            store.close()
        }
        let store = try TaskStore(directory: dir)
        defer { store.close() }
        #expect(try store.database.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == String(TaskStore.schemaVersion))
        #expect(try store.database.scalar("SELECT task_id FROM blob_refs WHERE sha256 = '\(String(repeating: "fe", count: 32))'") == "in")
        #expect(try store.database.scalar("PRAGMA auto_vacuum") == "2")
        #expect(try store.loadTasks().map(\.info.id) == ["in"])
    }
}
