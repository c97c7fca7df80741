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
        // Saturating: counts come from workers (bounded where they arrive, but summed here).
        c.extensions = c.extensions.adding(result.metrics.extensions)
        c.silenceWarnings = c.silenceWarnings.adding(result.metrics.silenceWarnings)
        if result.state == .silenceKilled { c.silenceKills += 1 }
        if result.state == .timedOut { c.timeouts += 1 }
        if let started = result.startedAt { c.totalRunMs = c.totalRunMs.adding(max(0, result.finishedAt.subtracting(started))) }
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
                let probes = status.passed.adding(status.failed)
                block.health[status.name] = HealthStats(
                    healthy: status.healthy, passed: status.passed, failed: status.failed, lastLatencyMs: status.latencyMs,
                    meanLatencyMs: probes > 0 ? status.totalLatencyMs / Int64(probes) : nil)
            }
            workers[name] = block
            Self.add(block.totals, to: &cluster.totals)
            for (model, counters) in block.byModel { Self.add(counters, to: &cluster.byModel[model, default: StatsCounters()]) }
            for (runtime, h) in block.health {
                var sum = cluster.health[runtime] ?? HealthStats(healthy: false, passed: 0, failed: 0, lastLatencyMs: nil, meanLatencyMs: nil)
                let total = Int64(sum.passed.adding(sum.failed)), more = Int64(h.passed.adding(h.failed))
                if let mean = h.meanLatencyMs {
                    // A weighted mean of means, in Double: the products may pass Int64.
                    let previous = Double(sum.meanLatencyMs ?? 0) * Double(total)
                    let all = Double(total) + Double(more)
                    sum.meanLatencyMs = all > 0 ? Bounds.int64((previous + Double(mean) * Double(more)) / all) : nil
                }
                sum.passed = sum.passed.adding(h.passed)
                sum.failed = sum.failed.adding(h.failed)
                // Cluster-wide a runtime is healthy when it is somewhere.
                sum.healthy = sum.healthy || h.healthy
                sum.lastLatencyMs = h.lastLatencyMs ?? sum.lastLatencyMs
                cluster.health[runtime] = sum
            }
        }
        return (cluster, workers)
    }

    static func add(_ c: StatsCounters, to total: inout StatsCounters) {
        total.active = total.active.adding(c.active)
        total.completed = total.completed.adding(c.completed)
        total.succeeded = total.succeeded.adding(c.succeeded)
        total.failed = total.failed.adding(c.failed)
        for (reason, n) in c.failedByReason { total.failedByReason[reason] = total.failedByReason[reason, default: 0].adding(n) }
        total.extensions = total.extensions.adding(c.extensions)
        total.silenceWarnings = total.silenceWarnings.adding(c.silenceWarnings)
        total.silenceKills = total.silenceKills.adding(c.silenceKills)
        total.timeouts = total.timeouts.adding(c.timeouts)
        total.totalRunMs = total.totalRunMs.adding(c.totalRunMs)
    }
}

extension FixedWidthInteger {
    /// `self + other`, stuck at the type's bounds instead of trapping.
    func adding(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self - other`, stuck at the type's bounds instead of trapping.
    func subtracting(_ other: Self) -> Self {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }
}
