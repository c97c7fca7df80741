import Foundation

/// The issue's targets for this machine, checked against a report's figures.
public enum TargetChecks {
    public static func evaluate(_ report: BenchReport) -> [TargetCheck] {
        var checks: [TargetCheck] = []
        let byName = Dictionary(report.workloads.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        checks += spawn(report.workloads.filter { $0.name == "spawn" || $0.name.hasPrefix("spawn-p") }, cli: byName["spawn-cli"])
        if let spawn = byName["spawn"] {
            let idle = spawn.runs.first { $0.label.hasPrefix("idle") }?.submitToStart?.p50
            checks.append(TargetCheck(name: "p50 submit-to-start, idle cluster", target: "< 1 ms",
                                      measured: idle.map { String(format: "%.3f ms", $0) } ?? "-", met: idle.map { $0 < 1 }))
        }
        if let dashboard = byName["dashboard"], !dashboard.runs.isEmpty {
            let f = DashboardWorkload.figures(without: dashboard.runs.filter { $0.label.hasPrefix("without") },
                                              with: dashboard.runs.filter { $0.label.hasPrefix("with ") })
            // The median of the pairs' costs (each pair ran back to back); the arms' medians
            // when the runs do not pair up.
            let costs = DashboardWorkload.pairCosts(dashboard.runs)
            let cost = costs.isEmpty ? f.costPercent : DashboardWorkload.median(costs)
            let spread = costs.isEmpty ? "" : String(format: ", %d pairs [%.1f%% – %.1f%%]", costs.count, costs.min()!, costs.max()!)
            checks.append(TargetCheck(name: "throughput cost of an open dashboard (a log stream per task, \(DashboardWorkload.batchTasks)-task batches)",
                                      target: "<= 5%", measured: String(format: "%.1f%% (%.0f/s vs %.0f/s", cost, f.with, f.without) + spread + ")",
                                      met: cost <= 5))
        }
        for (name, shape, goal) in [("parallel", "100 x 10 s", 0.995), ("parallel-wide", "1000 x 2 s", 0.80)] {
            guard let w = byName[name], let eff = w.summary.efficiency?.median else { continue }
            let actual = "\(w.parameters["tasks"] ?? "?") x \(w.parameters["sleepSeconds"] ?? "?") s"
            // The target is for its own shape; a quick run's smaller shape is shown, not judged.
            let judged = actual == shape
            let xargs = w.baselines.first { $0.tool == "xargs" }?.efficiency?.median
            checks.append(TargetCheck(name: "parallel efficiency, \(actual)",
                                      target: judged ? String(format: ">= %.3g", goal) : "(\(shape) only)",
                                      measured: String(format: "%.4f", eff) + (xargs.map { String(format: " (xargs %.4f)", $0) } ?? ""),
                                      met: judged ? eff >= goal : nil))
        }
        if let scale = byName["scale"] {
            let held = scale.runs.filter { $0.failed == 0 && $0.lost == 0 }.map { $0.peakConcurrent ?? 0 }.max()
            // Judged only when the ramp was asked to reach 10,000.
            let planned = (scale.parameters["steps"] ?? "").split(separator: ",").compactMap { Int($0) }.max() ?? 0
            checks.append(TargetCheck(name: "concurrent supervised agents on one machine",
                                      target: planned >= 10_000 ? ">= 10,000" : "(a ramp to 10,000 only)",
                                      measured: held.map { "\($0)" } ?? "-",
                                      met: planned >= 10_000 ? held.map { $0 >= 10_000 } : nil))
        }
        if let w = byName["workspace"]?.workspace { checks += workspace(w) }
        if let soak = byName["soak"]?.soak { checks += Self.soak(soak) }
        checks.append(TargetCheck(name: "lost or duplicated tasks", target: "0",
                                  measured: "\(report.lostTasks) lost, \(report.duplicatedTasks) duplicated",
                                  met: report.lostTasks == 0 && report.duplicatedTasks == 0))
        return checks
    }
}

extension TargetChecks {
    /// Issue 17's spawn targets: throughput against xargs at the same P, the worst level as the
    /// headline (its ratio's min-max over the repeats beside it), the CLI arm, and the
    /// coordinator's CPU per task at the level where it is highest.
    static func spawn(_ levels: [WorkloadReport], cli: WorkloadReport?) -> [TargetCheck] {
        guard !levels.isEmpty else { return [] }
        func xargs(_ w: WorkloadReport) -> BaselineReport? { w.baselines.first { $0.tool == "xargs" && $0.available } }
        func p(_ w: WorkloadReport) -> String { w.parameters["concurrency"] ?? "?" }
        func ratioText(_ w: WorkloadReport) -> String {
            guard let b = xargs(w), let ratio = b.swarmThroughputRatio else { return "-" }
            let spread = b.swarmThroughputRatioSpread.map { $0.runs > 1 ? String(format: ", runs %.2f-%.2fx", $0.min, $0.max) : "" } ?? ""
            return String(format: "%.2fx (%.0f/s vs %.0f/s", ratio, w.summary.throughput?.median ?? 0,
                          b.throughput?.median ?? 0) + spread + ")"
        }
        var checks: [TargetCheck] = []
        let measured = levels.filter { xargs($0)?.swarmThroughputRatio != nil }
        if levels.count == 1 {
            let w = levels[0]
            checks.append(TargetCheck(name: "spawn throughput vs xargs -P \(p(w))", target: ">= 1.0x", measured: ratioText(w),
                                      met: xargs(w)?.swarmThroughputRatio.map { $0 >= 1.0 }))
        } else {
            let worst = measured.min { xargs($0)!.swarmThroughputRatio! < xargs($1)!.swarmThroughputRatio! }
            let others = measured.filter { $0.name != worst?.name }.map { "P=\(p($0)) " + String(format: "%.2fx", xargs($0)!.swarmThroughputRatio!) }
            checks.append(TargetCheck(name: "spawn throughput vs xargs -P, worst of P=" + levels.map(p).joined(separator: "/"),
                                      target: ">= 1.0x",
                                      measured: worst.map { "P=\(p($0)): " + ratioText($0) + (others.isEmpty ? "" : "; " + others.joined(separator: ", ")) } ?? "-",
                                      met: measured.count == levels.count ? worst.map { xargs($0)!.swarmThroughputRatio! >= 1.0 } : nil))
        }
        if let cli {
            checks.append(TargetCheck(name: "spawn through the CLI (submit --file, wait) vs xargs -P \(p(cli))", target: ">= 1.0x",
                                      measured: ratioText(cli), met: xargs(cli)?.swarmThroughputRatio.map { $0 >= 1.0 }))
        }
        let cpu = (levels + (cli.map { [$0] } ?? [])).compactMap { w in w.summary.overheadCpuUsPerTask.map { (w, $0) } }
        if let (w, spread) = cpu.max(by: { $0.1.median < $1.1.median }) {
            checks.append(TargetCheck(name: "coordinator CPU per trivial task (scheduler + workers), highest level",
                                      target: "<= 250 µs",
                                      measured: String(format: "%.0f µs", spread.median) + " at P=\(p(w))"
                                          + (w.name == "spawn-cli" ? " via the CLI" : "")
                                          + String(format: " (runs %.0f-%.0f)", spread.min, spread.max),
                                      met: spread.median <= 250))
        }
        return checks
    }
}

extension TargetChecks {
    /// Issue 11's targets: each judged at the shape it is defined for (a smaller shape's
    /// figure is shown, not judged), except dedup, which holds at any size.
    static func workspace(_ w: WorkspaceFigures) -> [TargetCheck] {
        var checks: [TargetCheck] = []
        let mib = Int((Double(w.inputBytes ?? 0) / WorkspaceFigures.mib).rounded())
        // The target's 256 MiB input: the bench packs 256 MiB less 64 KiB of files into at most 256 MiB.
        let full = (w.inputBytes ?? 0) > 255 << 20
        checks.append(TargetCheck(
            name: "input upload+download, \(full ? 256 : mib) MiB, 2 x bytes / (upload s + download s)",
            target: full ? ">= 200 MiB/s" : "(256 MiB only)",
            measured: w.roundTripMiBps.map { String(format: "%.0f MiB/s (cp %.0f MiB/s)", $0, w.copyMiBps ?? .nan) } ?? "-",
            met: full ? w.roundTripMiBps.map { $0 >= 200 } : nil))
        if let tasks = w.fanoutTasks, let input = w.fanoutInputBytes {
            let most = w.fanoutBytesToWorker?.values.max()
            checks.append(TargetCheck(
                name: "fan-out of \(tasks) tasks, one \(Int((Double(input) / WorkspaceFigures.mib).rounded())) MiB input: bytes sent to each worker",
                target: "<= 1 x input",
                measured: most.map { String(format: "at most %.2f x input (%.1f MiB) on %d workers", w.fanoutMaxPerWorkerRatio ?? 0,
                                            Double($0) / WorkspaceFigures.mib, w.fanoutBytesToWorker?.count ?? 0) } ?? "-",
                met: most.map { $0 <= input }))
        }
        if let tasks = w.worktreeTasks, let files = w.repoFiles {
            let judged = tasks == 100 && files == 5000
            checks.append(TargetCheck(
                name: "worktree p50, \(tasks) concurrent tasks, \(files)-file repository",
                target: judged ? "< 200 ms" : "(100 x 5,000 files only)",
                measured: w.worktreeCreate.map { c in
                    String(format: "creation p50 %.0f ms, p99 %.0f ms", c.p50, c.p99)
                        + (w.worktreeReused.map { " (\($0) reused a spare" + (w.worktreeCreateNew.map { String(format: "; new ones p50 %.0f ms", $0.p50) } ?? "") + ")" } ?? "")
                        + (w.worktreePrepare.map { String(format: "; ready (waits included) p50 %.0f ms", $0.p50) } ?? "")
                } ?? "- (not measured)",
                met: judged ? w.worktreeCreate.map { $0.p50 < 200 } : nil))
        }
        return checks
    }
}

extension TargetChecks {
    /// Issue 14's soak targets, judged on the samples after the first 10% of the tasks
    /// (`SoakFigures` defines each with its numbers).
    static func soak(_ s: SoakFigures) -> [TargetCheck] {
        let settled = s.settled
        let pct = { (v: Double?) in v.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        let range = { (values: [Int]) in values.isEmpty ? "-" : "\(values.min()!)-\(values.max()!)" }
        let mib = { (bytes: Int64?) in bytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "-" }
        return [
            TargetCheck(name: "soak: scheduler RSS after the first 10% of \(s.tasks) tasks", target: "varies <= 20%",
                        measured: pct(s.rssSpread) + " (\(range(settled.map { $0.schedulerRssKiB / 1024 })) MiB)", met: s.rssBounded),
            TargetCheck(name: "soak: open descriptors after the first 10%", target: "unchanged",
                        measured: "scheduler \(range(settled.map(\.schedulerFds))), workers \(range(settled.flatMap(\.workerFds)))",
                        met: s.fdsConstant),
            TargetCheck(name: "soak: swarm.db within retention (\(s.maxFinishedTasks) tasks kept)",
                        target: "listed <= kept + 500 + 11 s of tasks; late peak size <= 1.25 x early",
                        measured: "listed at most \(s.samples.map(\.listedTasks).max() ?? 0) (limit \(s.samples.map(s.listLimit).max() ?? 0)), size "
                            + (s.dbGrowth.map { String(format: "%.2fx", $0) } ?? "-")
                            + " (peaks \(mib(settled.map { $0.dbPeakBytes ?? $0.dbBytes }.min())) - \(mib(settled.map { $0.dbPeakBytes ?? $0.dbBytes }.max())))",
                        met: s.dbBounded),
            TargetCheck(name: "soak: each worker's data dir within retention (maxGiB \(mib(s.workerMaxBytes)))",
                        target: "<= " + mib(s.workerDiskLimit),
                        measured: "at most " + mib(s.samples.flatMap(\.workerDiskBytes).max()), met: s.workerDiskBounded),
        ]
    }
}

/// What the report cannot show, stated with it.
enum Limitations {
    static func list(_ report: BenchReport, config: BenchRunner.Config) -> [String] {
        var list: [String] = []
        if report.cluster.mode == "remote" {
            list.append("Remote cluster: submit-to-start subtracts the bench machine's clock from the worker's, so clock "
                + "skew between machines is in those figures. CPU and RSS come from the processes' heartbeats (up to one "
                + "interval old). The baselines ran on the bench machine, not on the workers.")
        } else {
            list.append("Everything ran on one machine: the scheduler, the workers, the tasks, the bench client and the "
                + "baselines share its \(report.machine.cpus) CPUs, so the figures include their contention.")
        }
        if report.cluster.durable == false {
            list.append("The local scheduler kept its state in memory (`--in-memory`), which users do not run: a durable "
                + "scheduler sends a turn's replies and assignments only once an fsync covers them; run without "
                + "`--in-memory` to include that cost.")
        }
        list.append("CPU times come from /proc in clock ticks (10 ms) over whole batches; per-task overhead is that total "
            + "divided by the tasks. Peak RSS is a high-water mark since each process started.")
        list.append("xargs and GNU parallel only start processes; swarm also places, supervises (timeouts, silence), logs, "
            + "journals and reports every task, so equal throughput means that work costs no throughput.")
        if let parallel = report.workloads.flatMap(\.baselines).first(where: { $0.tool == "parallel" && !$0.available }) {
            list.append("GNU parallel was not run (\(parallel.problem ?? "not installed")), so only xargs was compared.")
        }
        if report.workloads.contains(where: { $0.name == "workspace" }) {
            list.append("workspace: loopback and one disk; the worker's download time includes writing its cache and "
                + "unpacking; cp -r does not fsync. The input's files were just written, so both read from the page cache.")
        }
        if config.options.quick {
            list.append("Quick mode: smaller batches. The parallel-efficiency and 10,000-agent targets are defined for their "
                + "full-size shapes and are shown, not judged; spawn throughput, idle submit-to-start and lost or "
                + "duplicated tasks are still judged.")
        }
        return list
    }
}
