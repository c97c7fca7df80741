import Foundation

/// The one-screen summary `swarm bench` prints when it is done: the verdict, each target
/// met or missed, one line of headline figures per workload, and lost and duplicated tasks.
/// Where the report files were written is printed by the caller.
public enum TerminalSummary {
    /// The most lines the summary takes.
    public static let maxLines = 24

    /// Renders the summary: at most `maxLines` lines (joined by `\n`, no trailing newline),
    /// none longer than `width` characters (longer ones end with `…`). Plain text only.
    public static func render(_ report: BenchReport, width: Int = 100) -> String {
        let width = max(width, 20)
        let header = [
            "swarm bench \(report.passed ? "PASSED" : "FAILED") in \(ReportFormat.duration(report.durationSeconds))"
                + " (\(report.cluster.mode) cluster, \(ReportFormat.count(report.cluster.workers, "worker")), "
                + "\(ReportFormat.count(report.cluster.totalSlots, "slot")), "
                + "\(ReportFormat.count(report.repeats, "repetition")))",
            "Tasks lost: \(ReportFormat.int(report.lostTasks)), duplicated: \(ReportFormat.int(report.duplicatedTasks))"
                + (report.passed ? "" : "  <- " + failures(report)),
        ]

        let nameWidth = min(12, report.workloads.map(\.name.count).max() ?? 0)
        var workloads = report.workloads.map { workload in
            let name = workload.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            let verdict = workload.passed ? "ok  " : "FAIL"
            return "  \(name)  \(verdict)  " + ReportFigures.headline(workload, ranges: false).joined(separator: ", ")
        }
        if workloads.isEmpty { workloads = ["  (no workload ran)"] }

        // Workloads come first; targets get what is left of the screen.
        let fixed = header.count + 2 + min(workloads.count, maxLines - header.count - 2 - 2)
        let targetRoom = max(0, maxLines - fixed)
        var targets = report.targets.map { target in
            let mark = target.met.map { $0 ? "met   " : "MISSED" } ?? "n/a   "
            return "  \(mark)  \(target.name): \(target.measured) (goal \(target.target))"
        }
        if targets.isEmpty { targets = ["  (none checked)"] }
        if targets.count > targetRoom {
            let shown = max(0, targetRoom - 1)
            let missed = report.targets.dropFirst(shown).filter { $0.met == false }.count
            targets = Array(targets.prefix(shown))
                + ["  … \(report.targets.count - shown) more (\(missed) missed), see the report"]
        }
        let met = report.targets.filter { $0.met == true }.count
        let checked = report.targets.filter { $0.met != nil }.count

        var lines = header
        lines.append("Targets: \(met) of \(checked) met")
        lines += targets.prefix(targetRoom)
        lines.append("Workloads:")
        let workloadRoom = maxLines - lines.count
        if workloads.count > workloadRoom {
            workloads = Array(workloads.prefix(max(0, workloadRoom - 1)))
                + ["  … \(report.workloads.count - max(0, workloadRoom - 1)) more, see the report"]
        }
        lines += workloads
        return lines.prefix(maxLines).map { ReportFormat.truncate(ReportFormat.flatten($0), to: width) }
            .joined(separator: "\n")
    }

    private static func failures(_ report: BenchReport) -> String {
        let failed = report.workloads.filter { !$0.passed }.map(\.name)
        return failed.isEmpty ? "see the report" : "failed checks: " + failed.joined(separator: ", ")
    }
}
