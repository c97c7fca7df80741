import Foundation
import Testing
import SwarmClient
import SwarmProtocol
@testable import SwarmScheduler

/// The scheduler's decisions when its disk is full, without a disk: what counts as "no
/// space", and the lines people read.
@Suite struct StateDiskFullDecisionTests {
    /// SQLite's result codes (sqlite3.h), without importing its module here.
    static let SQLITE_FULL: Int32 = 13, SQLITE_CORRUPT: Int32 = 11, SQLITE_CANTOPEN: Int32 = 14
    static let SQLITE_IOERR_WRITE: Int32 = 778, SQLITE_IOERR_FSYNC: Int32 = 1034

    @Test func sqliteErrorsAreNoSpaceOnlyForAFullDiskOrQuota() {
        #expect(SQLiteError.statement(sql: "COMMIT", code: Self.SQLITE_FULL, message: "database or disk is full").isNoSpace)
        // An fsync (or the WAL index growing) that hit ENOSPC is an I/O error with that errno.
        #expect(SQLiteError.statement(sql: "COMMIT", code: Self.SQLITE_IOERR_FSYNC, message: "disk I/O error", systemErrno: ENOSPC).isNoSpace)
        #expect(SQLiteError.statement(sql: "COMMIT", code: Self.SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EDQUOT).isNoSpace)
        #expect(!SQLiteError.statement(sql: "COMMIT", code: Self.SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EIO).isNoSpace)
        #expect(!SQLiteError.statement(sql: "SELECT 1", code: Self.SQLITE_CORRUPT, message: "malformed").isNoSpace)
        #expect(!SQLiteError.open(path: "/x", code: Self.SQLITE_CANTOPEN, message: "unable to open").isNoSpace)
    }

    @Test func theStopLineNamesTheStateDirectoryAndSaysNoSpaceLeft() {
        let full = TaskStoreError.noSpace(directory: "/srv/state",
                                          .statement(sql: "COMMIT", code: Self.SQLITE_FULL, message: "database or disk is full"))
        let line = StateSaveFailure.stopLine(full)
        #expect(line.hasPrefix("no space left on device in state directory /srv/state"))
        #expect(line.contains("nothing it did not save was acknowledged"))
        #expect(!line.contains("\n"))

        let quota = TaskStoreError.noSpace(directory: "/srv/state",
                                           .statement(sql: "COMMIT", code: Self.SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EDQUOT))
        #expect(StateSaveFailure.stopLine(quota).hasPrefix("disk quota exceeded in state directory /srv/state"))

        let other = TaskStoreError.sqlite(path: "/srv/state/swarm.db", .statement(sql: "COMMIT", code: Self.SQLITE_IOERR_WRITE, message: "disk I/O error", systemErrno: EIO))
        let otherLine = StateSaveFailure.stopLine(other)
        #expect(otherLine.hasPrefix("cannot save the scheduler's state (state database /srv/state/swarm.db"))
        #expect(!otherLine.contains("no space"))
        #expect(!otherLine.contains("\n"))
    }

    @Test func theDroppedLogsWarningCountsThemAndShowsAFew() {
        let line = StateSaveFailure.droppedLogsLine((1...7).map { "t\($0)" }, directory: "/srv/state")
        #expect(line.contains("/srv/state"))
        #expect(line.contains("7 ended task(s)"))
        #expect(line.contains("t1, t2, t3, t4, t5, ..."))
    }
}

/// `TaskStore` on a real tmpfs that fills up: a save that does not fit leaves the store as it
/// was, and a save whose logs alone do not fit is kept without them.
@Suite struct TaskStoreDiskFullTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    @Test(.enabled(if: TmpfsMount.available, "needs to mount a tmpfs (root)"))
    func aSaveWithNoRoomThrowsNoSpaceAndSavesNothingOfIt() throws {
        let mount = try TmpfsMount(bytes: 2 << 20)
        defer { mount.unmount() }
        let dir = mount.path + "/state"
        var state = ClusterState()
        var store: TaskStore? = try TaskStore(directory: dir)
        try S.submit(&state, ["a", "b"])
        try store!.save(state.takeChanges(), at: Self.t0)

        try mount.fill()
        var big = TaskSpec(id: "c", command: ["true"])
        big.prompt = String(repeating: "p", count: 256 * 1024)
        _ = try state.submit(big, at: Self.t0 + 1)
        #expect {
            try store!.save(state.takeChanges(), at: Self.t0 + 1)
        } throws: { error in
            guard let error = error as? TaskStoreError, error.isNoSpace else { return false }
            return "\(error)".hasPrefix("no space left on device in state directory \(dir)")
        }
        store!.close()
        store = nil

        mount.free()
        let reopened = try TaskStore(directory: dir)
        defer { reopened.close() }
        #expect(try reopened.loadTasks().map(\.info.id) == ["a", "b"])
    }

    @Test(.enabled(if: TmpfsMount.available, "needs to mount a tmpfs (root)"))
    func aSaveWhoseLogsHaveNoRoomIsKeptWithoutThem() throws {
        let mount = try TmpfsMount(bytes: 4 << 20)
        defer { mount.unmount() }
        let dir = mount.path + "/state"
        var state = ClusterState()
        let store = try TaskStore(directory: dir)
        defer { store.close() }
        try S.submit(&state, ["a"])
        _ = try S.register(&state, "n", slots: 1)
        _ = state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1)
        try store.save(state.takeChanges(), at: Self.t0 + 1)
        _ = state.taskFinished(node: "n", result: S.result("a", at: Self.t0 + 2), at: Self.t0 + 2)
        var changes = state.takeChanges()
        changes.logs = ["a": String(repeating: "log line\n", count: 200_000)]  // 1.8 MB

        try mount.fill()
        mount.free(bytes: 256 * 1024)
        #expect(try store.save(changes, at: Self.t0 + 2) == ["a"])
        #expect(store.log(id: "a") == nil)
        #expect(try store.loadTasks().first?.info.state == .succeeded)
        #expect(try TaskStoreTests.runs(dir, "a") == ["1:n:succeeded:-:1"])
    }
}

/// A real `swarm scheduler` on a small tmpfs that fills up (issue 12, item 5).
@Suite struct StateDiskFullEndToEndTests {
    typealias E = EndToEndTests

    /// The scheduler's state dir fills up: a blob upload with no room is refused and the
    /// scheduler goes on; then a submit it cannot save stops it with one line and exit 1, and
    /// a restart once there is room has every task whose submit was acknowledged.
    @Test(.enabled(if: TmpfsMount.available, "needs to mount a tmpfs (root)"))
    func schedulerOnAFullStateDirStopsWithOneLineAndLosesNothingItAcknowledged() throws {
        let harness = try ProcessHarness()
        let mount = try TmpfsMount(bytes: 8 << 20)
        // Processes first: a mount in use cannot be unmounted.
        defer { harness.cleanup(); mount.unmount() }
        let stateDir = mount.path + "/state"
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--state-dir", stateDir])
        let line = try #require(scheduler.waitForLine(containing: "listening on"), "scheduler did not report its address")
        let address = String(try #require(line.split(separator: " ").last))
        let client = try SwarmClient(address: address, token: nil)
        let prompt = String(repeating: "a prompt that takes room; ", count: 1_200)  // 30 KB a task
        func spec(_ id: String) -> TaskSpec {
            var spec = TaskSpec(id: id, command: ["true"])
            spec.prompt = prompt
            return spec
        }
        var acknowledged: [String] = []
        for i in 1...3 {
            acknowledged.append(try client.submit(spec("before-\(i)")))
        }

        // An input larger than the room left: refused before any byte is sent, and only that.
        let input = "\(harness.dir)/big-input"
        #expect(FileManager.default.createFile(atPath: input, contents: nil))
        #expect(truncate(input, 9 << 20) == 0)
        let upload = try harness.run(["submit", "--scheduler", address, "--id", "with-input", "--input", input, "--", "true"], timeout: 30)
        #expect(upload.status != 0)
        #expect(upload.stderr.contains("no room"), "\(upload.stderr)")
        acknowledged.append(try client.submit(spec("after-upload")))

        try mount.fill()
        var refused: String?
        for i in 1...40 {
            do {
                acknowledged.append(try client.submit(spec("full-\(i)")))
            } catch {
                refused = "full-\(i)"
                break
            }
        }
        #expect(refused != nil, "the scheduler acknowledged 40 submits on a full disk")
        let deadline = Date().addingTimeInterval(10)
        while scheduler.process.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!scheduler.process.isRunning, "the scheduler did not stop")
        if scheduler.process.isRunning { return }
        #expect(scheduler.process.terminationStatus == 1)
        let stderr = (try? String(contentsOfFile: "\(harness.dir)/scheduler.log", encoding: .utf8)) ?? ""
        let lines = stderr.split(separator: "\n").map(String.init)
        let fatal = lines.filter { $0.contains("no space left") }
        #expect(fatal.count == 1, "\(stderr)")
        #expect(lines.last == fatal.first)
        #expect(fatal.first?.hasPrefix("swarm: error: no space left on device in state directory \(stateDir)") == true, "\(stderr)")
        for crash in ["Fatal error", "Stack dump", "backtrace", "Segmentation", "Illegal instruction"] {
            #expect(!stderr.contains(crash), "\(stderr)")
        }

        mount.free()
        let again = try harness.start("scheduler-again", ["scheduler", "--listen", "127.0.0.1:0", "--state-dir", stateDir])
        let againLine = try #require(again.waitForLine(containing: "listening on"), "the scheduler did not start again")
        let after = try SwarmClient(address: String(try #require(againLine.split(separator: " ").last)), token: nil)
        let tasks = try after.listTasks()
        let restored = Set(tasks.map(\.id))
        #expect(acknowledged.filter { !restored.contains($0) }.isEmpty, "acknowledged but lost: \(acknowledged.filter { !restored.contains($0) })")
        // What it never acknowledged is not there either: the refused submit's turn was not saved.
        #expect(restored == Set(acknowledged), "\(restored.subtracting(acknowledged))")
        #expect(tasks.allSatisfy { $0.state == .queued })
        #expect(try after.status("before-1").state == .queued)
        // The restarted scheduler saves again.
        #expect(try after.submit(spec("once-more")) == "once-more")
    }
}
