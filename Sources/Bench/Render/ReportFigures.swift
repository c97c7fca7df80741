import Foundation

/// Figures derived from a report for the renderers: headline numbers, the run each chart
/// shows, summaries filled in from the runs when the workload left them out.
enum ReportFigures {
    /// Tasks lost in the workload's swarm runs.
    static func lost(_ workload: WorkloadReport) -> Int {
        workload.runs.reduce(0) { $0 + $1.lost }
    }

    /// Tasks run more than once in the workload's swarm runs.
    static func duplicated(_ workload: WorkloadReport) -> Int {
        workload.runs.reduce(0) { $0 + $1.duplicated }
    }

    /// Whether the workload's runs are the steps of a concurrency ramp rather than repetitions.
    static func isRamp(_ workload: WorkloadReport) -> Bool {
        workload.name == "scale"
    }

    /// Whether the workload's runs repeat one batch (so a median over them means something),
    /// rather than being the steps of a ramp (scale) or one group per model (models).
    static func isRepetition(_ workload: WorkloadReport) -> Bool {
        !isRamp(workload) && workload.name != "models" && workload.name != "workspace"
    }

    /// The run with the median throughput (the lower middle one for an even count).
    static func medianThroughputRun(_ all: [RunFigures]) -> RunFigures? {
        // The idle probe and the warm-up are not repetitions of the batch.
        let measured = all.filter { !$0.label.hasPrefix("idle") && $0.label != "warm-up" }
        let runs = measured.isEmpty ? all : measured
        guard !runs.isEmpty else { return nil }
        let sorted = runs.sorted { $0.throughput < $1.throughput }
        return sorted[(sorted.count - 1) / 2]
    }

    /// The workload's summary, with every field it left nil computed from its runs. Runs that
    /// are not repetitions (a ramp, per-model groups) are not summarised: taken as given.
    static func summary(_ workload: WorkloadReport) -> WorkloadSummary {
        var summary = workload.summary
        guard isRepetition(workload) else { return summary }
        let runs = workload.runs.filter { !$0.label.hasPrefix("idle") && $0.label != "warm-up" }
        func fill(_ field: WritableKeyPath<WorkloadSummary, Spread?>, _ values: [Double]) {
            if summary[keyPath: field] == nil { summary[keyPath: field] = Spread(values.filter(\.isFinite)) }
        }
        fill(\.throughput, runs.map(\.throughput))
        fill(\.wallSeconds, runs.map(\.wallSeconds))
        fill(\.efficiency, runs.compactMap(\.efficiency))
        fill(\.speedup, runs.compactMap(\.speedup))
        fill(\.submitToStartP50, runs.compactMap { $0.submitToStart?.p50 })
        fill(\.submitToStartP99, runs.compactMap { $0.submitToStart?.p99 })
        fill(\.startToFirstOutputP50, runs.compactMap { $0.startToFirstOutput?.p50 })
        fill(\.startToFirstOutputP99, runs.compactMap { $0.startToFirstOutput?.p99 })
        fill(\.overheadCpuUsPerTask, runs.compactMap(\.overheadCpuUsPerTask))
        return summary
    }

    /// The summary line's parts: `throughput 1,960/s [1,900–2,010]`, ...
    static func summaryParts(_ summary: WorkloadSummary) -> [String] {
        let fields: [(String, Spread?, String)] = [
            ("throughput", summary.throughput, " tasks/s"),
            ("wall", summary.wallSeconds, " s"),
            ("efficiency", summary.efficiency, ""),
            ("speedup", summary.speedup, "x"),
            ("p50 submit→start", summary.submitToStartP50, " ms"),
            ("p99 submit→start", summary.submitToStartP99, " ms"),
            ("p50 start→first output", summary.startToFirstOutputP50, " ms"),
            ("p99 start→first output", summary.startToFirstOutputP99, " ms"),
            ("overhead", summary.overheadCpuUsPerTask, " µs CPU/task"),
        ]
        var parts: [String] = []
        for (name, spread, unit) in fields {
            guard let spread else { continue }
            let text = name == "efficiency"
                ? ReportFormat.spread(spread, ReportFormat.fraction)
                : ReportFormat.spread(spread, ReportFormat.number, unit: unit)
            parts.append("\(name) \(text)")
        }
        return parts
    }

    /// A workload's headline figures, most telling first. `ranges` adds `[min–max]`.
    static func headline(_ workload: WorkloadReport, ranges: Bool = true) -> [String] {
        if let figures = workload.workspace { return workspaceHeadline(workload, figures) }
        var parts = isRamp(workload) ? rampHeadline(workload.runs)
            : isRepetition(workload) ? repeatHeadline(workload, ranges: ranges) : groupHeadline(workload.runs)
        // How swarm compares with xargs and GNU parallel goes right after its throughput.
        let ratios = workload.baselines.filter(\.available).compactMap { baseline -> String? in
            if let ratio = baseline.swarmThroughputRatio { return "\(ReportFormat.ratio(ratio)) \(baseline.tool)" }
            if let ratio = baseline.swarmEfficiencyRatio {
                return "\(ReportFormat.ratio(ratio)) \(baseline.tool) efficiency"
            }
            return nil
        }
        parts.insert(contentsOf: ratios, at: min(1, parts.count))
        let lost = lost(workload), duplicated = duplicated(workload)
        if lost > 0 { parts.append("\(ReportFormat.int(lost)) LOST") }
        if duplicated > 0 { parts.append("\(ReportFormat.int(duplicated)) DUPLICATED") }
        if parts.isEmpty { parts.append(workload.runs.isEmpty ? "no measured runs" : "no figures") }
        return parts
    }

    /// `workspace`: its own figures, then what went missing.
    private static func workspaceHeadline(_ workload: WorkloadReport, _ figures: WorkspaceFigures) -> [String] {
        var parts = figures.headline
        let lost = lost(workload), duplicated = duplicated(workload)
        if lost > 0 { parts.append("\(ReportFormat.int(lost)) LOST") }
        if duplicated > 0 { parts.append("\(ReportFormat.int(duplicated)) DUPLICATED") }
        return parts.isEmpty ? ["no figures"] : parts
    }

    private static func repeatHeadline(_ workload: WorkloadReport, ranges: Bool) -> [String] {
        let summary = summary(workload)
        func show(_ spread: Spread?, _ format: (Double?) -> String = ReportFormat.number, unit: String = "") -> String? {
            guard let spread else { return nil }
            return ranges ? ReportFormat.spread(spread, format, unit: unit) : format(spread.median) + unit
        }
        return [
            show(summary.throughput, unit: " tasks/s"),
            show(summary.efficiency, ReportFormat.fraction).map { "efficiency \($0)" },
            show(summary.submitToStartP50, unit: " ms").map { "p50 submit→start \($0)" },
            show(summary.submitToStartP99, unit: " ms").map { "p99 \($0)" },
            show(summary.overheadCpuUsPerTask, unit: " µs CPU/task"),
        ].compactMap { $0 }
    }

    private static func rampHeadline(_ runs: [RunFigures]) -> [String] {
        guard let top = runs.max(by: { $0.concurrency < $1.concurrency }),
              let peak = runs.max(by: { $0.throughput < $1.throughput }) else { return [] }
        var parts = ["\(runs.count) steps up to concurrency \(ReportFormat.int(top.concurrency))"]
        parts.append("peak \(ReportFormat.number(peak.throughput)) tasks/s at \(ReportFormat.int(peak.concurrency))")
        if let efficiency = top.efficiency {
            parts.append("efficiency \(ReportFormat.fraction(efficiency)) at \(ReportFormat.int(top.concurrency))")
        }
        if let p99 = top.submitToStart?.p99 {
            parts.append("p99 submit→start \(ReportFormat.number(p99)) ms")
        }
        return parts
    }

    /// One part per group (model): `model fast 30.0 tasks/s, p50 1.40 ms`.
    private static func groupHeadline(_ runs: [RunFigures]) -> [String] {
        runs.map { run in
            "\(run.label) \(ReportFormat.number(run.throughput)) tasks/s"
                + (run.submitToStart.map { ", p50 \(ReportFormat.number($0.p50)) ms" } ?? "")
        }
    }

    /// The swarm median throughput and each baseline tool's, for the comparison chart.
    static func throughputComparison(_ workload: WorkloadReport) -> [(label: String, value: Double?)] {
        var bars: [(label: String, value: Double?)] = [("swarm", summary(workload).throughput?.median)]
        for baseline in workload.baselines {
            bars.append((baseline.tool, baseline.available ? baseline.throughput?.median : nil))
        }
        return bars
    }
}
