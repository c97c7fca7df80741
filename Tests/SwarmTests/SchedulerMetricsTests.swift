import Testing
import SwarmMetrics
import SwarmProtocol
@testable import SwarmScheduler

/// The scheduler's metrics computed from a `ClusterState` (no server): gauges at scrape
/// time, probe totals turned into counter steps, label values bounded.
@Suite struct SchedulerMetricsTests {
    static func sample(_ metrics: SchedulerMetrics, _ series: String) -> Double? {
        let text = String(decoding: metrics.registry.render(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func queuedRunningWorkersAndSlotsComeFromTheStateAtScrapeTime() throws {
        var state = ClusterState(settings: SchedulerSettings())
        let metrics = SchedulerMetrics()
        metrics.countSubmissions(from: state.nextSequence)
        _ = try state.register(node: "w1", slots: 3, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: 0)
        for i in 0..<4 { _ = try state.submit(TaskSpec(id: "o\(i)", command: ["true"], model: "opus"), at: 0) }
        _ = try state.submit(TaskSpec(id: "p", command: ["true"]), at: 0)
        metrics.refresh(state, clients: 2, bytes: (10, 20))
        #expect(Self.sample(metrics, "swarm_tasks_queued{model=\"opus\",runtime=\"none\"}") == 4)
        #expect(Self.sample(metrics, "swarm_tasks_queued{model=\"none\",runtime=\"none\"}") == 1)
        #expect(Self.sample(metrics, "swarm_tasks_submitted_total") == 5)
        #expect(Self.sample(metrics, "swarm_slots") == 3)
        #expect(Self.sample(metrics, "swarm_slots_free") == 3)
        #expect(Self.sample(metrics, "swarm_connected_clients") == 2)
        #expect(Self.sample(metrics, "swarm_received_bytes_total") == 10)

        let placed = state.schedule(nowMs: 0, at: 0)
        #expect(placed.count == 3)
        metrics.runs(state.takeChanges().runs) { state.tasks[$0] }
        metrics.refresh(state, clients: 0, bytes: (15, 20))
        let queued = (Self.sample(metrics, "swarm_tasks_queued{model=\"opus\",runtime=\"none\"}") ?? 0)
            + (Self.sample(metrics, "swarm_tasks_queued{model=\"none\",runtime=\"none\"}") ?? 0)
        let running = (Self.sample(metrics, "swarm_tasks_running{model=\"opus\",runtime=\"none\"}") ?? 0)
            + (Self.sample(metrics, "swarm_tasks_running{model=\"none\",runtime=\"none\"}") ?? 0)
        #expect(queued == 2)
        #expect(running == 3)
        #expect(Self.sample(metrics, "swarm_task_placements_total") == 3)
        #expect(Self.sample(metrics, "swarm_slots_free") == 0)
        #expect(Self.sample(metrics, "swarm_workers{state=\"ready\"}") == 1)
        // Counters only step up: totals counted once.
        #expect(Self.sample(metrics, "swarm_received_bytes_total") == 15)
        #expect(Self.sample(metrics, "swarm_tasks_submitted_total") == 5)
    }

    @Test func probeTotalsBecomeStepsAndAWorkerRestartCountsAgainFromZero() {
        let metrics = SchedulerMetrics()
        metrics.probes(node: "w1", runtimes: [RuntimeStatus(name: "claude", healthy: true, passed: 3, failed: 1)])
        metrics.probes(node: "w1", runtimes: [RuntimeStatus(name: "claude", healthy: true, passed: 5, failed: 1)])
        metrics.probes(node: "w2", runtimes: [RuntimeStatus(name: "claude", healthy: false, passed: 0, failed: 2)])
        // w1 restarted: its totals start again.
        metrics.probes(node: "w1", runtimes: [RuntimeStatus(name: "claude", healthy: true, passed: 1, failed: 0)])
        #expect(Self.sample(metrics, "swarm_health_probes_total{runtime=\"claude\",result=\"passed\"}") == 6)
        #expect(Self.sample(metrics, "swarm_health_probes_total{runtime=\"claude\",result=\"failed\"}") == 3)
    }

    @Test func labelValuesPastTheBoundShareOneSeries() {
        var made: [String?] = []
        var cache = LabelCache<String, Int>(limit: 2) { key in
            made.append(key)
            return made.count
        }
        #expect(cache.handle("a") == 1)
        #expect(cache.handle("b") == 2)
        #expect(cache.handle("a") == 1)
        #expect(cache.handle("c") == 3)
        #expect(cache.handle("d") == 3)
        #expect(made == ["a", "b", nil])
        #expect(cache.count == 2)
        #expect(MetricBounds.labelValues == 256)
    }

    @Test func everyFamilyHasHelpAndTheNamesFollowConventions() {
        for family in SchedulerMetrics.catalog {
            #expect(family.name.hasPrefix("swarm_"))
            #expect(!family.help.isEmpty)
            #expect((family.kind == .counter) == family.name.hasSuffix("_total"), "\(family.name)")
            if family.kind == .histogram { #expect(family.name.hasSuffix("_seconds") && !family.buckets.isEmpty) }
        }
    }
}
