import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Retries and run history across restarts: what the store keeps (runs with exit codes, the
/// retry state), a task in its backoff after a restart, and a version 1 state directory
/// migrated in place.
@Suite struct RetryDurabilityTests {
    typealias S = SchedulerStateTests
    typealias R = RetryTests
    static let t0 = SchedulerStateTests.t0

    /// t failed on a and waits out its backoff; u succeeded on b. Saved, then "restarted".
    static func failedAndSaved(_ store: TaskStore) throws -> (ClusterState, delayMs: Int64) {
        var state = R.state()
        _ = try S.register(&state, "a", slots: 1)
        _ = try S.register(&state, "b", slots: 1)
        try R.submit(&state, "t", retries: 2, backoff: 30)
        try S.submit(&state, ["u"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.taskFinished(node: "a", result: S.result("t", .failed, at: Self.t0 + 10), at: Self.t0 + 10)
        _ = state.taskFinished(node: "b", result: S.result("u", at: Self.t0 + 10), at: Self.t0 + 10)
        _ = state.schedule(nowMs: Self.t0 + 10, at: Self.t0 + 10)
        try store.save(state.takeChanges(), at: Self.t0 + 10)
        let delay = R.delays(RetryPolicy(retries: 2, backoffMs: 30_000), count: 1)[0]
        return (state, delay)
    }

    @Test func aTaskInItsBackoffWaitsItWholeAgainAfterARestartAndKeepsItsRuns() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store: TaskStore? = try TaskStore(directory: dir)
        let (before, delay) = try Self.failedAndSaved(store!)
        store = nil

        let reopened = try TaskStore(directory: dir)
        let loaded = try reopened.loadTasks()
        let t = try #require(loaded.first { $0.info.id == "t" })
        #expect(t.retry.used == 1 && t.retry.backoff == RetryState.Backoff(delayMs: delay, after: .failed, node: "a"))
        #expect(t.runs == (try before.task("t").runs))
        #expect(t.runs.first?.exitCode == 1 && t.runs.first?.reason == nil && t.runs.first?.finishedAt == Self.t0 + 10)

        // The restarted scheduler (its monotonic clock anywhere: here 5 s) arms the whole
        // delay at its first round, and says so.
        let restartMs: Int64 = 5_000
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000), restoring: loaded, nowMs: restartMs, at: Self.t0 + 60_000)
        #expect(try state.task("t").state == .queued && state.placementInvariantViolations().isEmpty)
        #expect(state.waitReason(for: "t")?.reason == "retrying in \(ClusterState.seconds(delay)) after failed on a")
        _ = try S.register(&state, "a", slots: 1, at: restartMs)
        _ = try S.register(&state, "b", slots: 1, at: restartMs)
        #expect(state.schedule(nowMs: restartMs, at: Self.t0 + 60_000).isEmpty)
        #expect(state.nextBackoffDueMs == restartMs + delay)
        #expect(state.schedule(nowMs: restartMs + delay - 1, at: Self.t0 + 60_000).isEmpty)
        // Still prefers a node other than a.
        #expect(S.assigns(state.schedule(nowMs: restartMs + delay, at: Self.t0 + 90_000)).map { "\($0.node):\($0.attempt)" } == ["b:2"])
        try reopened.save(state.takeChanges(), at: Self.t0 + 90_000)
        #expect(try TaskStoreTests.runs(dir, "t") == ["1:a:failed:-:1", "2:b:running:-:0"])
    }

    @Test func theStoreKeepsExitCodesAndPrunesRunsPastTheLimit() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TaskStore(directory: dir)
        var state = R.state()
        _ = try S.register(&state, "a", slots: 1)
        try R.submit(&state, "t", retries: 100, backoff: 0)
        var now = Self.t0
        for attempt in 1...(TaskRun.maxKept + 3) {
            _ = state.schedule(nowMs: now, at: now)
            var result = S.result("t", .failed, attempt: attempt, at: now + 1)
            result.exitCode = nil
            result.signal = 9
            _ = state.taskFinished(node: "a", result: result, at: now + 1)
            try store.save(state.takeChanges(), at: now + 1)
            now += 10
        }
        let loaded = try #require(try store.loadTasks().first)
        #expect(loaded.runs.count == TaskRun.maxKept)
        #expect(loaded.runs.first?.attempt == 4 && loaded.runs.last?.attempt == TaskRun.maxKept + 3)
        #expect(loaded.runs.allSatisfy { $0.signal == 9 && $0.exitCode == nil && $0.state == .failed })
        #expect(try TaskStoreTests.runs(dir, "t").count == TaskRun.maxKept)
        #expect(loaded.retry.used == TaskRun.maxKept + 3)
    }

    /// A run's duration is its worker's monotonic `runMs`, kept by the store, not the
    /// difference of its dates (which a wall-clock step an hour forward stretched to an hour).
    @Test func aRunKeepsItsWorkersMonotonicDurationAcrossARestart() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TaskStore(directory: dir)
        var state = R.state()
        _ = try S.register(&state, "a", slots: 2)
        try R.submit(&state, "stepped", retries: 0, backoff: 0)
        try R.submit(&state, "old", retries: 0, backoff: 0)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        var result = S.result("stepped", at: Self.t0 + 3_600_000)
        result.startedAt = Self.t0
        result.metrics.runMs = 2_500
        _ = state.taskFinished(node: "a", result: result, at: Self.t0 + 3_600_000)
        var old = S.result("old", at: Self.t0 + 40)
        old.startedAt = Self.t0 + 10
        _ = state.taskFinished(node: "a", result: old, at: Self.t0 + 40)
        #expect(state.tasks["stepped"]?.runs.last?.durationMs == 2_500)
        try store.save(state.takeChanges(), at: Self.t0 + 3_600_000)
        store.close()
        let loaded = try TaskStore(directory: dir).loadTasks()
        #expect(loaded.first { $0.info.id == "stepped" }?.runs.last?.durationMs == 2_500)
        #expect(loaded.first { $0.info.id == "stepped" }?.runs.last?.runMs == 2_500)
        // A worker that sends no `runMs` (before it): the dates' difference, as before.
        #expect(loaded.first { $0.info.id == "old" }?.runs.last?.durationMs == 30)
    }

    /// The schema as version 1 made it (before issue 13).
    static let version1Schema = """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE tasks (id TEXT PRIMARY KEY, sequence INTEGER NOT NULL UNIQUE, state TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0, node TEXT, attempts INTEGER NOT NULL, submitted_at INTEGER NOT NULL,
            finished_at INTEGER, spec TEXT NOT NULL, info TEXT NOT NULL);
        CREATE INDEX tasks_by_state ON tasks (state, priority DESC, sequence);
        CREATE TABLE runs (task_id TEXT NOT NULL, attempt INTEGER NOT NULL, node TEXT, placed_at INTEGER,
            started_at INTEGER, finished_at INTEGER, state TEXT NOT NULL, reason TEXT,
            PRIMARY KEY (task_id, attempt)) WITHOUT ROWID;
        CREATE INDEX runs_by_node ON runs (node, state);
        CREATE TABLE logs (task_id TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema_version', '1');
        """

    @Test func aVersion1StateDirectoryIsMigratedInPlaceAndKeepsItsTasks() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            let db = try SQLiteDatabase(path: dir + "/swarm.db")
            try db.execute(Self.version1Schema)
            var info = TaskInfo(id: "old", state: .running, command: ["run", "old"], node: "a", attempts: 2, submittedAt: Self.t0)
            info.placedAt = Self.t0 + 5
            let infoJSON = String(decoding: try JSONEncoder().encode(info), as: UTF8.self)
            let specJSON = TaskStore.specJSON(TaskSpec(id: "old", command: ["run", "old"]))
            let insert = try db.prepare("INSERT INTO tasks (id, sequence, state, node, attempts, submitted_at, spec, info) VALUES ('old', 1, 'running', 'a', 2, ?1, ?2, ?3)")
            try insert.run([.integer(Self.t0), .text(specJSON), .text(infoJSON)])
            try db.execute("""
                INSERT INTO runs VALUES ('old', 1, 'b', \(Self.t0), NULL, \(Self.t0 + 4), 'lost', 'worker b was lost');
                INSERT INTO runs VALUES ('old', 2, 'a', \(Self.t0 + 5), NULL, NULL, 'running', NULL);
                """)
            db.close()
        }
        let store = try TaskStore(directory: dir)
        let loaded = try store.loadTasks()
        #expect(loaded.map(\.info.id) == ["old"])
        // Version 1 gave up on the attempts' count: one loss so far.
        #expect(loaded.first?.retry == RetryState(losses: 1))
        #expect(loaded.first?.runs.map { "\($0.attempt):\($0.node ?? "-"):\($0.state.rawValue)" } == ["1:b:lost", "2:a:running"])
        let version = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true).scalar("SELECT value FROM meta WHERE key = 'schema_version'")
        #expect(version == String(TaskStore.schemaVersion))

        // It goes on: its run ends with an exit code, saved in the new column.
        var state = ClusterState(settings: SchedulerSettings(), restoring: loaded, nowMs: 0, at: Self.t0 + 100)
        _ = try state.register(node: "a", slots: 1, labels: [:], running: [RunRef(id: "old", attempt: 2)], finished: [],
                               address: nil, nowMs: 0, at: Self.t0 + 100)
        _ = state.taskFinished(node: "a", result: S.result("old", .failed, attempt: 2, at: Self.t0 + 200), at: Self.t0 + 200)
        try store.save(state.takeChanges(), at: Self.t0 + 200)
        store.close()
        let again = try TaskStore(directory: dir)
        #expect(try again.loadTasks().first?.runs.last?.exitCode == 1)
        #expect(try again.loadTasks().first?.info.state == .failed)
    }
}
