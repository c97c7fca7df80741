import CoreMetrics
import SwarmMetrics
import SwarmProtocol

/// The scheduler's Prometheus metrics (README, "Metrics"). The shell feeds it what happened
/// (counters: a handle looked up and incremented, nothing allocated per task); gauges and the
/// counters that the state already counts are computed from `ClusterState` at scrape time
/// (`refresh`), so the cores stay pure and pay nothing between scrapes.
final class SchedulerMetrics {
    let registry: MetricsRegistry
    /// The last scrape's body, reused while fresh (`SchedulerServer.scrape`).
    var scrapeCache = ScrapeCache()

    static let catalog: [MetricFamily] = [
        .init("swarm_tasks_submitted_total", .counter, "Tasks submitted to this scheduler process."),
        .init("swarm_tasks_ended_total", .counter, "Tasks that reached a final state, by that state."),
        .init("swarm_tasks_queued", .gauge, "Tasks waiting to be placed, by model and runtime (none: not set)."),
        .init("swarm_tasks_running", .gauge, "Tasks placed and not ended, by model and runtime (none: not set)."),
        .init("swarm_task_placements_total", .counter, "Runs placed on a worker (each attempt counts)."),
        .init("swarm_task_wait_seconds", .histogram, "From a task's submission to the start of its run.",
              buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800]),
        .init("swarm_task_run_seconds", .histogram, "From a run's start to its end.",
              buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200]),
        .init("swarm_workers", .gauge, "Workers known to the scheduler, by state."),
        .init("swarm_slots", .gauge, "Task slots of the connected workers (ready and draining)."),
        .init("swarm_slots_free", .gauge, "Task slots free on ready workers."),
        .init("swarm_heartbeats_received_total", .counter, "Heartbeat messages received from workers."),
        .init("swarm_workers_lost_total", .counter, "Workers declared lost (silent past their allowance)."),
        .init("swarm_task_requeues_total", .counter, "Runs that ended lost, their task back in the queue."),
        .init("swarm_task_extensions_total", .counter, "Deadline extensions workers granted to runs."),
        .init("swarm_task_silence_warnings_total", .counter, "Silence warnings workers reported for runs."),
        .init("swarm_task_silence_kills_total", .counter, "Runs killed for staying silent."),
        .init("swarm_health_probes_total", .counter, "Runtime health probes workers ran, by runtime and result."),
        .init("swarm_state_commit_seconds", .histogram, "Time to save one turn's changes to the state database (with fsync).",
              buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]),
        .init("swarm_received_bytes_total", .counter, "Bytes read from worker and client connections."),
        .init("swarm_sent_bytes_total", .counter, "Bytes handed to the kernel for worker and client connections."),
        .init("swarm_connected_clients", .gauge, "Client connections with a completed handshake."),
    ]

    private let submitted, placements, heartbeats, workersLost, requeues, extensions, silenceWarnings, silenceKills: CoreMetrics.Counter
    private let received, sent: CoreMetrics.Counter
    private let waitSeconds, runSeconds, commitSeconds: CoreMetrics.Timer
    private let slots, slotsFree, clients: CoreMetrics.Gauge
    private var ended: [TaskState: CoreMetrics.Counter] = [:]
    private var workers: [NodeState: CoreMetrics.Gauge] = [:]
    private var queued: LabelCache<ModelRuntime, CoreMetrics.Gauge>
    private var running: LabelCache<ModelRuntime, CoreMetrics.Gauge>
    private var probes: LabelCache<String, (passed: CoreMetrics.Counter, failed: CoreMetrics.Counter)>
    /// Each worker's last reported probe totals per runtime (reports carry totals, not steps):
    /// the runtimes of its last report only, so a worker naming new runtimes in each report
    /// does not grow it.
    private var lastProbes: [String: [String: (passed: Int, failed: Int)]] = [:]
    /// What was already counted of totals that the state or the connections keep.
    private var countedSequence: UInt64
    private var countedBytes: (received: Int, sent: Int) = (0, 0)

    struct ModelRuntime: Hashable {
        var model: String?
        var runtime: String?

        /// Its longest label value, in bytes (`MetricBounds.labelValueBytes`).
        static func bytes(_ key: ModelRuntime) -> Int { max(key.model?.utf8.count ?? 0, key.runtime?.utf8.count ?? 0) }
    }

    init() {
        let registry = MetricsRegistry(catalog: Self.catalog)
        self.registry = registry
        countedSequence = 0
        submitted = registry.counter("swarm_tasks_submitted_total")
        placements = registry.counter("swarm_task_placements_total")
        heartbeats = registry.counter("swarm_heartbeats_received_total")
        workersLost = registry.counter("swarm_workers_lost_total")
        requeues = registry.counter("swarm_task_requeues_total")
        extensions = registry.counter("swarm_task_extensions_total")
        silenceWarnings = registry.counter("swarm_task_silence_warnings_total")
        silenceKills = registry.counter("swarm_task_silence_kills_total")
        received = registry.counter("swarm_received_bytes_total")
        sent = registry.counter("swarm_sent_bytes_total")
        waitSeconds = registry.timer("swarm_task_wait_seconds")
        runSeconds = registry.timer("swarm_task_run_seconds")
        commitSeconds = registry.timer("swarm_state_commit_seconds")
        slots = registry.gauge("swarm_slots")
        slotsFree = registry.gauge("swarm_slots_free")
        clients = registry.gauge("swarm_connected_clients")
        for state in TaskState.allCases where state.isTerminal {
            ended[state] = registry.counter("swarm_tasks_ended_total", [("state", state.rawValue)])
        }
        for state in [NodeState.ready, .draining, .lost] {
            workers[state] = registry.gauge("swarm_workers", [("state", state.rawValue)])
        }
        queued = LabelCache(limit: MetricBounds.labelValues, valueBytes: ModelRuntime.bytes) { key in
            registry.gauge("swarm_tasks_queued", Self.labels(key))
        }
        running = LabelCache(limit: MetricBounds.labelValues, valueBytes: ModelRuntime.bytes) { key in
            registry.gauge("swarm_tasks_running", Self.labels(key))
        }
        probes = LabelCache(limit: MetricBounds.labelValues) { runtime in
            let name = runtime ?? LabelCache<String, CoreMetrics.Counter>.overflowValue
            return (registry.counter("swarm_health_probes_total", [("runtime", name), ("result", "passed")]),
                    registry.counter("swarm_health_probes_total", [("runtime", name), ("result", "failed")]))
        }
    }

    private static func labels(_ key: ModelRuntime?) -> [(String, String)] {
        guard let key else {
            let other = LabelCache<ModelRuntime, CoreMetrics.Gauge>.overflowValue
            return [("model", other), ("runtime", other)]
        }
        return [("model", key.model ?? "none"), ("runtime", key.runtime ?? "none")]
    }

    // MARK: Events (the shell calls these as things happen)

    func taskEnded(_ state: TaskState?) {
        if let state, let counter = ended[state] { counter.increment() }
    }

    func heartbeat() { heartbeats.increment() }
    func workerLost() { workersLost.increment() }

    /// A run's `taskEvent` kind as workers send it.
    func taskEvent(_ kind: String) {
        switch kind {
        case "extended": extensions.increment()
        case "silence_warning": silenceWarnings.increment()
        default: break
        }
    }

    /// A worker's health report: its runtimes' probe totals since it started.
    func probes(node: String, runtimes: [RuntimeStatus]) {
        let last = lastProbes[node] ?? [:]
        var next: [String: (passed: Int, failed: Int)] = [:]
        for runtime in runtimes {
            let before = last[runtime.name] ?? (0, 0)
            // Totals going down: the worker restarted and counts from 0 again.
            let passed = runtime.passed >= before.passed ? runtime.passed - before.passed : runtime.passed
            let failed = runtime.failed >= before.failed ? runtime.failed - before.failed : runtime.failed
            if passed > 0 || failed > 0 {
                let handles = probes.handle(runtime.name)
                if passed > 0 { handles.passed.increment(by: Int64(passed)) }
                if failed > 0 { handles.failed.increment(by: Int64(failed)) }
            }
            next[runtime.name] = (runtime.passed, runtime.failed)
        }
        lastProbes[node] = next
    }

    /// Runtime totals kept for `probes`, over all workers (tests).
    var probeTotalsKept: Int { lastProbes.values.reduce(0) { $0 + $1.count } }

    func commit(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        commitSeconds.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// This turn's run changes: placements, starts (wait time), ends (run time, requeues,
    /// silence kills). `tasks` gives a run's task record (its times).
    func runs(_ changes: [RunChange], tasks: (String) -> ClusterState.TaskRecord?) {
        for change in changes {
            switch change {
            case .placed: placements.increment()
            case let .started(ref, startedAt):
                guard let startedAt, let submittedAt = tasks(ref.id)?.info.submittedAt else { continue }
                waitSeconds.recordMilliseconds(max(0, startedAt - submittedAt))
            case let .ended(ref, state, _, finishedAt, _, _, runMs):
                if state == .lost { requeues.increment() }
                if state == .silenceKilled { silenceKills.increment() }
                // The worker's monotonic measure; the dates' difference only from a worker
                // that sends none.
                if let runMs { runSeconds.recordMilliseconds(runMs); continue }
                guard let finishedAt, let record = tasks(ref.id),
                      let startedAt = record.runs.last(where: { $0.attempt == ref.attempt })?.startedAt else { continue }
                runSeconds.recordMilliseconds(max(0, finishedAt - startedAt))
            case .withdrawn: break
            }
        }
    }
}

// MARK: Scrape time

extension SchedulerMetrics {
    /// Tasks submitted before `sequence` (restored ones) are not this process's submissions.
    func countSubmissions(from sequence: UInt64) { countedSequence = sequence }

    /// Sets the gauges from `state` and brings the counters that the state and the
    /// connections keep as totals up to date. O(tasks in memory + workers): per scrape, not per task.
    func refresh(_ state: ClusterState, clients: Int, bytes: (received: Int, sent: Int)) {
        if state.nextSequence > countedSequence {
            submitted.increment(by: Int64(state.nextSequence - countedSequence))
            countedSequence = state.nextSequence
        }
        if bytes.received > countedBytes.received { received.increment(by: Int64(bytes.received - countedBytes.received)) }
        if bytes.sent > countedBytes.sent { sent.increment(by: Int64(bytes.sent - countedBytes.sent)) }
        countedBytes = (max(bytes.received, countedBytes.received), max(bytes.sent, countedBytes.sent))
        self.clients.record(clients)
        refreshTasks(state)
        refreshWorkers(state)
    }

    private func refreshTasks(_ state: ClusterState) {
        var queuedCounts: [ModelRuntime: Int] = [:]
        var runningCounts: [ModelRuntime: Int] = [:]
        for record in state.tasks.values {
            switch record.info.state {
            case .queued: queuedCounts[ModelRuntime(model: record.spec.model, runtime: record.spec.runtime), default: 0] += 1
            case .running: runningCounts[ModelRuntime(model: record.spec.model, runtime: record.spec.runtime), default: 0] += 1
            default: break
            }
        }
        Self.set(&queued, queuedCounts)
        Self.set(&running, runningCounts)
    }

    /// Series seen before and absent now read 0; past the label bound, counts add up under "other".
    private static func set(_ cache: inout LabelCache<ModelRuntime, CoreMetrics.Gauge>, _ counts: [ModelRuntime: Int]) {
        var values: [ObjectIdentifier: (CoreMetrics.Gauge, Int)] = [:]
        for entry in cache.all { values[ObjectIdentifier(entry.handle)] = (entry.handle, 0) }
        for (key, count) in counts {
            let gauge = cache.handle(key)
            values[ObjectIdentifier(gauge), default: (gauge, 0)].1 += count
        }
        for (gauge, value) in values.values { gauge.record(value) }
    }

    private func refreshWorkers(_ state: ClusterState) {
        var byState: [NodeState: Int] = [:]
        var total = 0, free = 0
        for node in state.nodes.values {
            byState[node.state, default: 0] += 1
            if node.state != .lost { total += node.slots }
            if node.state == .ready { free += node.freeSlots }
        }
        for (nodeState, gauge) in workers { gauge.record(byState[nodeState] ?? 0) }
        slots.record(total)
        slotsFree.record(free)
    }
}
