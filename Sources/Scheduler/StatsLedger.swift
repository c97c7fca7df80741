import SwarmProtocol

/// Counters of ended runs per worker and model, for `swarm stats`. Running tasks and health
/// are not counted here: they are read from the cluster state when a report is made.
public struct StatsLedger: Sendable {
    /// worker -> model ("-" for none) -> counters of ended runs.
    private var ended: [String: [String: StatsCounters]] = [:]

    public init() {}

    static func modelKey(_ model: String?) -> String { model ?? "-" }

    /// A run ended on `node`. `requeued`: the task goes on elsewhere (counted as a failed run).
    public mutating func runEnded(node: String, model: String?, result: TaskResult, requeued: Bool) {
        var c = ended[node, default: [:]][Self.modelKey(model), default: StatsCounters()]
        c.completed += 1
        if result.state == .succeeded {
            c.succeeded += 1
        } else {
            c.failed += 1
            c.failedByReason[result.state.rawValue, default: 0] += 1
        }
        c.extensions += result.metrics.extensions
        c.silenceWarnings += result.metrics.silenceWarnings
        if result.state == .silenceKilled { c.silenceKills += 1 }
        if result.state == .timedOut { c.timeouts += 1 }
        if let started = result.startedAt { c.totalRunMs += max(0, result.finishedAt - started) }
        ended[node, default: [:]][Self.modelKey(model)] = c
    }

    /// The report: `running` lists the models of the runs going on each worker; `health`
    /// each worker's runtimes.
    public func report(running: [String: [String?]], health: [String: [RuntimeStatus]]) -> (cluster: StatsBlock, workers: [String: StatsBlock]) {
        var workers: [String: StatsBlock] = [:]
        var cluster = StatsBlock()
        let names = Set(ended.keys).union(running.keys).union(health.keys)
        for name in names {
            var block = StatsBlock()
            for (model, counters) in ended[name] ?? [:] { block.byModel[model] = counters }
            for model in running[name] ?? [] { block.byModel[Self.modelKey(model), default: StatsCounters()].active += 1 }
            for counters in block.byModel.values { Self.add(counters, to: &block.totals) }
            for status in health[name] ?? [] {
                block.health[status.name] = HealthStats(
                    healthy: status.healthy, passed: status.passed, failed: status.failed, lastLatencyMs: status.latencyMs,
                    meanLatencyMs: status.passed + status.failed > 0 ? status.totalLatencyMs / Int64(status.passed + status.failed) : nil)
            }
            workers[name] = block
            Self.add(block.totals, to: &cluster.totals)
            for (model, counters) in block.byModel { Self.add(counters, to: &cluster.byModel[model, default: StatsCounters()]) }
            for (runtime, h) in block.health {
                var sum = cluster.health[runtime] ?? HealthStats(healthy: false, passed: 0, failed: 0, lastLatencyMs: nil, meanLatencyMs: nil)
                let total = sum.passed + sum.failed, more = h.passed + h.failed
                if let mean = h.meanLatencyMs {
                    let previous = (sum.meanLatencyMs ?? 0) * Int64(total)
                    sum.meanLatencyMs = total + more > 0 ? (previous + mean * Int64(more)) / Int64(total + more) : nil
                }
                sum.passed += h.passed
                sum.failed += h.failed
                // Cluster-wide a runtime is healthy when it is somewhere.
                sum.healthy = sum.healthy || h.healthy
                sum.lastLatencyMs = h.lastLatencyMs ?? sum.lastLatencyMs
                cluster.health[runtime] = sum
            }
        }
        return (cluster, workers)
    }

    static func add(_ c: StatsCounters, to total: inout StatsCounters) {
        total.active += c.active
        total.completed += c.completed
        total.succeeded += c.succeeded
        total.failed += c.failed
        for (reason, n) in c.failedByReason { total.failedByReason[reason, default: 0] += n }
        total.extensions += c.extensions
        total.silenceWarnings += c.silenceWarnings
        total.silenceKills += c.silenceKills
        total.timeouts += c.timeouts
        total.totalRunMs += c.totalRunMs
    }
}
