import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// `TaskStore` on real files: what it saves comes back, and a database it cannot trust is
/// refused, never replaced.
@Suite struct TaskStoreTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    static func tempDir() -> String {
        NSTemporaryDirectory() + "swarm-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Rows of `runs` for one task: "attempt:node:state:reason".
    static func runs(_ dir: String, _ id: String) throws -> [String] {
        let db = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true)
        let rows = try db.prepare("SELECT attempt, node, state, reason, finished_at IS NOT NULL FROM runs WHERE task_id = ?1 ORDER BY attempt")
        try rows.bind(1, id)
        var out: [String] = []
        while try rows.step() {
            out.append("\(rows.int64(0)!):\(rows.string(1) ?? "-"):\(rows.string(2)!):\(rows.string(3) ?? "-"):\(rows.int64(4)!)")
        }
        return out
    }

    /// A clean close leaves only `swarm.db` (and the lock file): statements still held by
    /// the store (and by anyone else) are finalized so SQLite checkpoints and removes its WAL.
    @Test func closeRemovesTheWALAndSharedMemoryFilesEvenWithStatementsAlive() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        let store = try TaskStore(directory: dir)
        try S.submit(&state, ["t"])
        try store.save(state.takeChanges(), at: Self.t0)
        _ = store.log(id: "t")
        let other = try SQLiteDatabase(path: dir + "/swarm.db")
        let held = try other.prepare("SELECT count(*) FROM tasks")
        #expect(try held.step())
        #expect(FileManager.default.fileExists(atPath: dir + "/swarm.db-wal"))
        other.close()
        store.close()
        #expect(!FileManager.default.fileExists(atPath: dir + "/swarm.db-wal"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/swarm.db-shm"))
        #expect(throws: SQLiteError.self) { _ = try held.step() }
    }

    @Test func whatIsSavedComesBackAfterReopening() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        var store: TaskStore? = try TaskStore(directory: dir)
        try S.submit(&state, ["t", "u", "w"])
        _ = try S.register(&state, "a", slots: 2)
        _ = state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1)
        try store!.save(state.takeChanges(), at: Self.t0 + 1)
        _ = state.taskFinished(node: "a", result: S.result("t", at: Self.t0 + 2), at: Self.t0 + 2)
        var lost = S.result("u", .lost, at: Self.t0 + 3)
        lost.reason = "worker a shut down while the task ran"
        _ = state.taskFinished(node: "a", result: lost, at: Self.t0 + 3)
        _ = state.schedule(nowMs: Self.t0 + 4, at: Self.t0 + 4)  // u attempt 2 and w on a
        try store!.save(state.takeChanges(), at: Self.t0 + 4)
        store = nil  // closes, releasing the lock

        let reopened = try TaskStore(directory: dir)
        let loaded = try reopened.loadTasks()
        #expect(loaded.map(\.info.id) == ["t", "u", "w"])
        #expect(loaded.map(\.sequence) == [1, 2, 3])
        #expect(loaded.map(\.info) == ["t", "u", "w"].map { id in
            var info = try! state.task(id)
            info.runs = nil  // runs come back beside the task, not in it
            return info
        })
        #expect(loaded.map(\.runs) == ["t", "u", "w"].map { try! state.task($0).runs ?? [] })
        #expect(loaded.first?.info.output == "out t")
        #expect(loaded.first?.spec == TaskSpec(id: "t", command: ["run", "t"]))
        #expect(try Self.runs(dir, "t") == ["1:a:succeeded:-:1"])
        #expect(try Self.runs(dir, "u") == ["1:a:lost:worker a shut down while the task ran:1", "2:a:running:-:0"])
    }

    @Test func aFileThatIsNotADatabaseIsRefusedAndKept() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let junk = String(repeating: "not a database\n", count: 300)
        try junk.write(toFile: dir + "/swarm.db", atomically: true, encoding: .utf8)
        #expect { _ = try TaskStore(directory: dir) } throws: { error in
            guard case .notASwarmDatabase = error as? TaskStoreError else { return false }
            return "\(error)".contains("refusing to start")
        }
        #expect(try String(contentsOfFile: dir + "/swarm.db", encoding: .utf8) == junk)
    }

    @Test func aNewerSchemaIsRefused() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TaskStore(directory: dir).close()
        try SQLiteDatabase(path: dir + "/swarm.db").execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        #expect { _ = try TaskStore(directory: dir) } throws: { error in
            guard case .newerSchema(_, 99, TaskStore.schemaVersion) = error as? TaskStoreError else { return false }
            return true
        }
    }

    @Test func anotherSQLiteDatabaseIsRefused() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try SQLiteDatabase(path: dir + "/swarm.db").execute("CREATE TABLE photos (id INTEGER)")
        #expect { _ = try TaskStore(directory: dir) } throws: { error in
            guard case .notASwarmDatabase = error as? TaskStoreError else { return false }
            return true
        }
    }

    @Test func aRowThatCannotBeReadIsReportedNotSkipped() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        try S.submit(&state, ["t"])
        do {
            let store = try TaskStore(directory: dir)
            try store.save(state.takeChanges(), at: Self.t0)
        }
        try SQLiteDatabase(path: dir + "/swarm.db").execute("UPDATE tasks SET info = '{\"id\": 3}'")
        let store = try TaskStore(directory: dir)
        #expect { _ = try store.loadTasks() } throws: { error in
            guard case .corrupt = error as? TaskStoreError else { return false }
            return true
        }
    }

    @Test func aSecondSchedulerOnTheSameDirectoryIsRefused() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try TaskStore(directory: dir)
        #expect { _ = try TaskStore(directory: dir) } throws: { error in
            guard case .inUse = error as? TaskStoreError else { return false }
            return true
        }
        first.close()
        // Other tests spawn processes from this process all the time: a child between its
        // clone and its exec holds a copy of the lock's descriptor (closed at exec, O_CLOEXEC),
        // and with it the flock, for a moment. So the lock is free again within a bounded time.
        var reopened: TaskStore?
        for _ in 0..<2_000 where reopened == nil {
            do { reopened = try TaskStore(directory: dir) } catch {
                guard case .inUse = error else { throw error }
                usleep(10_000)
            }
        }
        #expect(reopened != nil, "the lock was not released within 20 s of close()")
    }

    @Test func priorityIsTakenFromTheSpecWhenItHasOne() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TaskStore(directory: dir)
        let info = TaskInfo(id: "p", state: .queued, command: ["true"], submittedAt: Self.t0)
        try store.save(StateChanges(tasks: [TaskSnapshot(spec: TaskSpec(id: "p", command: ["true"]), info: info, sequence: 1)]), at: Self.t0)
        let db = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true)
        #expect(try db.scalar("SELECT priority FROM tasks WHERE id = 'p'") == "0")
        #expect(try db.scalar("PRAGMA journal_mode") == "wal")
    }

    /// A task submitted since the last save is named in `inserted` (its row is inserted
    /// straight away, with its dependencies); one that changes afterwards is not, and its row
    /// is updated. Either way what is saved comes back.
    @Test func newTasksAreInsertedOnceAndUpdatedAfter() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        let store = try TaskStore(directory: dir)
        try S.submit(&state, ["a"])
        var dependent = TaskSpec(id: "b", command: ["run", "b"])
        dependent.after = ["a"]
        _ = try state.submit(dependent, at: Self.t0)
        let submitted = state.takeChanges()
        #expect(submitted.inserted == ["a", "b"])
        try store.save(submitted, at: Self.t0)
        _ = try S.register(&state, "w", slots: 2)
        _ = state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1)
        let placed = state.takeChanges()
        #expect(placed.inserted.isEmpty && placed.tasks.map(\.info.id) == ["a"])
        try store.save(placed, at: Self.t0 + 1)
        _ = state.taskFinished(node: "w", result: S.result("a", at: Self.t0 + 2), at: Self.t0 + 2)
        try store.save(state.takeChanges(), at: Self.t0 + 2)
        let saved = try store.loadTasks()
        #expect(saved.map { "\($0.info.id):\($0.info.state.rawValue):\($0.sequence)" } == ["a:succeeded:1", "b:queued:2"])
        #expect(saved.last?.info.after == ["a"])
        let db = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true)
        #expect(try db.scalar("SELECT count(*) FROM tasks") == "2")
        #expect(try db.scalar("SELECT dependency_id FROM dependencies WHERE task_id = 'b'") == "a")
        #expect(try Self.runs(dir, "a") == ["1:w:succeeded:-:1"])
    }

    /// A placement alone writes the task's columns, not its info (`StateChanges.placedOnly`):
    /// the row's info still says queued, and what a reopened store reads back (the restart's
    /// query and `loadTasks`) is the task as placed in memory: state, node, attempts, placedAt.
    /// A placement in the same batch as another change of the task writes the whole row.
    @Test func aPlacementAloneWritesTheColumnsAndReadsBackAsPlaced() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        var store: TaskStore? = try TaskStore(directory: dir)
        try S.submit(&state, ["a", "b"])
        try store!.save(state.takeChanges(), at: Self.t0)
        _ = try S.register(&state, "w", slots: 1)
        _ = state.schedule(nowMs: Self.t0 + 5, at: Self.t0 + 5)
        let placed = state.takeChanges()
        #expect(placed.placedOnly == ["a"] && placed.tasks.map(\.info.id) == ["a"])
        try store!.save(placed, at: Self.t0 + 5)
        let inMemory = try state.task("a")
        #expect(inMemory.state == .running && inMemory.node == "w" && inMemory.attempts == 1 && inMemory.placedAt == Self.t0 + 5)
        let db = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true)
        #expect(try db.scalar("SELECT state || ':' || node || ':' || attempts FROM tasks WHERE id = 'a'") == "running:w:1")
        #expect(try db.scalar("SELECT json_extract(info, '$.state') FROM tasks WHERE id = 'a'") == "queued")
        store = nil
        let reopened = try TaskStore(directory: dir)
        let restart = try reopened.loadRestart(recentFinished: 10).tasks
        let a = try #require(restart.first { $0.info.id == "a" })
        #expect(a.info.state == .running && a.info.node == "w" && a.info.attempts == 1 && a.info.placedAt == Self.t0 + 5)
        #expect(a.runs.map(\.attempt) == [1] && a.runs.first?.node == "w")
        #expect(try reopened.loadTasks().first { $0.info.id == "a" }?.info.state == .running)
        // Submitted and placed in one batch: the whole row.
        var later = ClusterState()
        try S.submit(&later, ["c"])
        _ = try S.register(&later, "v", slots: 1)
        _ = later.schedule(nowMs: Self.t0, at: Self.t0)
        let submittedAndPlaced = later.takeChanges()
        #expect(submittedAndPlaced.placedOnly.isEmpty && submittedAndPlaced.inserted == ["c"])
    }

    /// A task named in `inserted` whose row exists already (an id used again) updates that
    /// row, as a write without the hint does: no error, no second row.
    @Test func aNewTaskWhoseRowExistsUpdatesIt() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TaskStore(directory: dir)
        let spec = TaskSpec(id: "p", command: ["true"])
        var info = TaskInfo(id: "p", state: .queued, command: ["true"], submittedAt: Self.t0)
        try store.save(StateChanges(tasks: [TaskSnapshot(spec: spec, info: info, sequence: 1)], inserted: ["p"]), at: Self.t0)
        info.state = .cancelled
        info.finishedAt = Self.t0 + 1
        try store.save(StateChanges(tasks: [TaskSnapshot(spec: spec, info: info, sequence: 1)], inserted: ["p"]), at: Self.t0 + 1)
        let saved = try store.loadTasks()
        #expect(saved.map { "\($0.info.id):\($0.info.state.rawValue)" } == ["p:cancelled"])
    }
}
