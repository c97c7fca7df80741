import Testing
import SwarmMetrics
import SwarmProtocol
@testable import SwarmScheduler

/// Label values and per-worker memory that a worker's health reports could grow without bound.
@Suite struct MetricsAttackTests {
    @Test func aRuntimeNameLongerThanTheLabelBoundIsCountedUnderOther() {
        let metrics = SchedulerMetrics()
        let long = String(repeating: "r", count: MetricBounds.labelValueBytes + 1)
        let edge = String(repeating: "e", count: MetricBounds.labelValueBytes)
        metrics.probes(node: "w1", runtimes: [RuntimeStatus(name: long, healthy: true, passed: 2, failed: 0),
                                              RuntimeStatus(name: edge, healthy: true, passed: 1, failed: 0)])
        let text = String(decoding: metrics.registry.render(), as: UTF8.self)
        #expect(!text.contains(long))
        #expect(text.contains("swarm_health_probes_total{runtime=\"other\",result=\"passed\"} 2"))
        #expect(text.contains("swarm_health_probes_total{runtime=\"\(edge)\",result=\"passed\"} 1"))
    }

    @Test func aScrapeStaysSmallWhateverNamesWorkersReport() {
        let metrics = SchedulerMetrics()
        // 300 reports, each naming one new runtime a megabyte long.
        let big = String(repeating: "n", count: 1 << 20)
        for i in 0..<300 {
            metrics.probes(node: "w1", runtimes: [RuntimeStatus(name: "\(i)" + big, healthy: true, passed: 1, failed: 0)])
        }
        #expect(metrics.registry.render().count < 1 << 20)
    }

    @Test func probeTotalsKeptPerWorkerAreThoseOfItsLastReport() {
        let metrics = SchedulerMetrics()
        // A worker naming 1,000 new runtimes in each of 20 reports.
        for report in 0..<20 {
            metrics.probes(node: "w1", runtimes: (0..<1_000).map {
                RuntimeStatus(name: "r\(report)-\($0)", healthy: true, passed: 1, failed: 0)
            })
        }
        #expect(metrics.probeTotalsKept == 1_000)
        // Steps are still counted from the last totals.
        let other = SchedulerMetrics()
        other.probes(node: "w2", runtimes: [RuntimeStatus(name: "c", healthy: true, passed: 3, failed: 0)])
        other.probes(node: "w2", runtimes: [RuntimeStatus(name: "c", healthy: true, passed: 5, failed: 0)])
        let text = String(decoding: other.registry.render(), as: UTF8.self)
        #expect(text.contains("swarm_health_probes_total{runtime=\"c\",result=\"passed\"} 5"))
    }
}
