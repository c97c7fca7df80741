import Foundation
import SwarmClient
import SwarmProtocol

/// `agent`: synthetic agents (see `SyntheticAgent`) through the cluster's runtime, each
/// with a sampled duration and a few bursts of output, submitted as one batch and repeated.
/// It measures what a real agent run pays for being coordinated: submit -> start,
/// start -> first output, run time over the intended duration, and whether every burst of
/// output was seen.
public struct AgentWorkload: Workload {
    public let name = "agent"
    /// Seed of the durations and bursts: every bench runs the same tasks.
    public static let seed: UInt64 = 0x5EED_A6E7
    public static let burstRange = 3...8

    public init() {}

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let options = context.options
        var report = WorkloadReport(name: name, title: "Synthetic agents through a runtime", description: """
            Synthetic agents (a shell script standing in for an agent CLI) run through a runtime as real agents \
            do: the command template with {model}, the prompt on stdin, $SWARM_MODEL, the runtime's health \
            check. Each sleeps for a sampled duration and prints its work in a few bursts. The runs show \
            the latency an agent sees before it starts and before its first output reaches the worker, how \
            much longer than intended a run takes (spawn, pipes and supervision), and whether the worker \
            saw every burst of output (the progressive timeouts and silence checks depend on it).
            """)
        guard let runtime = context.agentRuntime else {
            report.notes.append("skipped: no healthy synthetic runtime")
            return report
        }
        let distribution = try DurationDistribution(parsing: options.agentDuration)
        let count = options.quick ? 20 : max(1, options.agentTasks)
        let repeats = max(1, options.repeats)
        let plans = AgentTaskPlan.make(count: count, distribution: distribution, seed: Self.seed,
                                       models: ["fast"], burstRange: Self.burstRange)
        let specs = plans.map { $0.spec(runtime: runtime, workload: name) }
        let concurrency = max(1, context.cluster.totalSlots)
        report.parameters = [
            "tasks": String(count), "repeats": String(repeats), "runtime": runtime, "model": "fast",
            "duration": distribution.description, "bursts": "\(Self.burstRange.lowerBound)-\(Self.burstRange.upperBound)",
            "concurrency": String(concurrency), "seed": String(Self.seed),
        ]
        var allInfos: [[TaskInfo]] = []
        for r in 1...repeats {
            context.progress.begin("agent: run \(r)/\(repeats)", total: count)
            let (figures, infos) = try context.runBatch(
                specs, label: "run \(r)", concurrency: concurrency, sleepSeconds: nil,
                timeoutSeconds: AgentTaskPlan.batchTimeout(plans, slots: concurrency))
            context.progress.update(done: infos.filter { $0.state.isTerminal }.count)
            context.progress.end(String(format: "%d agents in %.2f s: %d succeeded", count, figures.wallSeconds, figures.succeeded))
            report.runs.append(figures)
            allInfos.append(infos)
        }
        report.summary = BatchMeasure.summary(report.runs)
        report.tables.append(AgentFigures.overheadTable(plans: plans, runs: allInfos))
        report.tables.append(AgentFigures.burstTable(plans: plans, runs: allInfos))
        do {
            let stats = try context.client.stats()
            if let table = AgentFigures.healthTable(stats, runtime: runtime) { report.tables.append(table) }
        } catch {
            report.notes.append("health-check figures unavailable: \(error)")
        }
        AgentFigures.check(&report)
        return report
    }
}

/// One synthetic agent of a batch: how long it runs, how many bursts it prints, its model.
struct AgentTaskPlan: Equatable, Sendable {
    var index: Int
    var seconds: Double
    var bursts: Int
    var model: String

    /// `count` plans with durations from `distribution` (seeded) and bursts in `burstRange`;
    /// models assigned round-robin.
    static func make(count: Int, distribution: DurationDistribution, seed: UInt64, models: [String],
                     burstRange: ClosedRange<Int>) -> [AgentTaskPlan] {
        let durations = distribution.samples(count, seed: seed)
        var generator = SplitMix64(seed: seed ^ 0xB0B5_7B0B)
        return durations.enumerated().map { i, seconds in
            // Whole milliseconds: what the script is told (SWARM_SIM_DURATION has three decimals).
            AgentTaskPlan(index: i, seconds: (seconds * 1000).rounded() / 1000, bursts: generator.int(in: burstRange),
                          model: models.isEmpty ? "fast" : models[i % models.count])
        }
    }

    /// The task: the runtime with a prompt, the model, the script's settings, and timeouts
    /// well over the intended run (a slow machine must not turn into timeouts).
    func spec(runtime: String, workload: String) -> TaskSpec {
        let prompt = "Task \(index + 1): refactor module \(index % 17) and make its tests pass. " +
            "(synthetic agent: \(String(format: "%.2f", seconds)) s, \(bursts) bursts)\n"
        var spec = TaskSpec(runtime: runtime, model: model, prompt: prompt)
        spec.env = SyntheticAgent.environment(seconds: seconds, bursts: bursts)
        let timeout = (seconds * 3 + 60).rounded(.up)
        spec.timeout = timeout
        spec.maxTimeout = timeout
        let pause = seconds / Double(bursts + 1)
        spec.silenceWarn = max(45, (pause * 2 + 5).rounded(.up))
        spec.silenceKill = max(90, (pause * 3 + 30).rounded(.up))
        // The bursts table checks that the worker saw every write; the agent's pauses are
        // under the 1 s default gap that would merge its writes into one burst.
        spec.burstGap = 0
        spec.labels = ["bench": workload, "intendedSeconds": String(format: "%.3f", seconds),
                       "bursts": String(bursts), "model": model]
        return spec
    }

    /// A generous bound for a whole batch: every task's run time spread over `slots`, plus
    /// the longest one, doubled, plus two minutes.
    static func batchTimeout(_ plans: [AgentTaskPlan], slots: Int) -> Double {
        let total = plans.reduce(0) { $0 + $1.seconds }
        let longest = plans.map(\.seconds).max() ?? 0
        return (total / Double(max(1, slots)) + longest) * 2 + 120
    }
}

/// Pure figures over tasks' final infos, shared by the agent and models workloads.
enum AgentFigures {
    static func submitToStartMs(_ info: TaskInfo) -> Double? {
        if let us = info.metrics.startedAtUs { return Double(us - info.submittedAt * 1000) / 1000 }
        return info.startedAt.map { Double($0 - info.submittedAt) }
    }

    static func submitToPlacedMs(_ info: TaskInfo) -> Double? {
        info.placedAt.map { Double($0 - info.submittedAt) }
    }

    static func startToFirstOutputMs(_ info: TaskInfo) -> Double? {
        if let first = info.metrics.firstOutputAtUs, let start = info.metrics.startedAtUs {
            return Double(first - start) / 1000
        }
        return info.metrics.timeToFirstOutputMs.map(Double.init)
    }

    static func runTimeMs(_ info: TaskInfo) -> Double? {
        if let end = info.metrics.exitedAtUs, let start = info.metrics.startedAtUs { return Double(end - start) / 1000 }
        guard let start = info.startedAt, let end = info.finishedAt else { return nil }
        return Double(end - start)
    }

    /// When the process ran, in microseconds; nil if it never started. No end: still running.
    static func interval(_ info: TaskInfo) -> (start: Int64, end: Int64?)? {
        guard let start = info.metrics.startedAtUs ?? info.startedAt.map({ $0 * 1000 }) else { return nil }
        return (start, info.metrics.exitedAtUs ?? info.finishedAt.map { $0 * 1000 })
    }

    /// The most intervals open at once. Touching intervals (one ends when the next starts)
    /// do not overlap; an interval without an end stays open.
    static func peakConcurrency(_ intervals: [(start: Int64, end: Int64?)]) -> Int {
        // Ends sort before starts at the same instant.
        var events: [(at: Int64, delta: Int)] = []
        for i in intervals {
            events.append((i.start, 1))
            if let end = i.end { events.append((max(end, i.start), -1)) }
        }
        events.sort { $0.at != $1.at ? $0.at < $1.at : $0.delta < $1.delta }
        var open = 0, peak = 0
        for e in events {
            open += e.delta
            peak = max(peak, open)
        }
        return peak
    }

    /// A run's figures from its tasks' final infos: counts, wall time from `submitTimeMs`
    /// (the batch's first submit) to the last end, throughput and latency percentiles.
    /// CPU and RSS stay nil (only the bench's sampler knows them).
    static func runFigures(label: String, infos: [TaskInfo], submitTimeMs: Int64, concurrency: Int) -> RunFigures {
        var f = RunFigures(label: label, tasks: infos.count, concurrency: concurrency)
        for info in infos {
            let started = info.metrics.startedAtUs != nil || info.startedAt != nil
            if !info.state.isTerminal || info.state == .lost || !started {
                f.lost += 1
            } else if info.state == .succeeded {
                f.succeeded += 1
            } else {
                f.failed += 1
            }
            if info.attempts > 1 { f.duplicated += 1 }
        }
        let lastEndMs = infos.compactMap { $0.metrics.exitedAtUs.map { Double($0) / 1000 } ?? $0.finishedAt.map(Double.init) }.max()
        if let lastEndMs {
            f.wallSeconds = max(0, (lastEndMs - Double(submitTimeMs)) / 1000)
            f.throughput = f.wallSeconds > 0 ? Double(infos.count) / f.wallSeconds : 0
        }
        f.submitToStart = Percentiles(infos.compactMap(submitToStartMs))
        f.submitToPlaced = Percentiles(infos.compactMap(submitToPlacedMs))
        f.startToFirstOutput = Percentiles(infos.compactMap(startToFirstOutputMs))
        f.runTime = Percentiles(infos.compactMap(runTimeMs))
        return f
    }

    static func ms(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "-" }

    /// Run time against the intended duration, over every run's tasks.
    static func overheadTable(plans: [AgentTaskPlan], runs: [[TaskInfo]]) -> ReportTable {
        var intended: [Double] = [], actual: [Double] = [], over: [Double] = []
        for infos in runs {
            for (plan, info) in zip(plans, infos) where info.state == .succeeded {
                guard let run = runTimeMs(info) else { continue }
                intended.append(plan.seconds * 1000)
                actual.append(run)
                over.append(run - plan.seconds * 1000)
            }
        }
        func row(_ name: String, _ values: [Double]) -> [String] {
            let p = Percentiles(values)
            return [name, String(values.count), ms(p?.p50), ms(p?.p90), ms(p?.p99), ms(p?.max)]
        }
        return ReportTable(title: "run time vs intended duration (ms, succeeded tasks)",
                           columns: ["", "tasks", "p50", "p90", "p99", "max"],
                           rows: [row("intended", intended), row("run time (spawn -> exit)", actual),
                                  row("overhead (run time - intended)", over)])
    }

    /// Output bursts the worker saw per task, by the bursts the agent printed. The agent
    /// writes its first line, each burst and `done` in one write each: bursts + 2 reads
    /// when none merge (fewer when the worker reads two at once). Its tasks have `burstGap`
    /// 0, so every read is a burst.
    static func burstTable(plans: [AgentTaskPlan], runs: [[TaskInfo]]) -> ReportTable {
        var seen: [Int: [Int]] = [:]
        for infos in runs {
            for (plan, info) in zip(plans, infos) where info.state == .succeeded {
                seen[plan.bursts, default: []].append(info.metrics.outputBursts)
            }
        }
        let rows = seen.keys.sorted().map { bursts -> [String] in
            let values = seen[bursts]!.sorted()
            let median = values[values.count / 2]
            let short = values.filter { $0 < bursts }.count
            return [String(bursts), String(values.count), String(bursts + 2), String(values[0]), String(median),
                    String(values[values.count - 1]), String(short)]
        }
        return ReportTable(title: "output bursts seen per task",
                           columns: ["bursts printed", "tasks", "writes", "seen min", "seen median", "seen max",
                                     "tasks seeing fewer than printed"],
                           rows: rows)
    }

    /// The runtime's health-check figures, cluster-wide and per worker; nil if none.
    static func healthTable(_ stats: Message.StatsReply, runtime: String) -> ReportTable? {
        var rows: [[String]] = []
        func row(_ who: String, _ h: HealthStats) -> [String] {
            [who, h.healthy ? "yes" : "no", String(h.passed), String(h.failed),
             h.lastLatencyMs.map { "\($0)" } ?? "-", h.meanLatencyMs.map { "\($0)" } ?? "-"]
        }
        if let h = stats.cluster.health[runtime] { rows.append(row("cluster", h)) }
        for (worker, block) in stats.workers.sorted(by: { $0.key < $1.key }) {
            if let h = block.health[runtime] { rows.append(row(worker, h)) }
        }
        guard !rows.isEmpty else { return nil }
        return ReportTable(title: "health checks of runtime \(runtime)",
                           columns: ["where", "healthy", "passed", "failed", "last latency ms", "mean latency ms"],
                           rows: rows)
    }

    /// Fails the report on lost, duplicated or failed tasks (a synthetic agent never fails).
    static func check(_ report: inout WorkloadReport) {
        for run in report.runs where run.lost > 0 || run.duplicated > 0 || run.failed > 0 {
            report.passed = false
            report.notes.append("\(run.label): \(run.failed) failed, \(run.lost) lost, \(run.duplicated) ran more than once")
        }
    }
}
