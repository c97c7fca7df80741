import Foundation
import Testing
@testable import SwarmNode
@testable import SwarmCluster

/// `WorkerRetention`: which finished tasks' files go, and when (issue 14 item 3).
@Suite struct WorkerRetentionTests {
    static let hour: UInt64 = 3_600_000

    @Test func aTaskGoesExactlyWhenItsAgeReachesTheLimitAndNotBefore() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 1, maxGiB: 10))
        r.kept("a", bytes: 100, sinceMs: 1_000)
        #expect(r.due(nowMs: 1_000 + Self.hour - 1).isEmpty)
        #expect(r.nextDueMs == 1_000 + Self.hour)
        #expect(r.due(nowMs: 1_000 + Self.hour) == ["a"])
        #expect(r.keptCount == 0 && r.keptBytes == 0 && r.nextDueMs == nil)
        #expect(r.due(nowMs: 10 * Self.hour).isEmpty)  // once only
    }

    @Test func decimalHoursAndZeroHoursAreExact() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 0.5, maxGiB: 10))
        r.kept("a", bytes: 1, sinceMs: 0)
        #expect(r.due(nowMs: 1_799_999).isEmpty)
        #expect(r.due(nowMs: 1_800_000) == ["a"])
        var zero = WorkerRetention(limits: .init(maxAgeHours: 0, maxGiB: 10))
        zero.kept("b", bytes: 1, sinceMs: 5)
        #expect(zero.due(nowMs: 5) == ["b"])
    }

    @Test func overTheByteLimitTheOldestGoFirstUntilWithinItExactlyAtTheLimitStays() {
        let gib: Int64 = 1 << 30
        var r = WorkerRetention(limits: .init(maxAgeHours: 24, maxGiB: 1))
        r.kept("old", bytes: gib / 2, sinceMs: 10)
        r.kept("mid", bytes: gib / 4, sinceMs: 20)
        r.kept("new", bytes: gib / 4, sinceMs: 30)
        #expect(r.keptBytes == gib)
        #expect(r.due(nowMs: 40).isEmpty)  // exactly at the limit: within it
        r.kept("newer", bytes: 1, sinceMs: 50)
        #expect(r.due(nowMs: 50) == ["old"])  // one byte over: the oldest goes, and that is enough
        #expect(r.keptBytes == gib / 2 + 1)
        r.kept("huge", bytes: 2 * gib, sinceMs: 60)
        #expect(r.due(nowMs: 60) == ["mid", "new", "newer", "huge"])  // a task alone over the limit goes too
        #expect(r.keptCount == 0 && r.keptBytes == 0)
    }

    @Test func tasksFoundAtStartGoInByTheirAgeBeforeLaterOnes() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 1, maxGiB: 10))
        r.kept("acked-now", bytes: 1, sinceMs: 10 * Self.hour)
        r.kept("found-young", bytes: 1, sinceMs: 9 * Self.hour + 30 * 60_000)
        r.kept("found-old", bytes: 1, sinceMs: 9 * Self.hour + 1)
        #expect(r.due(nowMs: 10 * Self.hour).isEmpty)
        #expect(r.due(nowMs: 10 * Self.hour + 1) == ["found-old"])
        #expect(r.due(nowMs: 10 * Self.hour + 30 * 60_000) == ["found-young"])
        #expect(r.due(nowMs: 11 * Self.hour) == ["acked-now"])
    }

    @Test func aTaskRunningAgainIsNotRemovedUntilKeptAgainTwice() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 1, maxGiB: 10))
        for round in 0..<2 {  // every path twice
            let base = UInt64(round) * 10 * Self.hour
            r.kept("t", bytes: 10, sinceMs: base)
            r.resumed("t")
            #expect(r.keptCount == 0 && r.keptBytes == 0)
            #expect(r.due(nowMs: base + 2 * Self.hour).isEmpty)
            r.kept("t", bytes: 20, sinceMs: base + 3 * Self.hour)
            #expect(r.due(nowMs: base + 4 * Self.hour - 1).isEmpty)
            #expect(r.due(nowMs: base + 4 * Self.hour) == ["t"])
        }
    }

    @Test func keptAgainReplacesTheEarlierEntryAndCountsItsBytesOnce() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 1, maxGiB: 10))
        r.kept("t", bytes: 10, sinceMs: 0)
        r.kept("t", bytes: 30, sinceMs: 100)
        #expect(r.keptCount == 1 && r.keptBytes == 30)
        #expect(r.due(nowMs: Self.hour).isEmpty)
        #expect(r.due(nowMs: Self.hour + 100) == ["t"])
    }

    @Test func atMostMaxKeptTasksAreKeptWhateverTheirBytes() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 24, maxGiB: 10), maxKeptTasks: 3)
        for i in 0..<3 { r.kept("t\(i)", bytes: 0, sinceMs: UInt64(i)) }
        #expect(r.due(nowMs: 10).isEmpty)
        r.kept("t3", bytes: 0, sinceMs: 3)
        #expect(r.due(nowMs: 10) == ["t0"])
        #expect(r.keptCount == 3)
    }

    @Test func churnOfKeepingAndResumingEndsWithNothingKept() {
        var r = WorkerRetention(limits: .init(maxAgeHours: 0, maxGiB: 10))
        for i in 0..<50_000 {
            r.kept("t\(i % 100)", bytes: 1, sinceMs: UInt64(i))
            if i % 7 == 0 { r.resumed("t\((i + 3) % 100)") }
            _ = r.due(nowMs: UInt64(i))
        }
        #expect(r.keptCount == 0)
    }

    @Test func limitsAreBoundedWithOneLineErrors() {
        let what = ("retention.maxAgeHours", "retention.maxGiB")
        #expect(WorkerRetention.Limits.problem(maxAgeHours: 0, maxGiB: 0, what: what) == nil)
        #expect(WorkerRetention.Limits.problem(maxAgeHours: 87_600, maxGiB: 1_048_576, what: what) == nil)
        #expect(WorkerRetention.Limits.problem(maxAgeHours: -1, maxGiB: nil, what: what)?.hasPrefix("retention.maxAgeHours must be") == true)
        #expect(WorkerRetention.Limits.problem(maxAgeHours: .infinity, maxGiB: nil, what: what) != nil)
        #expect(WorkerRetention.Limits.problem(maxAgeHours: nil, maxGiB: 1_048_577, what: what)?.hasPrefix("retention.maxGiB must be") == true)
        #expect(WorkerRetention.Limits.problem(maxAgeHours: nil, maxGiB: .nan, what: what) != nil)
        #expect(WorkerRetention.Limits().maxAgeMs == 24 * Self.hour)
        #expect(WorkerRetention.Limits().maxBytes == 10 << 30)
    }

    @Test func clusterFileReadsRetentionAndRefusesBadValues() throws {
        let good = #"{"workers": {"w1": {"slots": 2, "retention": {"maxAgeHours": 1.5, "maxGiB": 0.5}}}}"#
        let file = try ClusterFile.parse(Data(good.utf8), name: "c.json")
        var config = WorkerConfig(name: "w1", slots: 2, dataDir: "/tmp/x")
        config.apply(file, worker: "w1")
        #expect(config.retention.maxAgeMs == 5_400_000)
        #expect(config.retention.maxBytes == 1 << 29)
        let onlyAge = try ClusterFile.parse(Data(#"{"workers": {"w1": {"retention": {"maxAgeHours": 2}}}}"#.utf8), name: "c.json")
        var other = WorkerConfig(name: "w1", slots: 2, dataDir: "/tmp/x")
        other.apply(onlyAge, worker: "w1")
        #expect(other.retention.maxAgeMs == 2 * Self.hour && other.retention.maxBytes == 10 << 30)
        for bad in [#"{"maxAgeHours": -1}"#, #"{"maxGiB": "ten"}"#, #"{"keep": 1}"#, #"[1]"#] {
            let text = #"{"workers": {"w1": {"retention": "# + bad + "}}}"
            #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(text.utf8), name: "c.json") }
        }
    }
}

/// The trash is never emptied through a link (attack found: a link planted at
/// `WORKROOT/.swarm~trash` had the worker empty the directory it pointed to).
@Suite struct TaskFilesTrashTests {
    @Test func aLinkInTheTrashsPlaceIsRemovedNotFollowedTwice() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = "\(dir)/victim", trash = "\(dir)/root/.swarm~trash"
        try FileManager.default.createDirectory(atPath: "\(victim)/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/root", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(victim)/precious", contents: Data("v".utf8))
        for _ in 0..<2 {
            try FileManager.default.createSymbolicLink(atPath: trash, withDestinationPath: victim)
            #expect(TaskFiles.removeTrash(trash).isEmpty)
            #expect(FileManager.default.fileExists(atPath: "\(victim)/precious") && FileManager.default.fileExists(atPath: "\(victim)/sub"))
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: trash)) == nil)
            try FileManager.default.createSymbolicLink(atPath: trash, withDestinationPath: victim)
            #expect(TaskFiles.trashReady(trash) && TaskFiles.isRealDirectory(trash))
            #expect(FileManager.default.fileExists(atPath: "\(victim)/precious"))
            try FileManager.default.removeItem(atPath: trash)
        }
    }

    @Test func aTreeDeeperThanPathMaxIsDeleted() throws {
        let trash = FileManager.default.temporaryDirectory.appendingPathComponent("deep-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: trash) }
        try FileManager.default.createDirectory(atPath: "\(trash)/t.1", withIntermediateDirectories: true)
        // 120 levels of 50 characters: ~6 KB of path, past PATH_MAX (4096), made with mkdirat.
        var fd = open("\(trash)/t.1", O_RDONLY | O_DIRECTORY)
        let name = String(repeating: "d", count: 50)
        for _ in 0..<120 {
            #expect(mkdirat(fd, name, 0o755) == 0)
            let next = openat(fd, name, O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        close(fd)
        #expect(TaskFiles.removeTrash(trash).isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: trash)) ?? ["?"]).isEmpty)
    }
}
