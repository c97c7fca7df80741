/// The ranges every number a peer sends must be in. A number outside its range is refused
/// where it arrives (`problem()` of the message), so the code behind the edge can add,
/// subtract and multiply these values without overflowing. Each range is far beyond anything
/// real and far inside `Int64`.
public enum Bounds {
    /// Unix milliseconds: 1970-01-01 to 9999-12-31 (a worker's clock may be wrong, but not
    /// by more than that).
    public static let timestampMs: ClosedRange<Int64> = 0...253_402_300_799_999
    /// Unix microseconds, the same span.
    public static let timestampUs: ClosedRange<Int64> = 0...253_402_300_799_999_999
    /// A duration or latency in milliseconds: up to 1,000 years.
    public static let durationMs: ClosedRange<Int64> = 0...31_536_000_000_000
    /// A sum of durations (e.g. a runtime's total probe latency): up to 2^53 ms.
    public static let totalMs: ClosedRange<Int64> = 0...(1 << 53)
    /// A count of events (probes, extensions, warnings, bursts): up to 2^40.
    public static let count: ClosedRange<Int> = 0...(1 << 40)
    /// A count of bytes: up to 2^50 (a petabyte).
    public static let bytes: ClosedRange<Int> = 0...(1 << 50)
    /// A run's attempt number (1 for the first run; 0 in a few placeholders).
    public static let attempt: ClosedRange<Int> = 0...1_000_000
    /// Slots of a worker (and slots its probes hold, free slots).
    public static let slots: ClosedRange<Int> = 0...100_000
    /// A process id (`pid_t`).
    public static let pid: ClosedRange<Int> = 0...Int(Int32.max)
    /// An exit status as `waitpid` reports it, and a signal number.
    public static let exitCode: ClosedRange<Int> = Int(Int32.min)...Int(Int32.max)
    public static let signal: ClosedRange<Int> = 0...255
    /// A task's priority.
    public static let priority: ClosedRange<Int> = -1_000_000_000...1_000_000_000
    /// Secret environment variables one task may carry (`secretEnv`), and the bytes of one
    /// value: API keys and tokens, a PEM key or certificate; not files (those are `inputs`).
    public static let secretsPerTask = 32
    public static let secretValueBytes = 16 * 1024
    /// Runs a worker may list as running or finished in one message.
    public static let runs = 1_000_000
    /// Runtimes a worker may report.
    public static let runtimes = 10_000
    /// Task ids one task may name in `after` and `afterAny` together (duplicates counted):
    /// a merge step after a fan-out of a thousand agents, and no more (each costs the
    /// scheduler memory and a look-up at submit).
    public static let dependencies = 1_000
    /// Dependency edges one submit batch may name, all its tasks' `after` and `afterAny`
    /// together (duplicates counted): 20,000. Each edge costs the scheduler's loop a look-up,
    /// an index entry and a row written in the batch's one transaction (about 30 µs in a debug
    /// build on a loaded 2-core machine, most of it SQLite's): 20,000 hold the loop well under
    /// a second, where 2,000 tasks of 1,000 ids each (2,000,000) held it for a minute. Enough
    /// for two layers of 100 each after the whole previous one (`swarm bench dag` submits
    /// 10,000 a batch), or 20 merge steps each after a fan-out of 1,000; a larger DAG goes in
    /// several batches (a batch may name tasks of earlier ones).
    public static let batchDependencies = 20_000

    /// Why a batch of `specs` names too many dependency edges (`batchDependencies`), or nil.
    /// O(tasks): counts the lists, hashes nothing; checked before any other work on a batch.
    public static func batchDependencyProblem(_ specs: [TaskSpec]) -> String? {
        var edges = 0
        for spec in specs { edges += (spec.after?.count ?? 0) + (spec.afterAny?.count ?? 0) }
        guard edges > batchDependencies else { return nil }
        return "the batch names \(edges) dependencies (after and afterAny over its \(specs.count) tasks); "
            + "at most \(batchDependencies) per batch: submit it in smaller batches (a task may name tasks of earlier ones)"
    }

    /// Nil when `value` is in `range`, else a sentence naming `field`.
    @inlinable
    public static func check<T: Comparable>(_ field: String, _ value: T?, _ range: ClosedRange<T>) -> String? {
        guard let value, !range.contains(value) else { return nil }
        return "\(field) must be \(range.lowerBound) to \(range.upperBound), got \(value)"
    }

    /// The first problem of a list of checks (nil when all pass).
    @inlinable
    public static func first(_ checks: String?...) -> String? {
        for check in checks { if let check { return check } }
        return nil
    }

    /// `value` rounded to the nearest Int64, stuck at Int64's bounds, and 0 for NaN:
    /// `Int64(double)` traps on all three.
    public static func int64(_ value: Double) -> Int64 {
        guard !value.isNaN else { return 0 }
        // 2^63 is the first double past Int64.max.
        if value >= 9_223_372_036_854_775_808.0 { return .max }
        if value <= -9_223_372_036_854_775_808.0 { return .min }
        return Int64(value.rounded())
    }

    /// The first problem among `runs`' attempt numbers, and their count.
    public static func runs(_ field: String, _ runs: [RunRef]) -> String? {
        if runs.count > Self.runs { return "\(field) lists \(runs.count) runs; at most \(Self.runs)" }
        for run in runs { if let p = check("\(field) attempt", run.attempt, attempt) { return p } }
        return nil
    }
}

extension RuntimeStatus {
    /// Nil when every number is in range (`Bounds`), else the first that is not.
    public func problem() -> String? {
        Bounds.first(
            Bounds.check("runtime \(name) checkedAt", checkedAt, Bounds.timestampMs),
            Bounds.check("runtime \(name) latencyMs", latencyMs, Bounds.durationMs),
            Bounds.check("runtime \(name) passed", passed, Bounds.count),
            Bounds.check("runtime \(name) failed", failed, Bounds.count),
            Bounds.check("runtime \(name) totalLatencyMs", totalLatencyMs, Bounds.totalMs),
            Bounds.check("runtime \(name) argvTemplateBytes", argvTemplateBytes, Bounds.bytes),
            Bounds.check("runtime \(name) promptArgumentBytes", promptArgumentBytes, Bounds.bytes))
    }

    /// The first problem of a list of runtimes.
    public static func problem(of runtimes: [RuntimeStatus]?) -> String? {
        guard let runtimes else { return nil }
        if runtimes.count > Bounds.runtimes { return "\(runtimes.count) runtimes; at most \(Bounds.runtimes)" }
        for status in runtimes { if let p = status.problem() { return p } }
        return nil
    }
}

extension ProcessUsage {
    /// Nil when every number is in range (`Bounds`), else the first that is not.
    public func problem() -> String? {
        Bounds.first(
            Bounds.check("usage pid", pid, Bounds.pid),
            Bounds.check("usage cpuUserMs", cpuUserMs, Bounds.durationMs),
            Bounds.check("usage cpuSystemMs", cpuSystemMs, Bounds.durationMs),
            Bounds.check("usage maxRssKiB", maxRssKiB, 0...(1 << 50)),
            Bounds.check("usage at", at, Bounds.timestampMs))
    }
}

extension RunMetrics {
    /// Nil when every number is in range (`Bounds`), else the first that is not.
    public func problem() -> String? {
        Bounds.first(
            Bounds.check("complexityScore", complexityScore, 0...1_000_000),
            Bounds.check("initialTimeoutMs", initialTimeoutMs, Bounds.durationMs),
            Bounds.check("finalTimeoutMs", finalTimeoutMs, Bounds.durationMs),
            Bounds.check("extensions", extensions, Bounds.count),
            Bounds.check("silenceWarnings", silenceWarnings, Bounds.count),
            Bounds.check("outputBytes", outputBytes, Bounds.bytes),
            Bounds.check("outputBursts", outputBursts, Bounds.count),
            Bounds.check("timeToFirstOutputMs", timeToFirstOutputMs, Bounds.durationMs),
            Bounds.check("firstOutputAt", firstOutputAt, Bounds.timestampMs),
            Bounds.check("startedAtUs", startedAtUs, Bounds.timestampUs),
            Bounds.check("firstOutputAtUs", firstOutputAtUs, Bounds.timestampUs),
            Bounds.check("exitedAtUs", exitedAtUs, Bounds.timestampUs),
            Bounds.check("runMs", runMs, Bounds.durationMs),
            Bounds.check("prepareMs", prepareMs, Bounds.durationMs),
            Bounds.check("inputBytesFetched", inputBytesFetched, 0...(Int64(1) << 50)),
            Bounds.check("collectMs", collectMs, Bounds.durationMs),
            Bounds.check("worktreeMs", worktreeMs, Bounds.durationMs))
    }
}

extension TaskResult {
    /// Nil when every number is in range (`Bounds`) and the state is an end, else the first
    /// problem. Times need not be in order (a worker's clock may step), only in range.
    public func problem() -> String? {
        Bounds.first(
            // `queued` or `running` is no outcome: it would be counted as a failure reason.
            state.isTerminal ? nil : "state \(state.rawValue) is not how a run ends",
            Bounds.check("attempt", attempt, Bounds.attempt),
            Bounds.check("exitCode", exitCode, Bounds.exitCode),
            Bounds.check("signal", signal, Bounds.signal),
            Bounds.check("pid", pid, Bounds.pid),
            Bounds.check("submittedAt", submittedAt, Bounds.timestampMs),
            Bounds.check("placedAt", placedAt, Bounds.timestampMs),
            Bounds.check("startedAt", startedAt, Bounds.timestampMs),
            Bounds.check("finishedAt", finishedAt, Bounds.timestampMs),
            metrics.problem())
    }
}

extension TaskResult {
    /// This result, or when a number is out of range (`problem()`), the same run ended
    /// `failed` at `at` (wall-clock unix ms) with the reason, its numbers dropped: nothing out
    /// of range gets into the scheduler's state or statistics, and the task does not hang.
    public func withValidNumbers(at: Int64) -> TaskResult {
        guard let problem = problem() else { return self }
        var clean = TaskResult(id: id, state: .failed, exitCode: nil, signal: nil,
                               reason: "the worker sent an invalid result (\(problem))", output: output, pid: nil,
                               attempt: attempt, startedAt: nil, finishedAt: at)
        clean.metrics.node = metrics.node
        clean.metrics.runtime = metrics.runtime
        clean.metrics.model = metrics.model
        clean.metrics.workDir = metrics.workDir
        clean.metrics.logFile = metrics.logFile
        return clean
    }
}

extension TaskAssignment {
    /// Nil when the assignment can be run as far as its numbers and spec go, else the reason
    /// (a worker checks what the scheduler sends too).
    public func problem() -> String? {
        Bounds.first(
            TaskID.problem(with: id),
            Bounds.check("attempt", attempt, Bounds.attempt),
            Bounds.check("submittedAt", submittedAt, Bounds.timestampMs),
            Bounds.check("placedAt", placedAt, Bounds.timestampMs),
            spec.problem())
    }
}

extension Message {
    /// Nil when the numbers of a message a worker sends are in range (`Bounds`), else the
    /// first that is not. Messages of other senders have no problem here (submits are
    /// checked by `TaskSpec.problem()` where they are accepted). Pure; the receiver decides
    /// what a bad message costs (refused registration, dropped report, failed run).
    public func workerProblem() -> String? {
        switch self {
        case .register(let r):
            return Bounds.first(
                Bounds.check("slots", r.slots, Bounds.slots),
                Bounds.check("probing", r.probing, Bounds.slots),
                Bounds.runs("running", r.running),
                Bounds.runs("finished", r.finished),
                RuntimeStatus.problem(of: r.runtimes))
        case .heartbeat(let h):
            return Bounds.first(
                Bounds.check("freeSlots", h.freeSlots, Bounds.slots),
                Bounds.runs("running", h.running),
                h.usage?.problem())
        case .taskStarted(let s):
            return Bounds.first(
                Bounds.check("attempt", s.attempt, Bounds.attempt),
                Bounds.check("pid", s.pid, Bounds.pid),
                Bounds.check("startedAt", s.startedAt, Bounds.timestampMs))
        case .taskFinished(let f):
            return f.result.problem()
        case .health(let h):
            return Bounds.first(Bounds.check("probing", h.probing, Bounds.slots), RuntimeStatus.problem(of: h.runtimes))
        case .taskEvent(let e):
            return Bounds.first(Bounds.check("attempt", e.attempt, Bounds.attempt), Bounds.check("at", e.at, Bounds.timestampMs))
        case .taskOutput(let o):
            return Bounds.first(Bounds.check("attempt", o.attempt, Bounds.attempt), Bounds.check("at", o.at, Bounds.timestampMs))
        case .reject(let r):
            return Bounds.check("attempt", r.attempt, Bounds.attempt)
        default:
            // `logData` is checked by the log relay that asked for it (`validationProblem`),
            // which ends that read; `leave` has no numbers.
            return nil
        }
    }
}
