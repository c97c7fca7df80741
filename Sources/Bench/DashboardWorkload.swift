import Foundation
import SwarmProtocol

/// `dashboard`: what the web dashboard costs while it is open (issue 15 item 5). The same
/// 100-task batch runs again and again on the `spawn` cluster, in pairs: once without a
/// reader and once with one dashboard log stream (`/api/tasks/ID/log`, Server-Sent Events)
/// per task, opened right after the submit (from a thread of their own, as a browser's) and
/// read until the task's `end`. The cost is the median over the pairs of 1 - with / without
/// (each pair ran back to back, so a drift of the machine mostly cancels). The scheduler's
/// HTTP listener is on in both arms: the difference is the streams' work. Beside it, the CPU
/// each party spent per stream (scheduler, workers, the followers themselves), since on a
/// machine with no idle core any of it slows the batch.
public struct DashboardWorkload: Workload {
    public let name = "dashboard"
    /// Tasks per batch, and so streams open at once in the `with` arm.
    public static let batchTasks = 100
    /// Each task prints one line, which every stream of it carries.
    static let command = ["echo", "dashboard"]

    public init() {}

    /// Pairs of batches (each runs both arms, in alternating order).
    static func rounds(_ o: BenchOptions) -> Int { o.quick ? 8 : max(40, o.repeats) }

    /// One batch's figures beside the run's: CPU in nanoseconds, read from /proc.
    struct ArmSample {
        var run: RunFigures
        var schedulerNs: Int64
        var workersNs: Int64
        var followers: LogFollowerPool.Figures?
    }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let o = context.options
        let tasks = Self.batchTasks
        let concurrency = min(o.spawnConcurrency, context.cluster.totalSlots)
        var report = WorkloadReport(name: name, title: "Dashboard open: \(tasks)-task batches with and without log streams",
            description: "The same batch of \(tasks) tasks running `echo dashboard` on a cluster with \(concurrency) slots, "
                + "in pairs: once with no dashboard reader and once with one dashboard log stream per task (the task page's "
                + "`/api/tasks/ID/log`, Server-Sent Events over HTTP/1.1), asked right after the submit by a reader thread "
                + "of the bench (epoll, as a browser's) and read until the task ends. As a browser does, the readers keep "
                + "their connections alive: a stream that ended leaves its connection for the next one, so after the first "
                + "batch the streams are asked on connections already open (one per concurrent stream). It measures what following logs live "
                + "costs the cluster's throughput, and the CPU each process spends per stream.")
        report.parameters = ["tasks": "\(tasks)", "concurrency": "\(concurrency)", "command": Self.command.joined(separator: " "),
                             "rounds": "\(Self.rounds(o))"]
        guard let session = context as? BenchSession, let local = session.local, let http = local.httpAddress,
              let (host, port) = Self.hostPort(http) else {
            report.notes.append("Skipped: it needs the bench's own local cluster, whose scheduler serves HTTP on loopback.")
            return report
        }
        var without: [ArmSample] = [], with: [ArmSample] = []
        // One pool of readers for the whole run: their kept-alive connections serve batch after
        // batch, as a browser's do while the dashboard stays open.
        let pool = LogFollowerPool(host: host, port: port, token: session.token?.text)
        defer { pool.close() }
        for round in 1...Self.rounds(o) {
            // Alternating which arm goes first cancels a drift of the machine over the run.
            for streams in round % 2 == 1 ? [false, true] : [true, false] {
                let label = "\(streams ? "with" : "without") streams \(round)"
                context.progress.begin("dashboard: \(label)", total: tasks)
                let sample = try batch(session, local: local, label: label, tasks: tasks, concurrency: concurrency,
                                       pool: streams ? pool : nil)
                context.progress.end("\(tasks) tasks in \(String(format: "%.3f", sample.run.wallSeconds)) s: \(Int(sample.run.throughput))/s"
                    + (sample.followers.map { ", \($0.ended) of \(tasks) streams saw the end (\($0.streamed) live)" } ?? ""))
                if streams { with.append(sample) } else { without.append(sample) }
                report.runs.append(sample.run)
            }
        }
        DashboardFigures.describe(&report, without: without, with: with, tasks: tasks)
        let missedEnds = with.reduce(0) { $0 + tasks - ($1.followers?.ended ?? 0) }
        report.passed = report.runs.allSatisfy { $0.lost == 0 && $0.duplicated == 0 && $0.failed == 0 } && missedEnds == 0
        if missedEnds > 0 { report.notes.append("\(missedEnds) streams did not carry their task's end within 10 s.") }
        return report
    }

    /// Medians of both arms and their cost: 1 - with / without, in percent.
    public static func figures(without: [RunFigures], with: [RunFigures]) -> (without: Double, with: Double, costPercent: Double) {
        let a = median(without.map(\.throughput)), b = median(with.map(\.throughput))
        return (a, b, a > 0 ? (a - b) * 100 / a : 0)
    }

    /// The cost of each pair (`without streams N` beside `with streams N`), in percent:
    /// 1 - with / without, in the order of N. Runs without a partner are left out.
    public static func pairCosts(_ runs: [RunFigures]) -> [Double] {
        func byRound(_ prefix: String) -> [Int: Double] {
            Dictionary(runs.compactMap { run in
                guard run.label.hasPrefix(prefix), let n = Int(run.label.dropFirst(prefix.count)) else { return nil }
                return (n, run.throughput)
            }, uniquingKeysWith: { a, _ in a })
        }
        let a = byRound("without streams "), b = byRound("with streams ")
        return a.keys.sorted().compactMap { n in
            guard let x = a[n], let y = b[n], x > 0 else { return nil }
            return (x - y) * 100 / x
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        return (String(text[..<colon]), port)
    }

    /// One batch, measured as `runBatch` measures (`BatchMeasure`); with a `pool`, one
    /// follower per task, handed the ids right after the submit (their thread asks while
    /// this one waits).
    private func batch(_ session: BenchSession, local: LocalProcessCluster, label: String, tasks: Int, concurrency: Int,
                       pool: LogFollowerPool?) throws -> ArmSample {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let specs = (0..<tasks).map { i in
            var spec = TaskSpec(command: Self.command)
            spec.id = "dash-\(tag)-\(i)"
            return spec
        }
        let pids = local.processIDs
        func cpu(_ role: String) -> Int64 { pids.filter { $0.role == role }.reduce(0) { $0 + ProcSampler.cpuNs(pid: $1.pid) } }
        let before = session.processFigures()
        let cpuBefore = (cpu("scheduler"), cpu("worker"))
        let submitUs = unixMicros()
        let startUs = monotonicMicros()
        let ids: [String]
        do { ids = try session.client.submitBatch(specs).ids } catch {
            _ = pool?.finish(waitingUpTo: 0)
            throw BenchError.failed("\(label): the scheduler refused the batch: \(error)")
        }
        pool?.open(ids)
        let infos = try session.client.wait(ids, timeoutSeconds: 120)
        let wallSeconds = Double(monotonicMicros() - startUs) / 1_000_000
        let followers = pool?.finish(waitingUpTo: 10)
        let cpuAfter = (cpu("scheduler"), cpu("worker"))
        var figures = BatchMeasure.figures(infos: infos, ids: ids, label: label, concurrency: concurrency,
                                           submitUs: submitUs, wallSeconds: wallSeconds, sleepSeconds: nil)
        BatchMeasure.addUsage(&figures, before: before, after: session.processFigures())
        session.progress.update(done: infos.filter { $0.state.isTerminal }.count)
        return ArmSample(run: figures, schedulerNs: cpuAfter.0 - cpuBefore.0, workersNs: cpuAfter.1 - cpuBefore.1,
                         followers: followers)
    }
}
