import Testing
@testable import SwarmBench
import SwarmProtocol

/// The `workspace` workload's pure parts: its figures and how the targets judge them.
@Suite struct BenchWorkspaceTests {
    static let mib: Int64 = 1 << 20

    @Test func theTargetFigureIsBothDirectionsOverBothTimes() {
        // 256 MiB up in 1 s and down in 1.56 s: 512 MiB in 2.56 s.
        #expect(WorkspaceFigures.roundTrip(256 * Self.mib, uploadMs: 1_000, downloadMs: 1_560) == 200)
        #expect(WorkspaceFigures.rate(64 * Self.mib, ms: 500) == 128)
        #expect(WorkspaceFigures.rate(64, ms: 0) == nil && WorkspaceFigures.roundTrip(1, uploadMs: nil, downloadMs: 1) == nil)
    }

    @Test func perWorkerBytesAreDeltasAndFetchedBytesAreSummedByNode() {
        #expect(WorkspaceFigures.delta(before: ["w1": 10, "w2": 5], after: ["w1": 30, "w2": 5, "w3": 7]) == ["w1": 20, "w2": 0, "w3": 7])
        func info(_ node: String?, _ fetched: Int64?) -> TaskInfo {
            var i = TaskInfo(id: "t", state: .succeeded, command: [], node: node, submittedAt: 0)
            i.metrics.inputBytesFetched = fetched
            return i
        }
        #expect(WorkspaceFigures.fetchedByNode([info("w1", 100), info("w1", 0), info("w2", nil), info(nil, 5)]) == ["w1": 100, "w2": 0])
    }

    @Test func targetsAreJudgedAtTheirShapesAndDedupAlways() {
        var w = WorkspaceFigures()
        w.inputBytes = 256 * Self.mib - 1_000
        w.roundTripMiBps = 199
        w.fanoutTasks = 1_000
        w.fanoutInputBytes = 50 * Self.mib
        w.fanoutBytesToWorker = ["w1": 50 * Self.mib, "w2": 50 * Self.mib + 1]
        w.worktreeTasks = 100
        w.repoFiles = 5_000
        var checks = TargetChecks.workspace(w)
        #expect(checks.map(\.met) == [false, false, nil], "199 MiB/s misses; one byte over 1 x input misses; no worktree data")
        w.roundTripMiBps = 200
        w.fanoutBytesToWorker = ["w1": 50 * Self.mib, "w2": 0]
        // Judged on creation (git's work), not on the time until start (waits included).
        w.worktreePrepare = Percentiles([900, 1_800, 2_600])
        w.worktreeCreate = Percentiles([150, 199, 260])
        checks = TargetChecks.workspace(w)
        #expect(checks.map(\.met) == [true, true, true])
        w.worktreeCreate = Percentiles([150, 200, 260])
        #expect(TargetChecks.workspace(w)[2].met == false, "p50 of 200 ms is not under 200 ms")
        w.worktreeCreate = Percentiles([150, 199, 260])
        // A quick run's shapes are shown, not judged (dedup still is).
        w.inputBytes = 32 * Self.mib
        w.worktreeTasks = 20
        checks = TargetChecks.workspace(w)
        #expect(checks.map(\.met) == [nil, true, nil])
        #expect(checks[0].name.contains("32 MiB") && checks[0].target == "(256 MiB only)")
    }
}
