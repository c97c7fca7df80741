import Foundation
import SwarmProtocol

/// `models`: the agent workload split across three models, `fast`, `balanced` and `deep`,
/// whose runs take 1x, 2x and 4x the sampled duration, all submitted in one batch. The
/// cluster limits how many runs of a model may go at once (`modelLimits`; a local bench
/// limits `deep`): the limited model queues while the others use the free slots. Reports one
/// run per model and the effect of the limits, and checks that no limit was exceeded.
public struct ModelsWorkload: Workload {
    public let name = "models"
    /// Models and how much longer than the sampled duration their runs take.
    public static let models: [(name: String, scale: Double)] = [("fast", 1), ("balanced", 2), ("deep", 4)]

    public init() {}

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let options = context.options
        var report = WorkloadReport(name: name, title: "Models and model limits", description: """
            The agent workload split across three models: fast, balanced and deep runs take 1x, 2x and 4x \
            the sampled duration. All tasks go in one batch. The cluster caps the number of concurrent runs \
            of a model (modelLimits): a limited model's tasks wait in the queue while the other models' \
            tasks fill the free slots, so its submit-to-start latency grows while theirs does not. The \
            table shows each model's limit against the most runs of it seen at once (from the workers' \
            start and exit times); a limit is never to be exceeded.
            """)
        guard let runtime = context.agentRuntime else {
            report.notes.append("skipped: no healthy synthetic runtime")
            return report
        }
        let distribution = try DurationDistribution(parsing: options.agentDuration)
        let limits = context.modelLimits
        // A model limited to 0 runs nothing: its tasks would wait forever.
        let models = Self.models.filter { limits[$0.name] != 0 }
        for m in Self.models where limits[m.name] == 0 {
            report.notes.append("model \(m.name) is limited to 0 concurrent runs: left out")
        }
        guard !models.isEmpty else { return report }
        let count = options.quick ? 20 : max(1, options.agentTasks)
        var plans = AgentTaskPlan.make(count: count, distribution: distribution, seed: AgentWorkload.seed,
                                       models: models.map(\.name), burstRange: AgentWorkload.burstRange)
        let scales = Dictionary(uniqueKeysWithValues: models.map { ($0.name, $0.scale) })
        for i in plans.indices {
            plans[i].seconds = DurationDistribution.clamp(plans[i].seconds * (scales[plans[i].model] ?? 1))
        }
        let specs = plans.map { $0.spec(runtime: runtime, workload: name) }
        let concurrency = max(1, context.cluster.totalSlots)
        report.parameters = [
            "tasks": String(count), "runtime": runtime, "duration": distribution.description,
            "models": models.map { "\($0.name) x\(Int($0.scale))" }.joined(separator: ", "),
            "modelLimits": limits.isEmpty ? "none known" : limits.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "),
            "concurrency": String(concurrency), "seed": String(AgentWorkload.seed),
        ]
        context.progress.begin("models: \(count) agents over \(models.count) models", total: count)
        let (batch, infos) = try context.runBatch(
            specs, label: "all models", concurrency: concurrency, sleepSeconds: nil,
            timeoutSeconds: Self.batchTimeout(plans, slots: concurrency, limits: limits))
        context.progress.update(done: infos.filter { $0.state.isTerminal }.count)
        context.progress.end(String(format: "%d agents in %.2f s: %d succeeded", count, batch.wallSeconds, batch.succeeded))

        let groups = Self.groups(plans: plans, infos: infos, models: models.map(\.name))
        let submitTimeMs = infos.map(\.submittedAt).min() ?? 0
        var rows: [[String]] = []
        for (model, group) in groups {
            let limit = limits[model]
            let figures = AgentFigures.runFigures(label: "model \(model)", infos: group, submitTimeMs: submitTimeMs,
                                                  concurrency: min(limit ?? concurrency, concurrency))
            report.runs.append(figures)
            let peak = AgentFigures.peakConcurrency(group.compactMap(AgentFigures.interval))
            rows.append([model, "x\(Int(scales[model] ?? 1))", String(group.count), limit.map(String.init) ?? "none",
                         String(peak), AgentFigures.ms(figures.submitToStart?.p50), AgentFigures.ms(figures.submitToStart?.p99),
                         AgentFigures.ms(figures.runTime?.p50)])
            if let problem = Self.limitProblem(model: model, limit: limit, peak: peak) {
                report.passed = false
                report.notes.append(problem)
            }
        }
        report.tables.append(ReportTable(
            title: "effect of model limits",
            columns: ["model", "duration", "tasks", "limit", "peak concurrent", "submit->start p50 ms",
                      "submit->start p99 ms", "run time p50 ms"],
            rows: rows))
        if limits.isEmpty {
            report.notes.append("the cluster's model limits are not known here (remote cluster?): peaks are shown, not checked")
        }
        if context.cluster.workers > 1 {
            report.notes.append("peaks compare start and exit times of different workers: their clocks must agree")
        }
        report.summary = BatchMeasure.summary(report.runs)
        AgentFigures.check(&report)
        return report
    }

    /// Tasks by model, in `models` order, each in submit order; models without tasks are left out.
    static func groups(plans: [AgentTaskPlan], infos: [TaskInfo], models: [String]) -> [(String, [TaskInfo])] {
        var byModel: [String: [TaskInfo]] = [:]
        for (plan, info) in zip(plans, infos) {
            byModel[info.metrics.model ?? plan.model, default: []].append(info)
        }
        let known = models.filter { byModel[$0] != nil }
        let others = byModel.keys.filter { !models.contains($0) }.sorted()
        return (known + others).map { ($0, byModel[$0]!) }
    }

    /// Why a model's observed peak breaks its limit, or nil.
    static func limitProblem(model: String, limit: Int?, peak: Int) -> String? {
        guard let limit, peak > limit else { return nil }
        return "model \(model): \(peak) runs at once, over its limit of \(limit)"
    }

    /// Like the agent batch's bound, with each limited model's runs in series over its limit.
    static func batchTimeout(_ plans: [AgentTaskPlan], slots: Int, limits: [String: Int]) -> Double {
        var limited = 0.0
        for (model, limit) in limits where limit > 0 {
            let total = plans.filter { $0.model == model }.reduce(0) { $0 + $1.seconds }
            limited = max(limited, total / Double(limit))
        }
        return AgentTaskPlan.batchTimeout(plans, slots: slots) + limited * 2
    }
}
