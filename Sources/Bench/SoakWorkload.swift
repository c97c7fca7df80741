import Foundation
import SwarmClient
import SwarmProtocol

/// `soak` (issue 14 item 6): N trivial tasks (`true`) in batches through a durable scheduler
/// and 2 workers whose retention limits are small enough to bind (`SoakFigures.shape`). After
/// each batch it samples the scheduler's and workers' RSS and open descriptors, `swarm.db`'s
/// size, the workers' data dirs, and the time of the whole listing (`swarm tasks --json`);
/// at the end it restarts the scheduler and times it until it listens. The verdicts
/// (`SoakFigures`) are ratios, so a slow machine is judged as a fast one. Runs only on the
/// bench's own local cluster (it reads /proc and the state directories) and only when named.
public struct SoakWorkload: Workload {
    public let name = "soak"
    public init() {}

    /// Tasks: `--tasks`, else 1,000,000 (100,000 with `--quick`).
    static func tasks(_ options: BenchOptions) -> Int {
        options.soakTasks ?? (options.quick ? 100_000 : 1_000_000)
    }

    /// The cluster.json parts the soak's cluster runs with: the scheduler's retention, and
    /// each worker's (its `maxGiB`).
    static func clusterRetention(_ figures: SoakFigures) -> (scheduler: [String: Any], worker: [String: Any]) {
        (["inMemoryFinished": figures.inMemoryFinished, "maxFinishedTasks": figures.maxFinishedTasks],
         ["maxGiB": Double(figures.workerMaxBytes) / Double(1 << 30)])
    }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        var figures = SoakFigures.shape(tasks: Self.tasks(context.options))
        var report = WorkloadReport(name: name, title: "Soak: \(figures.tasks) tasks through a durable scheduler",
            description: "\(figures.tasks) tasks running `true`, in \(figures.batches) batches, through a durable scheduler and "
                + "its workers, with retention small enough to bind (\(figures.maxFinishedTasks) finished tasks kept in swarm.db, "
                + "\(figures.inMemoryFinished) in memory, \(figures.workerMaxBytes >> 20) MiB of task files per worker). After "
                + "each batch: RSS and open descriptors of every process, swarm.db's size, the workers' data dirs, and the time "
                + "of the whole listing. At the end the scheduler is restarted and timed until it listens.")
        report.parameters = ["tasks": "\(figures.tasks)", "batches": "\(figures.batches)",
                             "maxFinishedTasks": "\(figures.maxFinishedTasks)", "inMemoryFinished": "\(figures.inMemoryFinished)",
                             "workerMaxBytes": "\(figures.workerMaxBytes)", "slots": "\(context.cluster.totalSlots)"]
        guard let local = (context as? BenchSession)?.local, local.options.durable else {
            report.notes.append("soak runs only on the bench's own local cluster (durable): skipped.")
            return report
        }
        let prefix = "soak-\(UInt32.random(in: 0...UInt32.max))"
        context.progress.begin("soak: \(figures.tasks) tasks", total: figures.tasks)
        var done = 0
        let db = local.schedulerStateDirectory + "/swarm.db"
        for batch in 0..<figures.batches {
            let count = figures.tasks * (batch + 1) / figures.batches - done
            let poller = PeakPoller(intervalMs: Self.pollMs) { Self.dbBytes(db) }
            let run = try Self.runBatch(context, ids: (done..<done + count).map { "\(prefix)-\($0)" }, label: "batch \(batch + 1)")
            let peak = poller.stop()
            report.runs.append(run)
            done += count
            context.progress.update(done: done)
            var sample = Self.sample(local, client: context.client, done: done)
            sample.tasksPerSecond = run.throughput
            sample.dbPeakBytes = max(peak, sample.dbBytes)
            figures.samples.append(sample)
        }
        context.progress.end("soak: \(done) tasks; restarting the scheduler")
        figures.restartSeconds = try local.restartScheduler()
        if let client = try? SwarmClient(address: local.address, token: nil, name: "bench-soak") {
            figures.listedAfterRestart = (try? client.listTasks())?.count
        }
        report.summary = BatchMeasure.summary(report.runs)
        Self.describe(&report, figures)
        return report
    }

    /// Submits one batch (in parts that fit a frame) and waits for all of it.
    static func runBatch(_ context: BenchContext, ids: [String], label: String) throws -> RunFigures {
        let submitUs = unixMicros()
        let started = monotonicMicros()
        for part in stride(from: 0, to: ids.count, by: 10_000) {
            let specs = ids[part..<min(ids.count, part + 10_000)].map { TaskSpec(id: $0, command: ["true"]) }
            do { _ = try context.client.submitBatch(specs) } catch {
                throw BenchError.failed("soak: the scheduler refused \(label): \(error)")
            }
        }
        let infos: [TaskInfo]
        do { infos = try context.client.wait(ids, timeoutSeconds: 120 + Double(ids.count) / 20) } catch {
            throw BenchError.failed("soak: \(label) did not end: \(error)")
        }
        let wall = Double(monotonicMicros() - started) / 1_000_000
        return BatchMeasure.figures(infos: infos, ids: ids, label: label, concurrency: context.cluster.totalSlots,
                                    submitUs: submitUs, wallSeconds: wall, sleepSeconds: nil)
    }

    /// How often the DB's size is polled while a batch runs (`SoakSample.dbPeakBytes`).
    static let pollMs = 50

    /// `swarm.db` with its `-wal` and `-shm` files: their allocated bytes.
    static func dbBytes(_ db: String) -> Int64 {
        [db, db + "-wal", db + "-shm"].reduce(0) { $0 + DiskUsage.fileBytes($1) }
    }

    /// One sample of every figure, now.
    static func sample(_ cluster: LocalProcessCluster, client: SwarmClient, done: Int) -> SoakSample {
        let pids = cluster.processIDs
        let scheduler = pids.first { $0.role == "scheduler" }?.pid ?? 0
        let workers = pids.filter { $0.role == "worker" }.map(\.pid)
        let started = monotonicMicros()
        let listed = (try? client.listTasks())?.count ?? -1
        let listSeconds = Double(monotonicMicros() - started) / 1_000_000
        return SoakSample(done: done, schedulerRssKiB: ProcSampler.rssKiB(pid: scheduler), schedulerFds: ProcSampler.steadyOpenFiles(pid: scheduler),
                          workerRssKiB: workers.map { ProcSampler.rssKiB(pid: $0) }, workerFds: workers.map { ProcSampler.steadyOpenFiles(pid: $0) },
                          dbBytes: dbBytes(cluster.schedulerStateDirectory + "/swarm.db"),
                          workerDiskBytes: cluster.workerDataDirectories.map { DiskUsage.allocatedBytes(under: $0.path) },
                          listSeconds: listSeconds, listedTasks: listed)
    }

    /// The samples as a table, the targets as notes (and the verdict: a target missed fails
    /// the workload only through `--strict`, as every target does).
    static func describe(_ report: inout WorkloadReport, _ figures: SoakFigures) {
        report.soak = figures
        let mib = { (bytes: Int64) in String(format: "%.1f", Double(bytes) / 1_048_576) }
        report.tables = [ReportTable(title: "Samples after each batch", columns: [
            "tasks done", "scheduler RSS MiB", "workers RSS MiB", "scheduler fds", "workers fds", "swarm.db MiB", "swarm.db peak MiB",
            "workers' data MiB", "listing s", "tasks listed",
        ], rows: figures.samples.map { s in
            [String(s.done), String(format: "%.1f", Double(s.schedulerRssKiB) / 1024),
             s.workerRssKiB.map { String(format: "%.1f", Double($0) / 1024) }.joined(separator: " / "),
             String(s.schedulerFds), s.workerFds.map(String.init).joined(separator: " / "), mib(s.dbBytes), mib(s.dbPeakBytes ?? s.dbBytes),
             s.workerDiskBytes.map(mib).joined(separator: " / "), String(format: "%.3f", s.listSeconds), String(s.listedTasks)]
        })]
        report.notes.append(String(format: "Restart (SIGTERM, start, listening) with %d tasks kept: %.2f s; it then listed %d tasks.",
                                   figures.maxFinishedTasks, figures.restartSeconds ?? -1, figures.listedAfterRestart ?? -1))
        let lost = report.runs.reduce(0) { $0 + $1.lost + $1.duplicated + $1.failed }
        if lost > 0 {
            report.passed = false
            report.notes.append("\(lost) task(s) failed, lost or duplicated.")
        }
    }
}

/// Sizes on disk, measured without following links.
enum DiskUsage {
    /// A file's allocated bytes (0 when it is not there).
    static func fileBytes(_ path: String) -> Int64 {
        var st = stat()
        return lstat(path, &st) == 0 ? Int64(st.st_blocks) * 512 : 0
    }

    /// Allocated bytes of everything under `path` (itself included), at most `maxEntries`.
    static func allocatedBytes(under path: String, maxEntries: Int = 2_000_000) -> Int64 {
        var total = fileBytes(path)
        guard let walk = FileManager.default.enumerator(atPath: path) else { return total }
        var seen = 0
        while let name = walk.nextObject() as? String, seen < maxEntries {
            total += fileBytes(path + "/" + name)
            seen += 1
        }
        return total
    }
}

/// Polls a value on a thread of its own until stopped, keeping the largest seen: the soak's
/// DB size while a batch runs (the batch's own thread blocks in `wait`).
final class PeakPoller: @unchecked Sendable {
    private let lock = NSLock()
    private var peak: Int64 = 0
    private var running = true
    private let thread: Thread

    init(intervalMs: Int, _ read: @escaping @Sendable () -> Int64) {
        let box = Box()
        thread = Thread {
            guard let poller = box.poller else { return }
            while poller.record(read()) { usleep(useconds_t(intervalMs * 1_000)) }
        }
        box.poller = self
        thread.start()
    }

    /// Adds one reading; false once stopped.
    private func record(_ value: Int64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        peak = max(peak, value)
        return running
    }

    /// Ends the polling (the thread ends within one interval) and returns the largest value.
    func stop() -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        running = false
        return peak
    }

    /// Hands the thread its poller once `init` has one to give.
    private final class Box: @unchecked Sendable { var poller: PeakPoller? }
}
