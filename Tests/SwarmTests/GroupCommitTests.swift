import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler
import SwarmUV

/// Group commit's bookkeeping (`GroupCommit`), pure: a turn leaves only once a sync that
/// started after its write has ended, turns leave in order, and one sync covers every turn
/// written before it started.
@Suite struct GroupCommitTests {
    @Test func aTurnWithNothingUnsyncedLeavesAtOnce() {
        var commits = GroupCommit<String>(durable: 5)
        #expect(commits.hold("a", written: 5) == ["a"])
        #expect(commits.hold("b", written: 0) == ["b"])
        #expect(commits.startSync(written: 5) == nil)
        #expect(commits.heldCount == 0)
    }

    @Test func aTurnWaitsForASyncStartedAfterItsWrite() {
        var commits = GroupCommit<String>(durable: 0)
        #expect(commits.hold("a", written: 1).isEmpty)
        #expect(commits.startSync(written: 1) == 1)
        // A second sync does not start while one runs.
        #expect(commits.startSync(written: 1) == nil)
        #expect(commits.synced() == ["a"])
        #expect(commits.durable == 1)
        #expect(commits.syncing == nil)
        #expect(commits.heldCount == 0)
    }

    /// The edge: a turn written after the running sync started (written 3 > syncing 2) is not
    /// released by it, and neither is a turn behind it that needs less.
    @Test func turnsWrittenDuringASyncWaitForTheNextOneAndAllLeaveTogether() {
        var commits = GroupCommit<String>(durable: 0)
        #expect(commits.hold("a", written: 2).isEmpty)
        #expect(commits.startSync(written: 2) == 2)
        #expect(commits.hold("b", written: 3).isEmpty)
        #expect(commits.hold("c", written: 5).isEmpty)
        #expect(commits.hold("d", written: 5).isEmpty)  // a turn that wrote nothing more
        #expect(commits.synced() == ["a"])
        #expect(commits.heldCount == 3)
        #expect(commits.startSync(written: 5) == 5)
        #expect(commits.hold("e", written: 6).isEmpty)
        #expect(commits.synced() == ["b", "c", "d"])
        #expect(commits.startSync(written: 6) == 6)
        #expect(commits.synced() == ["e"])
    }

    /// A turn that needs nothing unsynced still waits behind an earlier held turn: replies on
    /// one connection keep their order.
    @Test func aTurnBehindAHeldOneKeepsItsPlace() {
        var commits = GroupCommit<String>(durable: 4)
        #expect(commits.hold("a", written: 6).isEmpty)
        #expect(commits.hold("b", written: 4).isEmpty)
        #expect(commits.startSync(written: 6) == 6)
        #expect(commits.synced() == ["a", "b"])
    }

    @Test func droppingForgetsHeldTurnsAndTheSyncUnderWay() {
        var commits = GroupCommit<Int>(durable: 0)
        for i in 1...3 { #expect(commits.hold(i, written: Int64(i)).isEmpty) }
        #expect(commits.startSync(written: 3) == 3)
        commits.dropAll()
        #expect(commits.heldCount == 0)
        #expect(commits.synced().isEmpty)
        #expect(commits.durable == 0)
    }

    /// Many turns released over many syncs come out whole and in order (the queue's head
    /// compaction included).
    @Test func thousandsOfTurnsLeaveInOrder() {
        var commits = GroupCommit<Int>(durable: 0)
        var out: [Int] = []
        var written: Int64 = 0
        for i in 0..<5_000 {
            written += 1
            out += commits.hold(i, written: written)
            if i % 7 == 0, commits.startSync(written: written) != nil, i % 2 == 0 { out += commits.synced() }
            if i % 3 == 0, commits.syncing != nil { out += commits.synced() }
        }
        if commits.syncing != nil { out += commits.synced() }
        if commits.startSync(written: written) != nil { out += commits.synced() }
        #expect(out == Array(0..<5_000))
    }

    /// With two syncs allowed, a turn written while one runs starts its own at once; a third
    /// waits for one of them to end. The later sync may end first: it releases every turn
    /// written before it started, and the earlier one's end then releases nothing more.
    @Test func aSecondSyncStartsBesideOneUnderWayAndMayEndFirst() {
        var commits = GroupCommit<String>(durable: 0, maxSyncs: 2)
        #expect(commits.hold("a", written: 1).isEmpty)
        #expect(commits.startSync(written: 1) == 1)
        #expect(commits.startSync(written: 1) == nil)  // nothing new to cover
        #expect(commits.hold("b", written: 2).isEmpty)
        #expect(commits.startSync(written: 2) == 2)
        #expect(commits.syncsUnderWay == 2)
        #expect(commits.hold("c", written: 3).isEmpty)
        #expect(commits.startSync(written: 3) == nil)  // two under way: c waits
        // The second ends first: a and b (written before it started) leave, c does not.
        #expect(commits.synced(2) == ["a", "b"])
        #expect(commits.durable == 2 && commits.heldCount == 1)
        #expect(commits.startSync(written: 3) == 3)
        #expect(commits.synced(1).isEmpty)
        #expect(commits.durable == 2)
        #expect(commits.synced(3) == ["c"])
        #expect(commits.syncsUnderWay == 0 && commits.syncing == nil)
        // An end of a sync that is not under way changes nothing.
        #expect(commits.synced(9).isEmpty && commits.durable == 3)
    }

    /// In order or not, two syncs at a time still release every turn once and in order.
    @Test func thousandsOfTurnsLeaveInOrderWithTwoSyncs() {
        var commits = GroupCommit<Int>(durable: 0, maxSyncs: 2)
        var out: [Int] = []
        var running: [Int64] = []
        var written: Int64 = 0
        for i in 0..<5_000 {
            written += 1
            out += commits.hold(i, written: written)
            if i % 5 == 0, let count = commits.startSync(written: written) { running.append(count) }
            // Alternately the newest and the oldest sync ends.
            if i % 3 == 0, !running.isEmpty { out += commits.synced(i % 2 == 0 ? running.removeLast() : running.removeFirst()) }
        }
        while let count = running.popLast() { out += commits.synced(count) }
        if let count = commits.startSync(written: written) { out += commits.synced(count) }
        #expect(out == Array(0..<5_000))
    }
}

/// `TaskStore` with `syncOnCommit` off: commits go to the WAL without an fsync, a sync job
/// (run on another thread) makes them durable, and what was saved comes back.
@Suite struct TaskStoreGroupCommitTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    @Test func commitsSkipTheFsyncAndASyncJobFromAnotherThreadCoversThem() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        var store: TaskStore? = try TaskStore(directory: dir, syncOnCommit: false)
        #expect(try store!.database.scalar("PRAGMA synchronous") == "1")  // NORMAL
        let before = store!.changeCount
        try S.submit(&state, ["t", "u"])
        try store!.save(state.takeChanges(), at: Self.t0)
        let after = store!.changeCount
        #expect(after > before)
        let job = store!.syncJob()
        let failure = Locked<TaskStoreError?>(nil)
        let thread = Thread { failure.withLock { $0 = job() } }
        thread.start()
        for _ in 0..<3_000 where thread.isExecuting || !thread.isFinished { usleep(10_000) }
        #expect(thread.isFinished)
        #expect(failure.withLock { $0 } == nil)
        // A second job syncs the WAL only (the directory once is enough), still fine.
        #expect(store!.syncJob()() == nil)
        store = nil

        let reopened = try TaskStore(directory: dir)
        #expect(try reopened.database.scalar("PRAGMA synchronous") == "2")  // FULL, the default
        #expect(try reopened.loadTasks().map(\.info.id) == ["t", "u"])
    }

    /// Writes 20 tasks of ~4 KiB each per save (a WAL frame or more each) until `until` holds.
    static func fill(_ store: TaskStore, _ state: inout ClusterState, _ ids: inout [String], until: (TaskStore) -> Bool) throws {
        let padding = String(repeating: "x", count: 4_000)
        for batch in 0..<400 where !until(store) {
            let names = (0..<20).map { "t\(ids.count)-\(batch)-\($0)" }
            for id in names { _ = try state.submit(TaskSpec(id: id, command: ["echo", padding]), at: Self.t0) }
            try store.save(state.takeChanges(), at: Self.t0)
            ids += names
        }
    }

    /// With `syncOnCommit` off no commit checkpoints (SQLite's automatic checkpoint syncs on
    /// the committing thread, the scheduler's loop): the WAL grows past `checkpointFrames`
    /// with the database file untouched, `checkpointDue` says so, and a checkpoint job on
    /// another thread (its own connection) copies it into the database; the next commit starts
    /// the WAL over, and everything comes back after a reopen.
    @Test func commitsDoNotCheckpointAndACheckpointJobFromAnotherThreadDoes() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        var store: TaskStore? = try TaskStore(directory: dir, syncOnCommit: false)
        func databaseBytes() -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: dir + "/swarm.db"))?[.size] as? Int) ?? -1
        }
        let emptySize = databaseBytes()
        var ids: [String] = []
        try Self.fill(store!, &state, &ids) { $0.checkpointDue }
        #expect(store!.checkpointDue && !store!.inlineCheckpointDue)
        #expect(store!.walFrames >= TaskStore.checkpointFrames)
        #expect(databaseBytes() == emptySize)  // nothing copied into the database by a commit
        let job = store!.checkpointJob()
        let failure = Locked<TaskStoreError?>(nil)
        let thread = Thread { failure.withLock { $0 = job() } }
        thread.start()
        for _ in 0..<3_000 where thread.isExecuting || !thread.isFinished { usleep(10_000) }
        #expect(thread.isFinished)
        #expect(failure.withLock { $0 } == nil)
        #expect(databaseBytes() > emptySize + 1_000_000)  // the tasks' rows, copied in
        try S.submit(&state, ["after"])
        try store!.save(state.takeChanges(), at: Self.t0)
        #expect(store!.walFrames < 100)  // started over
        #expect(!store!.checkpointDue)
        store = nil

        let reopened = try TaskStore(directory: dir)
        #expect(try reopened.loadTasks().map(\.info.id).sorted() == (ids + ["after"]).sorted())
    }

    /// The owner's fallback, past `inlineCheckpointFrames`: a checkpoint on the store's own
    /// connection copies every frame, so the next commit starts the WAL over; and the WAL file,
    /// grown past `walSizeLimit` by then, is cut back to it (`journal_size_limit`).
    @Test func pastTheCapACheckpointHereStartsTheWALOverAndTheFileIsCutBack() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        let store = try TaskStore(directory: dir, syncOnCommit: false)
        func walBytes() -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: dir + "/swarm.db-wal"))?[.size] as? Int) ?? -1
        }
        var ids: [String] = []
        try Self.fill(store, &state, &ids) { $0.walFrames > TaskStore.inlineCheckpointFrames + 200 }
        #expect(store.inlineCheckpointDue)
        #expect(walBytes() > TaskStore.walSizeLimit)
        try store.checkpointHere()
        try S.submit(&state, ["after"])
        try store.save(state.takeChanges(), at: Self.t0)
        #expect(store.walFrames < 100)
        #expect(walBytes() <= TaskStore.walSizeLimit)
        #expect(TaskStore.inlineCheckpointFrames > TaskStore.checkpointFrames)
    }

    /// A sync job whose WAL is gone (the store closed and SQLite folded it back) syncs the
    /// database file instead and does not fail; one whose directory is gone fails, naming it.
    @Test func aSyncJobWithoutItsWALSyncsTheDatabaseAndAMissingDirectoryIsAnError() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        let store = try TaskStore(directory: dir, syncOnCommit: false)
        try S.submit(&state, ["t"])
        try store.save(state.takeChanges(), at: Self.t0)
        let job = store.syncJob()
        store.close()
        #expect(!FileManager.default.fileExists(atPath: dir + "/swarm.db-wal"))
        #expect(job() == nil)
        try FileManager.default.removeItem(atPath: dir)
        guard case .sqlite(let path, let error)? = job() else {
            Issue.record("a sync of a removed state directory did not fail")
            return
        }
        #expect(path.hasPrefix(dir))
        #expect(error.systemErrno == ENOENT)
    }
}
