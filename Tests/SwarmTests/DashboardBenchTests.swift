@testable import SwarmBench
import Testing

/// The `dashboard` bench workload's figures and its target (issue 15 item 5), from
/// fabricated runs: the cost is 1 - with / without on the medians, judged at 5%.
struct DashboardBenchTests {
    func run(_ label: String, _ throughput: Double) -> RunFigures {
        var run = RunFigures(label: label, tasks: 100, concurrency: 64)
        run.throughput = throughput
        run.succeeded = 100
        return run
    }

    func check(_ without: [Double], _ with: [Double]) -> TargetCheck? {
        var workload = WorkloadReport(name: "dashboard", title: "", description: "")
        workload.runs = without.enumerated().map { run("without streams \($0.offset + 1)", $0.element) }
            + with.enumerated().map { run("with streams \($0.offset + 1)", $0.element) }
        var report = BenchReport(startedAt: "", commandLine: "", machine: MachineProbe.current(),
                                 cluster: ClusterDescription(mode: "local", scheduler: "", workers: 2, totalSlots: 64, durable: false),
                                 repeats: 1)
        report.workloads = [workload]
        return TargetChecks.evaluate(report).first { $0.name.hasPrefix("throughput cost of an open dashboard") }
    }

    @Test func theCostComparesTheMediansOfBothArms() {
        let f = DashboardWorkload.figures(without: [run("a", 900), run("b", 1_000), run("c", 5_000)],
                                          with: [run("d", 950), run("e", 100), run("f", 960)])
        #expect(f.without == 1_000 && f.with == 950)
        #expect(abs(f.costPercent - 5) < 1e-9)
        #expect(DashboardWorkload.figures(without: [], with: []).costPercent == 0)
    }

    @Test func theTargetIsMetAtFivePercentAndMissedPastIt() {
        #expect(check([1_000, 1_000], [950, 950])?.met == true, "exactly 5%")
        #expect(check([1_000, 1_000], [949, 949])?.met == false, "5.1%")
        #expect(check([1_000], [1_100])?.met == true, "faster with streams: noise, met")
        #expect(check([], []) == nil, "no runs: no check")
    }
}
