import Foundation

/// The `dashboard` workload's tables and notes: the throughput cost per pair of batches, and
/// where the CPU went (per stream: the scheduler's, the workers', the bench's followers').
enum DashboardFigures {
    typealias Sample = DashboardWorkload.ArmSample

    static func describe(_ report: inout WorkloadReport, without: [Sample], with: [Sample], tasks: Int) {
        report.summary = BatchMeasure.summary(with.map(\.run))
        let costs = DashboardWorkload.pairCosts(report.runs)
        let arms = DashboardWorkload.figures(without: without.map(\.run), with: with.map(\.run))
        report.tables.append(ReportTable(title: "Throughput and CPU per batch, medians of \(with.count) batches each",
            columns: ["arm", "tasks/s (median)", "min", "max", "scheduler CPU ms", "workers CPU ms", "followers CPU ms"],
            rows: [row("no reader", without), row("one log stream per task", with)]))
        let pairs = Array(zip(without, with))
        func perStream(_ values: [Double]) -> String {
            guard !values.isEmpty else { return "–" }
            return String(format: "%.0f [%.0f–%.0f]", DashboardWorkload.median(values), values.min()!, values.max()!)
        }
        let scheduler = pairs.map { Double($1.schedulerNs - $0.schedulerNs) / Double(tasks) / 1_000 }
        let workers = pairs.map { Double($1.workersNs - $0.workersNs) / Double(tasks) / 1_000 }
        let followers = with.compactMap { $0.followers.map { Double($0.cpuNs) / Double(tasks) / 1_000 } }
        report.tables.append(ReportTable(title: "CPU per stream, µs: median [min–max] over \(pairs.count) pairs (with minus without)",
            columns: ["scheduler", "workers", "followers (the bench's reader thread)"],
            rows: [[perStream(scheduler), perStream(workers), perStream(followers)]]))
        if !costs.isEmpty {
            report.notes.append(String(format: "Cost of the open dashboard: %.1f%% of the throughput without it, median of %d pairs "
                + "[%.1f%% – %.1f%%] (target: at most 5%%; arms' medians %.0f/s with, %.0f/s without). A negative figure is "
                + "noise: the arms are within each other's spread.", DashboardWorkload.median(costs), costs.count,
                costs.min()!, costs.max()!, arms.with, arms.without))
        }
        func total(_ key: KeyPath<LogFollowerPool.Figures, Int>) -> Int { with.reduce(0) { $0 + ($1.followers?[keyPath: key] ?? 0) } }
        report.notes.append("Streams: \(total(\.ended)) of \(with.count * tasks) carried their task's end; \(total(\.streamed)) of them "
            + "were live (opened before the task ended), the rest the whole log of a task already ended. How the readers connect: "
            + "HTTP/1.1 keep-alive, as a browser: \(total(\.connects)) connections made over the run, \(total(\.reused)) streams "
            + "asked on a connection kept from an earlier one.")
        if !scheduler.isEmpty {
            report.notes.append(String(format: "CPU per stream (median of the pairs' differences): scheduler %.0f µs, workers %.0f µs, "
                + "the bench's followers %.0f µs. With no idle core (2 CPUs: workers, spawns, scheduler and bench share them) "
                + "every one of these slows the batch.", DashboardWorkload.median(scheduler),
                DashboardWorkload.median(workers), followers.isEmpty ? 0 : DashboardWorkload.median(followers)))
        }
        report.notes.append("What a stream costs on a kept-alive connection: on the scheduler 2 syscalls (read of the request, "
            + "one write for head, log and end together, taken by the kernel at once: no epoll_ctl after it), no accept and no close; "
            + "the readers pay the other end of the same loopback TCP (README, \"Dashboard open\").")
    }

    private static func row(_ arm: String, _ samples: [Sample]) -> [String] {
        let t = samples.map(\.run.throughput)
        func ms(_ values: [Double]) -> String { String(format: "%.1f", DashboardWorkload.median(values)) }
        return [arm, String(format: "%.0f", DashboardWorkload.median(t)), String(format: "%.0f", t.min() ?? 0),
                String(format: "%.0f", t.max() ?? 0), ms(samples.map { Double($0.schedulerNs) / 1e6 }),
                ms(samples.map { Double($0.workersNs) / 1e6 }),
                samples.allSatisfy({ $0.followers == nil }) ? "–" : ms(samples.map { Double($0.followers?.cpuNs ?? 0) / 1e6 })]
    }
}
