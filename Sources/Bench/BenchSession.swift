import Foundation
import Synchronization
import SwarmClient
import SwarmProtocol

/// The `BenchContext` the runner hands to workloads: one client on one cluster (local
/// processes or a remote scheduler), and the measuring `runBatch`.
final class BenchSession: BenchContext {
    let options: BenchOptions
    let client: SwarmClient
    let cluster: ClusterDescription
    let progress: BenchProgress
    let agentScript: String
    let agentRuntime: String?
    let modelLimits: [String: Int]
    /// Local clusters: read the processes from /proc. Remote: nil, figures come from stats.
    let local: LocalProcessCluster?
    private let scratchRoot: String
    /// Where `client` is connected, for the progress poller's own connection.
    let address: String
    let token: ClusterToken?

    init(options: BenchOptions, client: SwarmClient, cluster: ClusterDescription, progress: BenchProgress,
         agentScript: String, agentRuntime: String?, modelLimits: [String: Int], local: LocalProcessCluster?,
         scratchRoot: String, address: String, token: ClusterToken?) {
        self.address = address
        self.token = token
        self.options = options
        self.client = client
        self.cluster = cluster
        self.progress = progress
        self.agentScript = agentScript
        self.agentRuntime = agentRuntime
        self.modelLimits = modelLimits
        self.local = local
        self.scratchRoot = scratchRoot
    }

    /// A local cluster's executable (what started its processes); nil for a remote one.
    var swarmExecutable: String? { local?.options.executable }
    var schedulerAddress: String? { address }
    var stateDirectory: String? {
        guard let local, local.options.durable else { return nil }
        return local.schedulerStateDirectory
    }

    /// The same session on another local cluster (the `tls` workload's twin).
    func twin(client: SwarmClient, local: LocalProcessCluster, token: ClusterToken?) -> BenchSession {
        BenchSession(options: options, client: client, cluster: cluster, progress: progress, agentScript: agentScript,
                     agentRuntime: nil, modelLimits: [:], local: local, scratchRoot: scratchRoot + "-twin",
                     address: local.address, token: token)
    }

    func scratchDirectory(_ workload: String) throws -> String {
        let path = (scratchRoot as NSString).appendingPathComponent(workload)
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        try? FileManager.default.removeItem(atPath: absolute)
        try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true)
        return absolute
    }

    /// Scheduler and workers' process figures now (local: /proc; remote: `swarm stats`).
    func processFigures() -> [ProcessFigures] {
        if let local { return local.usage() }
        return Self.processFigures(client: client)
    }

    /// The figures `swarm stats` reports: the scheduler's now, each worker's last heartbeat.
    static func processFigures(client: SwarmClient) -> [ProcessFigures] {
        guard let stats = try? client.stats() else { return [] }
        var figures: [ProcessFigures] = []
        func add(_ name: String, _ role: String, _ u: ProcessUsage) {
            figures.append(ProcessFigures(name: name, role: role, pid: u.pid, cpuUserMs: Double(u.cpuUserMs),
                                          cpuSystemMs: Double(u.cpuSystemMs), peakRssMiB: Double(u.maxRssKiB) / 1024))
        }
        if let s = stats.scheduler { add("scheduler", "scheduler", s) }
        for (name, block) in stats.workers.sorted(by: { $0.key < $1.key }) {
            if let u = block.process { add(name, "worker", u) }
        }
        return figures
    }

    /// The tasks' final infos, or nil when the wait timed out. Other failures propagate as a
    /// timeout too: the batch's remaining tasks are then read one by one.
    private func waitOrNil(_ ids: [String], timeoutSeconds: Double) -> [TaskInfo]? {
        try? client.wait(ids, timeoutSeconds: timeoutSeconds)
    }

    func runBatch(_ specs: [TaskSpec], label: String, concurrency: Int, sleepSeconds: Double?,
                  timeoutSeconds: Double) throws -> (RunFigures, [TaskInfo]) {
        let before = processFigures()
        // Wall clock: set beside the runs' `startedAtUs` (another process's timestamps); the
        // batch's duration is measured on the monotonic clock.
        let submitUs = unixMicros()
        let startMonoUs = monotonicMicros()
        let ids: [String]
        do { ids = try client.submitBatch(specs).ids } catch {
            throw BenchError.failed("\(label): the scheduler refused the batch: \(error)")
        }
        // One wait for the whole batch, so the wall time ends when the bench learns of the
        // last task's end (a wait per chunk would add round trips after it). Progress comes
        // from a second connection polling the cluster's completed count meanwhile.
        let poller = ProgressPoller(address: address, token: token, total: ids.count, progress: progress)
        var infos: [TaskInfo]
        if let waited = waitOrNil(ids, timeoutSeconds: timeoutSeconds) {
            infos = waited
        } else {
            infos = ids.map { id in (try? client.status(id)) ?? TaskInfo(id: id, state: .queued, command: [], submittedAt: 0) }
        }
        let endMonoUs = monotonicMicros()
        poller.stop()
        progress.update(done: infos.filter { $0.state.isTerminal }.count)
        let timedOut = infos.contains { !$0.state.isTerminal }
        let wallSeconds = Double(endMonoUs - startMonoUs) / 1_000_000
        let after = processFigures()
        var figures = BatchMeasure.figures(infos: infos, ids: ids, label: label, concurrency: concurrency,
                                           submitUs: submitUs, wallSeconds: wallSeconds, sleepSeconds: sleepSeconds)
        BatchMeasure.addUsage(&figures, before: before, after: after)
        if timedOut {
            _ = try? ids.filter { id in infos.first { $0.id == id }.map { !$0.state.isTerminal } ?? true }
                .map { try client.cancel($0) }
        }
        return (figures, infos)
    }
}

/// Turns a batch's task infos into run figures. Pure: the tests feed it fabricated infos.
public enum BatchMeasure {
    public static func figures(infos: [TaskInfo], ids: [String], label: String, concurrency: Int,
                               submitUs: Int64, wallSeconds: Double, sleepSeconds: Double?) -> RunFigures {
        var run = RunFigures(label: label, tasks: ids.count, concurrency: concurrency)
        var seen: [String: Int] = [:]
        for info in infos { seen[info.id, default: 0] += 1 }
        var toStart: [Double] = [], toPlaced: [Double] = [], toOutput: [Double] = [], runTimes: [Double] = []
        for info in infos where seen[info.id] != nil {
            if info.state == .succeeded { run.succeeded += 1 } else if info.state.isTerminal { run.failed += 1 }
            if !info.state.isTerminal || (info.state == .succeeded && info.startedAt == nil) { run.lost += 1 }
            if info.attempts > 1 { run.duplicated += 1 }
            let m = info.metrics
            if let s = m.startedAtUs { toStart.append(Double(s - submitUs) / 1000) }
            if let p = info.placedAt { toPlaced.append(Double(p - info.submittedAt)) }
            if let s = m.startedAtUs, let f = m.firstOutputAtUs { toOutput.append(Double(f - s) / 1000) }
            if let s = m.startedAtUs, let e = m.exitedAtUs { runTimes.append(Double(e - s) / 1000) }
        }
        // Ids the scheduler never answered for are lost; ids answered twice are duplicated.
        run.lost += ids.filter { seen[$0] == nil }.count
        run.duplicated += seen.values.filter { $0 > 1 }.count
        run.wallSeconds = wallSeconds
        run.throughput = wallSeconds > 0 ? Double(ids.count) / wallSeconds : 0
        if let sleep = sleepSeconds, wallSeconds > 0, concurrency > 0 {
            let waves = (Double(ids.count) / Double(concurrency)).rounded(.up)
            run.efficiency = waves * sleep / wallSeconds
            run.speedup = Double(ids.count) * sleep / wallSeconds
        }
        let intervals = infos.compactMap { AgentFigures.interval($0) }
        run.peakConcurrent = intervals.isEmpty ? nil : AgentFigures.peakConcurrency(intervals)
        run.submitToStart = Percentiles(toStart)
        run.submitToPlaced = Percentiles(toPlaced)
        run.startToFirstOutput = Percentiles(toOutput)
        run.runTime = Percentiles(runTimes)
        return run
    }

    /// CPU spent by scheduler and workers between the two samples, and peak RSS so far.
    public static func addUsage(_ run: inout RunFigures, before: [ProcessFigures], after: [ProcessFigures]) {
        guard !after.isEmpty else { return }
        func cpu(_ list: [ProcessFigures], _ role: String) -> Double {
            list.filter { $0.role == role }.reduce(0) { $0 + $1.cpuUserMs + $1.cpuSystemMs }
        }
        run.schedulerCpuMs = max(0, cpu(after, "scheduler") - cpu(before, "scheduler"))
        run.workersCpuMs = max(0, cpu(after, "worker") - cpu(before, "worker"))
        if run.tasks > 0 { run.overheadCpuUsPerTask = (run.schedulerCpuMs! + run.workersCpuMs!) * 1000 / Double(run.tasks) }
        run.schedulerPeakRssMiB = after.filter { $0.role == "scheduler" }.map(\.peakRssMiB).max()
        run.workersPeakRssMiB = after.filter { $0.role == "worker" }.map(\.peakRssMiB).max()
    }

    /// Medians with min and max over runs.
    public static func summary(_ runs: [RunFigures]) -> WorkloadSummary {
        var s = WorkloadSummary()
        s.throughput = Spread(runs.map(\.throughput))
        s.wallSeconds = Spread(runs.map(\.wallSeconds))
        s.efficiency = Spread(runs.compactMap(\.efficiency))
        s.speedup = Spread(runs.compactMap(\.speedup))
        s.submitToStartP50 = Spread(runs.compactMap { $0.submitToStart?.p50 })
        s.submitToStartP99 = Spread(runs.compactMap { $0.submitToStart?.p99 })
        s.startToFirstOutputP50 = Spread(runs.compactMap { $0.startToFirstOutput?.p50 })
        s.startToFirstOutputP99 = Spread(runs.compactMap { $0.startToFirstOutput?.p99 })
        s.overheadCpuUsPerTask = Spread(runs.compactMap(\.overheadCpuUsPerTask))
        return s
    }
}

/// Polls the cluster's completed-task count on its own connection and thread while the bench
/// blocks in one `wait`, and moves the progress bar. `stop` joins it; only it touches the
/// progress between construction and `stop`.
final class ProgressPoller: @unchecked Sendable {
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }
    private let stopped = Flag()
    private let finished = DispatchSemaphore(value: 0)

    init(address: String, token: ClusterToken?, total: Int, progress: BenchProgress) {
        nonisolated(unsafe) let progress = progress
        let thread = Thread { [stopped, finished] in
            defer { finished.signal() }
            guard let client = try? SwarmClient(address: address, token: token, name: "bench-progress"),
                  let base = try? client.stats().cluster.totals.completed else { return }
            while !stopped.value.load(ordering: .relaxed) {
                usleep(250_000)
                if stopped.value.load(ordering: .relaxed) { break }
                guard let now = try? client.stats().cluster.totals.completed else { return }
                progress.update(done: min(total, max(0, now - base)))
            }
        }
        thread.start()
    }

    func stop() {
        stopped.value.store(true, ordering: .relaxed)
        finished.wait()
    }
}
