import Foundation

/// A table ready to render: every row has exactly `header.count` cells.
struct DocTable: Equatable {
    var header: [String]
    var rows: [[String]]
    /// Columns aligned right (numbers).
    var numeric: Set<Int> = []
    /// Columns shown as code (command lines).
    var code: Set<Int> = []

    /// Pads short rows (and the header, for rows longer than it) with empty cells.
    init(header: [String], rows: [[String]], numeric: Set<Int> = [], code: Set<Int> = []) {
        let width = max(header.count, rows.map(\.count).max() ?? 0)
        func pad(_ cells: [String]) -> [String] { cells + Array(repeating: "", count: width - cells.count) }
        self.header = pad(header)
        self.rows = rows.map(pad)
        self.numeric = numeric
        self.code = code
    }
}

/// One piece of a report section, rendered by both the Markdown and the HTML renderer.
enum DocBlock: Equatable {
    case paragraph(String)
    /// A sentence to stand out; `ok` colours it (nil: neutral).
    case callout(String, ok: Bool?)
    case heading(String)
    case table(DocTable)
    case bullets([String])
    case code(String)
}

struct DocSection: Equatable {
    /// HTML anchor.
    var id: String
    var title: String
    var blocks: [DocBlock]
}

/// The report's content laid out as a performance study, independent of the output format.
struct ReportDocument {
    var title: String
    var abstract: String
    var sections: [DocSection]

    init(_ report: BenchReport) {
        title = "swarm bench: \(report.cluster.mode) cluster on \(report.machine.hostname), \(report.startedAt)"
        abstract = Self.abstract(report)
        sections = [Self.summary(report)]
        sections += report.workloads.map(Self.workload)
        sections += [Self.processes(report), Self.limitations(report), Self.machine(report), Self.reproduce(report)]
    }

    private static func abstract(_ r: BenchReport) -> String {
        let names = r.workloads.map(\.name).joined(separator: ", ")
        let checked = r.targets.filter { $0.met != nil }
        let met = checked.filter { $0.met == true }.count
        return "This report measures swarm \(r.machine.swarmVersion) as a coordinator of agent processes: "
            + "how fast it starts tasks, how close it comes to ideal parallelism and how it holds up as "
            + "concurrency grows. It ran \(ReportFormat.count(r.workloads.count, "workload"))"
            + (names.isEmpty ? "" : " (\(names))")
            + " on a \(r.cluster.mode) cluster of \(ReportFormat.count(r.cluster.workers, "worker")) with "
            + "\(ReportFormat.count(r.cluster.totalSlots, "slot")), \(ReportFormat.count(r.repeats, "repetition")) "
            + "per batch, on \(r.machine.hostname) (\(r.machine.cpus) CPUs, "
            + "\(ReportFormat.number(r.machine.memoryGiB)) GiB), from \(r.startedAt) to \(r.finishedAt) "
            + "(\(ReportFormat.duration(r.durationSeconds))). The bench \(r.passed ? "passed" : "failed"): "
            + "\(ReportFormat.count(r.lostTasks, "task")) lost, \(ReportFormat.int(r.duplicatedTasks)) duplicated, "
            + "\(met) of \(ReportFormat.count(checked.count, "target")) met."
    }

    /// `PASSED` or `FAILED` with the reasons.
    static func verdict(_ r: BenchReport) -> String {
        if r.passed { return "PASSED: no task lost or duplicated, every workload passed its own checks." }
        var reasons: [String] = []
        if r.lostTasks > 0 { reasons.append("\(ReportFormat.count(r.lostTasks, "task")) lost") }
        if r.duplicatedTasks > 0 { reasons.append("\(ReportFormat.count(r.duplicatedTasks, "task")) duplicated") }
        let failed = r.workloads.filter { !$0.passed }.map(\.name)
        if !failed.isEmpty { reasons.append("failed checks: \(failed.joined(separator: ", "))") }
        return "FAILED" + (reasons.isEmpty ? "." : ": \(reasons.joined(separator: "; ")).")
    }

    private static func summary(_ r: BenchReport) -> DocSection {
        var blocks: [DocBlock] = [.callout("Verdict: \(verdict(r))", ok: r.passed)]
        blocks.append(.heading("Targets"))
        if r.targets.isEmpty {
            blocks.append(.paragraph("No targets were checked."))
        } else {
            blocks.append(.table(DocTable(
                header: ["Target", "Goal", "Measured", "Met"],
                rows: r.targets.map { [$0.name, $0.target, $0.measured, ReportFormat.met($0.met)] })))
        }
        blocks.append(.heading("Headline figures"))
        if r.workloads.isEmpty {
            blocks.append(.paragraph("No workload ran."))
        } else {
            blocks.append(.bullets(r.workloads.map { w in
                "\(w.name) (\(w.passed ? "passed" : "FAILED")): "
                    + ReportFigures.headline(w).joined(separator: "; ")
            }))
        }
        blocks.append(.paragraph("Lost tasks: \(ReportFormat.int(r.lostTasks)). "
            + "Duplicated tasks: \(ReportFormat.int(r.duplicatedTasks))."))
        return DocSection(id: "summary", title: "Summary", blocks: blocks)
    }

    private static func workload(_ w: WorkloadReport) -> DocSection {
        var blocks: [DocBlock] = [.paragraph(w.description)]
        if !w.passed { blocks.append(.callout("This workload FAILED its own checks.", ok: false)) }
        if !w.parameters.isEmpty {
            blocks.append(.heading("Parameters"))
            blocks.append(.table(DocTable(header: ["Parameter", "Value"],
                                          rows: w.parameters.sorted { $0.key < $1.key }.map { [$0.key, $0.value] })))
        }
        if w.runs.isEmpty {
            blocks.append(.paragraph("No measured runs."))
        } else {
            let ramp = ReportFigures.isRamp(w), grouped = !ReportFigures.isRepetition(w) && !ramp
            blocks.append(.heading(ramp ? "Concurrency steps" : w.name == "workspace" ? "Phases" : grouped ? "Per model" : "Runs"))
            blocks.append(.paragraph("Latencies in milliseconds: submit→start percentiles, and the median "
                + "start→first output. Overhead: scheduler and worker CPU per task."))
            blocks.append(.table(runsTable(w.runs)))
            let parts = ReportFigures.summaryParts(ReportFigures.summary(w))
            if !parts.isEmpty {
                let noun = ramp ? "step" : grouped ? "model" : "run"
                // The idle probe (spawn) is its own row, not one of the repetitions.
                let counted = w.runs.filter { !$0.label.hasPrefix("idle") && $0.label != "warm-up" }.count
                blocks.append(.paragraph("Median [min–max] over \(ReportFormat.count(counted, noun)): "
                    + parts.joined(separator: "; ") + "."))
            }
        }
        if !w.baselines.isEmpty {
            blocks.append(.heading("Baselines"))
            blocks.append(.table(baselinesTable(w.baselines)))
        }
        for table in w.tables {
            blocks.append(.heading(table.title))
            blocks.append(.table(DocTable(header: table.columns, rows: table.rows)))
        }
        if !w.notes.isEmpty {
            blocks.append(.heading("Notes"))
            blocks.append(.bullets(w.notes))
        }
        return DocSection(id: "workload-\(w.name)", title: "\(w.title) (\(w.name))", blocks: blocks)
    }

    static func runsTable(_ runs: [RunFigures]) -> DocTable {
        let n = ReportFormat.number
        let rows = runs.map { run -> [String] in
            let latency = run.submitToStart
            return [run.label, ReportFormat.int(run.concurrency), ReportFormat.int(run.tasks),
                    ReportFormat.int(run.succeeded), ReportFormat.int(run.failed), ReportFormat.int(run.lost),
                    ReportFormat.int(run.duplicated), n(run.wallSeconds), n(run.throughput),
                    ReportFormat.fraction(run.efficiency), n(latency?.p50), n(latency?.p90), n(latency?.p99),
                    n(latency?.max), n(run.startToFirstOutput?.p50), n(run.overheadCpuUsPerTask)]
        }
        return DocTable(header: ["Run", "Concurrency", "Tasks", "OK", "Failed", "Lost", "Dup", "Wall s",
                                 "Tasks/s", "Efficiency", "p50 ms", "p90 ms", "p99 ms", "max ms",
                                 "1st output p50 ms", "Overhead µs/task"],
                        rows: rows, numeric: Set(1...15))
    }

    /// ` [0.65–0.75]`: a ratio's min–max over paired runs, when there were several.
    static func ratioRange(_ spread: Spread?) -> String {
        guard let spread, spread.runs > 1 else { return "" }
        return " [\(ReportFormat.ratio(spread.min))–\(ReportFormat.ratio(spread.max))]"
    }

    static func baselinesTable(_ baselines: [BaselineReport]) -> DocTable {
        let rows = baselines.map { b -> [String] in
            guard b.available else { return [b.tool, b.command, b.problem ?? "not installed", "–", "–", "–", "–"] }
            // Only runs whose pipeline succeeded count; none did: no throughput to show.
            let throughput = b.throughput == nil && !b.runs.isEmpty ? "failed: " + (b.problem ?? "exited non-zero")
                : ReportFormat.spread(b.throughput)
            return [b.tool, b.command, throughput, ReportFormat.spread(b.wallSeconds),
                    ReportFormat.spread(b.efficiency, ReportFormat.fraction),
                    ReportFormat.ratio(b.swarmThroughputRatio) + ratioRange(b.swarmThroughputRatioSpread),
                    ReportFormat.ratio(b.swarmEfficiencyRatio)]
        }
        return DocTable(header: ["Tool", "Command", "Tasks/s median [min–max]", "Wall s", "Efficiency",
                                 "swarm/tool throughput", "swarm/tool efficiency"],
                        rows: rows, numeric: Set(2...6), code: [1])
    }

    private static func processes(_ r: BenchReport) -> DocSection {
        let c = r.cluster
        let durable = c.durable.map { $0 ? "durable state (SQLite)" : "in-memory state" } ?? "state durability unknown"
        var blocks: [DocBlock] = [.paragraph("The \(c.mode) cluster: scheduler \(c.scheduler), "
            + "\(ReportFormat.count(c.workers, "worker")), \(ReportFormat.count(c.totalSlots, "slot")), \(durable). "
            + "CPU time and peak resident memory of each cluster process over the whole bench (not its tasks).")]
        if r.processes.isEmpty {
            blocks.append(.paragraph("No process figures were collected (the bench can only measure processes it started)."))
        } else {
            let rows = r.processes.map { p in
                [p.name, p.role, p.pid.map(String.init) ?? ReportFormat.missing, ReportFormat.number(p.cpuUserMs),
                 ReportFormat.number(p.cpuSystemMs), ReportFormat.number(p.peakRssMiB)]
            }
            blocks.append(.table(DocTable(header: ["Process", "Role", "PID", "CPU user ms", "CPU sys ms", "Peak RSS MiB"],
                                          rows: rows, numeric: [2, 3, 4, 5])))
        }
        return DocSection(id: "processes", title: "Cluster processes", blocks: blocks)
    }

    private static func limitations(_ r: BenchReport) -> DocSection {
        let blocks: [DocBlock] = r.limitations.isEmpty ? [.paragraph("None recorded.")] : [.bullets(r.limitations)]
        return DocSection(id: "limitations", title: "Limitations", blocks: blocks)
    }

    private static func machine(_ r: BenchReport) -> DocSection {
        let m = r.machine
        let rows = [
            ["Host", m.hostname], ["OS", m.os], ["Kernel", m.kernel], ["CPU", m.cpuModel],
            ["CPUs", ReportFormat.int(m.cpus)], ["Memory", "\(ReportFormat.number(m.memoryGiB)) GiB"],
            ["libuv", m.libuvVersion], ["swarm", m.swarmVersion],
            ["Cluster", "\(r.cluster.mode), \(r.cluster.workers) workers, \(r.cluster.totalSlots) slots"],
            ["Repetitions", ReportFormat.int(r.repeats)], ["Started", r.startedAt], ["Finished", r.finishedAt],
            ["Duration", ReportFormat.duration(r.durationSeconds)], ["Schema", r.schema],
        ]
        return DocSection(id: "machine", title: "Machine", blocks: [.table(DocTable(header: ["Property", "Value"], rows: rows))])
    }

    private static func reproduce(_ r: BenchReport) -> DocSection {
        DocSection(id: "reproduce", title: "Reproduce", blocks: [
            .paragraph("This report was produced by:"), .code(r.commandLine),
        ])
    }
}
