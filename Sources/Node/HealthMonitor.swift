import SwarmProtocol

/// Cached health of a worker's runtimes, as a pure value: which probes are due, and what the
/// last ones found. Probes run at start, every `intervalMs` after a pass, `retryMs` after a
/// failure, and soon after a task of the runtime failed to start or failed; never per spawn.
/// A runtime without a health command is always healthy. Every `nowMs` is monotonic (when
/// probes are due); the wall clock only dates a probe's `checkedAt`.
public struct HealthMonitor: Sendable {
    struct Entry: Sendable {
        var check: HealthCheckSpec?
        var status: RuntimeStatus
        var probing = false
        var dueAt: Int64?
        var lastProbeAt: Int64?
    }

    private var entries: [String: Entry] = [:]
    public let names: [String]

    public init(runtimes: [RuntimeDefinition], nowMs: Int64) {
        names = runtimes.map(\.name).sorted()
        for runtime in runtimes {
            var status = RuntimeStatus(name: runtime.name, healthy: runtime.health == nil)
            runtime.reportedFacts(into: &status)
            entries[runtime.name] = Entry(check: runtime.health, status: status,
                                          dueAt: runtime.health == nil ? nil : nowMs)
        }
    }

    public var statuses: [RuntimeStatus] { names.compactMap { entries[$0]?.status } }
    public var probingCount: Int { entries.values.filter(\.probing).count }

    public func status(_ name: String) -> RuntimeStatus? { entries[name]?.status }
    public func check(_ name: String) -> HealthCheckSpec? { entries[name]?.check }

    /// Runtimes whose probe is due at `nowMs` and not running, in name order.
    public func due(nowMs: Int64) -> [String] {
        names.filter { name in
            guard let e = entries[name], !e.probing, let at = e.dueAt else { return false }
            return at <= nowMs
        }
    }

    /// The earliest time a probe is due (past times included), for the shell's timer.
    public var nextDueMs: Int64? {
        entries.values.filter { !$0.probing }.compactMap(\.dueAt).min()
    }

    public mutating func probeStarted(_ name: String, nowMs: Int64) {
        entries[name]?.probing = true
        entries[name]?.lastProbeAt = nowMs
    }

    /// Records a probe's outcome; true when the runtime's health changed. The next probe is
    /// due counting from `nowMs` (monotonic); `at` (wall) is the status's `checkedAt`.
    @discardableResult
    public mutating func probeFinished(_ name: String, passed: Bool, latencyMs: Int64, detail: String?, nowMs: Int64, at: Int64) -> Bool {
        guard var e = entries[name] else { return false }
        let was = e.status.healthy
        e.probing = false
        e.status.healthy = passed
        e.status.checkedAt = at
        e.status.latencyMs = latencyMs
        e.status.detail = detail
        e.status.totalLatencyMs += latencyMs
        if passed { e.status.passed += 1 } else { e.status.failed += 1 }
        if let check = e.check { e.dueAt = nowMs + (passed ? check.intervalMs : check.retryMs) }
        entries[name] = e
        return was != passed
    }

    /// A task of `name` failed: probe again soon (at most once per `retryMs`).
    public mutating func taskFailed(_ name: String, nowMs: Int64) {
        guard var e = entries[name], let check = e.check, !e.probing else { return }
        let soonest = (e.lastProbeAt ?? Int64.min / 2) + check.retryMs
        e.dueAt = min(e.dueAt ?? Int64.max, max(nowMs, soonest))
        entries[name] = e
    }
}
