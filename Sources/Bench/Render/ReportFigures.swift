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

    /// The run with the median throughput (the lower middle one for an even count).
    static func medianThroughputRun(_ runs: [RunFigures]) -> RunFigures? {
        guard !runs.isEmpty else { return nil }
        let sorted = runs.sorted { $0.throughput < $1.throughput }
        return sorted[(sorted.count - 1) / 2]
    }

    /// The workload's summary, with every field it left nil computed from its runs. A ramp
    /// (scale) is not a set of repetitions, so its summary is taken as given.
    static func summary(_ workload: WorkloadReport) -> WorkloadSummary {
        var summary = workload.summary
        guard !isRamp(workload) else { return summary }
        let runs = workload.runs
        func fill(_ field: WritableKeyPath<WorkloadSummary, Spread?>, _ values: [Double]) {
            if summary[keyPath: field] == nil { summary[keyPath: field] = Spread(values) }
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
                ? ReportFormat.spread(spread, ReportFormat.fraction) : ReportFormat.spread(spread, ReportFormat.number)
            parts.append("\(name) \(text)\(unit)")
        }
        return parts
    }

    /// A workload's headline figures, most telling first. `ranges` adds `[min–max]`.
    static func headline(_ workload: WorkloadReport, ranges: Bool = true) -> [String] {
        var parts = isRamp(workload) ? rampHeadline(workload.runs) : repeatHeadline(workload, ranges: ranges)
        for baseline in workload.baselines where baseline.available {
            if let ratio = baseline.swarmThroughputRatio {
                parts.append("\(ReportFormat.ratio(ratio)) \(baseline.tool)")
            } else if let ratio = baseline.swarmEfficiencyRatio {
                parts.append("\(ReportFormat.ratio(ratio)) \(baseline.tool) efficiency")
            }
        }
        let lost = lost(workload), duplicated = duplicated(workload)
        if lost > 0 { parts.append("\(ReportFormat.int(lost)) LOST") }
        if duplicated > 0 { parts.append("\(ReportFormat.int(duplicated)) DUPLICATED") }
        if parts.isEmpty { parts.append(workload.runs.isEmpty ? "no measured runs" : "no figures") }
        return parts
    }

    private static func repeatHeadline(_ workload: WorkloadReport, ranges: Bool) -> [String] {
        let summary = summary(workload)
        func show(_ spread: Spread?, _ format: @escaping (Double?) -> String = ReportFormat.number) -> String? {
            guard let spread else { return nil }
            return ranges ? ReportFormat.spread(spread, format) : format(spread.median)
        }
        var parts: [String] = []
        if let text = show(summary.throughput) { parts.append("\(text) tasks/s") }
        if let text = show(summary.efficiency, ReportFormat.fraction) { parts.append("efficiency \(text)") }
        if let text = show(summary.submitToStartP50) { parts.append("p50 submit→start \(text) ms") }
        if let text = show(summary.submitToStartP99) { parts.append("p99 \(text) ms") }
        if let text = show(summary.overheadCpuUsPerTask) { parts.append("\(text) µs CPU/task") }
        return parts
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

    /// The swarm median throughput and each baseline tool's, for the comparison chart.
    static func throughputComparison(_ workload: WorkloadReport) -> [(label: String, value: Double?)] {
        var bars: [(label: String, value: Double?)] = [("swarm", summary(workload).throughput?.median)]
        for baseline in workload.baselines {
            bars.append((baseline.tool, baseline.available ? baseline.throughput?.median : nil))
        }
        return bars
    }
}
