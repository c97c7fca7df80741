import Foundation
import Testing
import SwarmBench

/// Issue 14 item 6, CI's version of the soak: `swarm bench soak` with real scheduler and
/// worker processes, judged by ratios, never by times. `scripts/test.sh` (CI) runs it on its
/// own, after the rest of the suite, with `SWARM_SOAK_TASKS=20000` (the figure): a
/// debug build runs about 210 trivial tasks a second on the 2-core CI machine, so 20,000 take
/// about 2 minutes alone, and beside the other tests took 3.5-4 minutes for 6,000. A plain
/// `swift test` runs 6,000. The soak's limits are scaled down with the tasks
/// (`SoakFigures.shape`: 500 kept in swarm.db, 8.3% of 6,000; 125 in memory; 4 MiB of files
/// per worker, which holds about 500 of its 3,000 tasks), so they bind within the first 10%.
@Suite struct SoakEndToEndTests {
    /// `SWARM_SOAK_TASKS` when it is a whole number from 1,000 to 1,000,000, else 6,000.
    static let tasks: Int = {
        guard let text = ProcessInfo.processInfo.environment["SWARM_SOAK_TASKS"],
              let n = Int(text), (1_000...1_000_000).contains(n) else { return 6_000 }
        return n
    }()

    @Test func memoryDescriptorsDatabaseAndWorkerDiskStayBounded() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let result = try harness.run(["bench", "soak", "--tasks", String(Self.tasks), "--out", "out"], timeout: TimeInterval(120 + Self.tasks / 40))
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        let data = try #require(FileManager.default.contents(atPath: harness.dir + "/out/latest/report.json"))
        let report = try JSONDecoder().decode(BenchReport.self, from: data)
        #expect(report.lostTasks == 0 && report.duplicatedTasks == 0)
        let soak = try #require(report.workloads.first { $0.name == "soak" }?.soak)
        #expect(soak.tasks == Self.tasks && soak.samples.count == soak.batches && soak.samples.last?.done == Self.tasks)
        #expect(report.workloads.first?.runs.reduce(0) { $0 + $1.succeeded } == Self.tasks)
        // The limits bound: more finished than swarm.db keeps, more task files than a worker keeps.
        #expect(soak.samples.last.map { $0.listedTasks < Self.tasks / 2 } == true)
        #expect(soak.rssBounded == true, "scheduler RSS spread \(soak.rssSpread ?? -1): \(soak.samples.map(\.schedulerRssKiB))")
        #expect(soak.fdsConstant == true, "\(soak.samples.map(\.schedulerFds)) \(soak.samples.map(\.workerFds))")
        #expect(soak.dbBounded == true, "growth \(soak.dbGrowth ?? -1): \(soak.samples.map(\.dbBytes)) listed \(soak.samples.map(\.listedTasks))")
        #expect(soak.workerDiskBounded == true, "\(soak.samples.map(\.workerDiskBytes)) limit \(soak.workerDiskLimit)")
        // The restart listened, and lists what swarm.db kept.
        #expect(soak.restartSeconds != nil)
        #expect(soak.listedAfterRestart.map { $0 > 0 && $0 <= soak.listLimit(soak.samples.last!) } == true)
        #expect(report.targets.filter { $0.name.hasPrefix("soak:") }.count == 4)
    }
}
