import Foundation
import SwarmProtocol

/// `dashboard`: what the web dashboard costs while it is open (issue 15 item 5). The same
/// 100-task batch runs again and again on the `spawn` cluster, alternately without a reader
/// and with one dashboard log stream (`/api/tasks/ID/log`, Server-Sent Events) per task,
/// opened right after the submit and read until the task's `end`; the throughput of the two
/// arms is compared. The scheduler's HTTP listener is on in both (an idle listener is one
/// listening socket and a timer): the difference is the streams' work.
public struct DashboardWorkload: Workload {
    public let name = "dashboard"
    /// Tasks per batch, and so streams open at once in the `with` arm.
    public static let batchTasks = 100
    /// Each task prints one line, which every stream of it carries.
    static let command = ["echo", "dashboard"]

    public init() {}

    /// Rounds of the two arms (each round runs both, in alternating order).
    static func rounds(_ o: BenchOptions) -> Int { o.quick ? 2 : max(20, o.repeats) }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let o = context.options
        let tasks = Self.batchTasks
        let concurrency = min(o.spawnConcurrency, context.cluster.totalSlots)
        var report = WorkloadReport(name: name, title: "Dashboard open: \(tasks)-task batches with and without log streams",
            description: "The same batch of \(tasks) tasks running `echo dashboard` on a cluster with \(concurrency) slots, "
                + "alternately with no dashboard reader and with one dashboard log stream per task (the task page's "
                + "`/api/tasks/ID/log`, Server-Sent Events over HTTP/1.1), opened right after the submit and read until the "
                + "task ends. It measures what following logs live in a browser costs the scheduler's throughput.")
        report.parameters = ["tasks": "\(tasks)", "concurrency": "\(concurrency)", "command": Self.command.joined(separator: " "),
                             "rounds": "\(Self.rounds(o))"]
        guard let session = context as? BenchSession, let http = session.local?.httpAddress,
              let (host, port) = Self.hostPort(http) else {
            report.notes.append("Skipped: it needs the bench's own local cluster, whose scheduler serves HTTP on loopback.")
            return report
        }
        var without: [RunFigures] = [], with: [RunFigures] = []
        var missedEnds = 0
        for round in 1...Self.rounds(o) {
            // Alternating which arm goes first cancels a drift of the machine over the run.
            for streams in round % 2 == 1 ? [false, true] : [true, false] {
                let label = "\(streams ? "with" : "without") streams \(round)"
                context.progress.begin("dashboard: \(label)", total: tasks)
                let (run, ended) = try batch(session, label: label, tasks: tasks, concurrency: concurrency,
                                             streams: streams ? (host, port) : nil)
                context.progress.end("\(tasks) tasks in \(String(format: "%.3f", run.wallSeconds)) s: \(Int(run.throughput))/s"
                    + (streams ? ", \(ended) of \(tasks) streams saw the end" : ""))
                if streams { with.append(run); missedEnds += tasks - ended } else { without.append(run) }
                report.runs.append(run)
            }
        }
        let figures = Self.figures(without: without, with: with)
        report.summary = BatchMeasure.summary(with)
        report.tables.append(ReportTable(title: "Throughput, median of \(with.count) batches each",
            columns: ["arm", "tasks/s (median)", "min", "max", "scheduler CPU ms per batch (mean)"],
            rows: [Self.row("no reader", without), Self.row("one log stream per task", with)]))
        report.notes.append(String(format: "Cost of the open dashboard: %.1f%% of the throughput without it (target: at most 5%%). "
            + "A negative figure is noise: the arms are within each other's spread.", figures.costPercent))
        // Means: /proc counts CPU in 10 ms ticks, coarser than one batch's share.
        let cpu = (Self.mean(without.compactMap(\.schedulerCpuMs)), Self.mean(with.compactMap(\.schedulerCpuMs)))
        if cpu.0 > 0 {
            report.notes.append(String(format: "Scheduler CPU per batch: %.1f ms without readers, %.1f ms with one stream per task "
                + "(%+.0f%%): the streams' work, which the throughput hides while the scheduler has CPU to spare.",
                cpu.0, cpu.1, (cpu.1 / cpu.0 - 1) * 100))
        }
        report.passed = report.runs.allSatisfy { $0.lost == 0 && $0.duplicated == 0 && $0.failed == 0 } && missedEnds == 0
        if missedEnds > 0 { report.notes.append("\(missedEnds) streams did not carry their task's end within 10 s.") }
        return report
    }

    /// Medians of both arms and the cost: 1 - with / without, in percent.
    public static func figures(without: [RunFigures], with: [RunFigures]) -> (without: Double, with: Double, costPercent: Double) {
        let a = median(without.map(\.throughput)), b = median(with.map(\.throughput))
        return (a, b, a > 0 ? (a - b) * 100 / a : 0)
    }

    static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    private static func row(_ arm: String, _ runs: [RunFigures]) -> [String] {
        let t = runs.map(\.throughput)
        return [arm, String(format: "%.0f", median(t)), String(format: "%.0f", t.min() ?? 0), String(format: "%.0f", t.max() ?? 0),
                String(format: "%.1f", mean(runs.compactMap(\.schedulerCpuMs)))]
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        return (String(text[..<colon]), port)
    }

    /// One batch, measured as `runBatch` measures (`BatchMeasure`), with `streams` opened
    /// between the submit and the wait. Returns its figures and how many streams saw the end.
    private func batch(_ session: BenchSession, label: String, tasks: Int, concurrency: Int,
                       streams: (String, Int)?) throws -> (RunFigures, Int) {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let specs = (0..<tasks).map { i in
            var spec = TaskSpec(command: Self.command)
            spec.id = "dash-\(tag)-\(i)"
            return spec
        }
        let before = session.processFigures()
        let submitUs = unixMicros()
        let startUs = monotonicMicros()
        let ids: [String]
        do { ids = try session.client.submitBatch(specs).ids } catch {
            throw BenchError.failed("\(label): the scheduler refused the batch: \(error)")
        }
        let pool = streams.map { LogFollowerPool(host: $0.0, port: $0.1, ids: ids, token: session.token?.text) }
        let infos = try session.client.wait(ids, timeoutSeconds: 120)
        let wallSeconds = Double(monotonicMicros() - startUs) / 1_000_000
        let ended = pool?.finish(waitingUpTo: 10) ?? 0
        var figures = BatchMeasure.figures(infos: infos, ids: ids, label: label, concurrency: concurrency,
                                           submitUs: submitUs, wallSeconds: wallSeconds, sleepSeconds: nil)
        BatchMeasure.addUsage(&figures, before: before, after: session.processFigures())
        session.progress.update(done: infos.filter { $0.state.isTerminal }.count)
        return (figures, ended)
    }
}
