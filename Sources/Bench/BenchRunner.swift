import Foundation
import SwarmClient
import SwarmProtocol
import SwarmUV

/// Runs `swarm bench`: sets up the cluster (or connects to one), runs the chosen workloads
/// in order, checks the targets, and writes report.json, report.md and report.html.
public struct BenchRunner {
    public struct Config {
        public var options = BenchOptions()
        /// `HOST:PORT` of an existing cluster; nil starts a local one.
        public var scheduler: String?
        public var token: ClusterToken?
        public var localWorkers = 2
        /// Slots per local worker; nil sizes the cluster for each workload (restarting it
        /// between workloads that need different sizes).
        public var slotsPerWorker: Int?
        /// The local scheduler's state is durable (the default, as `swarm scheduler` runs);
        /// false: `--in-memory`.
        public var durable = true
        /// The local scheduler's `scheduler.prefetch` (assignments sent ahead per worker); nil:
        /// its default.
        public var prefetch: Int?
        /// The `swarm` executable the local cluster runs.
        public var executable = "/proc/self/exe"
        public var commandLine = "swarm bench"
        public init() {}
    }

    public struct Outcome {
        public var report: BenchReport
        public var directory: String
        public var files: [String]
    }

    let config: Config
    let progress: BenchProgress

    public init(_ config: Config, progress: BenchProgress) {
        self.config = config
        self.progress = progress
    }

    public func run() throws -> Outcome {
        let o = config.options
        let started = Date()
        let startedMonoUs = monotonicMicros()
        let directory = try Self.outputDirectory(o.outputDirectory, at: started)
        let agentScript = try SyntheticAgent.write(to: directory)
        let scratch = directory + "/scratch"
        var report = BenchReport(startedAt: Self.iso(started), commandLine: config.commandLine,
                                 machine: MachineProbe.current(), cluster: ClusterDescription(
                                    mode: config.scheduler == nil ? "local" : "remote", scheduler: config.scheduler ?? "",
                                    workers: 0, totalSlots: 0, durable: config.scheduler == nil ? config.durable : nil),
                                 repeats: max(1, o.repeats))
        let workloads = Self.workloads(o, remote: config.scheduler != nil)
        if let scheduler = config.scheduler {
            // Fail fast and clearly when the cluster is not there, before any report exists.
            do {
                let client = try SwarmClient(address: scheduler, token: config.token, name: "bench")
                let nodes = try client.listNodes().filter { $0.connected && $0.state == .ready }
                if nodes.isEmpty { throw BenchError.cluster("the scheduler at \(scheduler) has no ready worker") }
            } catch let error as BenchError {
                throw error
            } catch {
                throw BenchError.cluster("cannot use the scheduler at \(scheduler): \(error)")
            }
        }
        var local: LocalProcessCluster?
        defer { local?.stop() }
        var processes: [ProcessFigures] = []
        for workload in workloads {
            var section: WorkloadReport
            do {
                let session = try prepareSession(for: workload, slotsWanted: Self.slots(for: workload.name, o),
                                                 agentScript: agentScript, scratch: scratch, local: &local,
                                                 processes: &processes, report: &report)
                section = try workload.run(session)
            } catch {
                section = WorkloadReport(name: workload.name, title: workload.name, description: "")
                section.passed = false
                section.notes.append("The workload could not run to its end: \(error)")
                progress.end("\(workload.name): \(error)")
            }
            report.workloads.append(section)
        }
        if config.scheduler != nil, let client = try? SwarmClient(address: config.scheduler!, token: config.token, name: "bench") {
            processes += BenchSession.processFigures(client: client)
        }
        if let cluster = local {
            processes += Self.labelled(cluster)
            cluster.stop()
            local = nil
        }
        report.processes = processes
        Self.tally(&report)
        report.targets = TargetChecks.evaluate(report)
        report.limitations = Limitations.list(report, config: config)
        let finished = Date()
        report.finishedAt = Self.iso(finished)
        report.durationSeconds = Double(monotonicMicros() - startedMonoUs) / 1_000_000
        let files = try ReportWriter.write(report, to: directory)
        return Outcome(report: report, directory: directory, files: files)
    }

    /// Lost and duplicated tasks over every run (baselines excluded), and the verdict: any of
    /// them, or a workload failing its own checks, fails the bench.
    static func tally(_ report: inout BenchReport) {
        report.lostTasks = report.workloads.flatMap(\.runs).reduce(0) { $0 + $1.lost }
        report.duplicatedTasks = report.workloads.flatMap(\.runs).reduce(0) { $0 + $1.duplicated }
        report.passed = report.lostTasks == 0 && report.duplicatedTasks == 0 && report.workloads.allSatisfy(\.passed)
    }

    /// A local cluster's process figures, named with the cluster's size ("worker-1 (2x32)"):
    /// the bench may run several clusters one after the other.
    static func labelled(_ cluster: LocalProcessCluster) -> [ProcessFigures] {
        cluster.usage().map { figures in
            var named = figures
            named.name += " (\(cluster.options.workers)x\(cluster.options.slotsPerWorker))"
            return named
        }
    }

    /// The workloads `options.workloads` names, in their canonical order (`spawn` stands for
    /// one per level, see `SpawnWorkload.all`).
    static func workloads(_ o: BenchOptions, remote: Bool = false) -> [Workload] {
        var list: [Workload] = []
        for name in BenchOptions.allWorkloads + BenchOptions.namedOnlyWorkloads where o.workloads.contains(name) {
            switch name {
            case "spawn": list += SpawnWorkload.all(o, remote: remote)
            case "dashboard": list.append(DashboardWorkload())
            case "parallel":
                list.append(ParallelWorkload(options: o, wide: false))
                if o.parallelWideTasks > 0 { list.append(ParallelWorkload(options: o, wide: true)) }
            case "agent": list.append(AgentWorkload())
            case "isolation": list.append(IsolationWorkload())
            case "models": list.append(ModelsWorkload())
            case "scale": list.append(ScaleWorkload())
            case "workspace": list.append(WorkspaceWorkload())
            case "dag": list.append(DagWorkload())
            case "soak": list.append(SoakWorkload())
            case "tls": list.append(TLSWorkload())
            default: break
            }
        }
        return list
    }

    /// Total slots a local cluster sized for `workload` gets.
    static func slots(for workload: String, _ o: BenchOptions) -> Int {
        let q = o.quick
        switch workload {
        // The spawn cluster, as it is: no restart between the two.
        case "spawn", "dashboard", "tls": return o.spawnConcurrency
        case "spawn-cli": return o.spawnCLIConcurrency
        case let name where name.hasPrefix("spawn-p"): return Int(name.dropFirst("spawn-p".count)) ?? o.spawnConcurrency
        case "parallel": return q ? min(o.parallelTasks, 20) : o.parallelTasks
        case "parallel-wide": return q ? min(o.parallelWideTasks, 200) : o.parallelWideTasks
        case "agent", "models": return max(8, min(q ? 20 : o.agentTasks, 256))
        case "isolation": return q ? min(o.isolationTasks, 10) : o.isolationTasks
        case "scale": return (q ? o.scaleSteps.filter { $0 <= 200 } : o.scaleSteps).max() ?? 10
        // The concurrent worktrees all at once.
        case "workspace": return max(2, WorkspaceWorkload.Sizes(o).worktreeTasks)
        // A whole layer at once.
        case "dag": return DagWorkload.shape(o).width
        // 2 workers of 16 slots, as the soak.
        case "soak": return 32
        default: return 16
        }
    }

    private func prepareSession(for workload: Workload, slotsWanted: Int, agentScript: String, scratch: String,
                                local: inout LocalProcessCluster?, processes: inout [ProcessFigures],
                                report: inout BenchReport) throws -> BenchSession {
        let o = config.options
        let modelLimits = ["deep": o.modelLimit]
        if let scheduler = config.scheduler {
            let client = try SwarmClient(address: scheduler, token: config.token, name: "bench")
            let nodes = try client.listNodes().filter { $0.connected && $0.state == .ready }
            guard !nodes.isEmpty else { throw BenchError.cluster("no ready worker at \(scheduler)") }
            report.cluster.workers = nodes.count
            report.cluster.totalSlots = nodes.reduce(0) { $0 + $1.slots }
            let healthy = nodes.contains { $0.runtimes.contains { $0.name == SyntheticAgent.runtimeName && $0.healthy } }
            return BenchSession(options: o, client: client, cluster: report.cluster, progress: progress,
                                agentScript: agentScript, agentRuntime: healthy ? SyntheticAgent.runtimeName : nil,
                                modelLimits: [:], local: nil, scratchRoot: scratch, address: scheduler, token: config.token)
        }
        // A worker process can supervise only as many tasks as its descriptors allow (each
        // holds a few); auto-sized clusters add workers rather than fail spawns with EMFILE.
        var workers = max(1, config.localWorkers)
        if config.slotsPerWorker == nil {
            let capacity = ResourceLimits.taskCapacity(openFileLimit: ResourceLimits.openFilesHardLimit) * 9 / 10
            workers = max(workers, (slotsWanted + capacity - 1) / capacity)
        }
        let perWorker = config.slotsPerWorker ?? max(1, (slotsWanted + workers - 1) / workers)
        // Workloads whose concurrency is compared with a baseline get exactly their size; the
        // others run on any cluster big enough.
        let flexible = ["agent", "isolation", "models"].contains(workload.name)
        // The soak's cluster is its own (durable, small retention), and no other's.
        let fits = local.map {
            ($0.options.workerRetention != nil) == (workload.name == "soak") && $0.options.workers == workers
                && (flexible ? $0.options.slotsPerWorker >= perWorker : $0.options.slotsPerWorker == perWorker)
        } ?? false
        if !fits {
            if let old = local {
                processes += Self.labelled(old)
                old.stop()
                local = nil
            }
            var options = LocalProcessCluster.Options(executable: config.executable,
                                                      directory: (scratch as NSString).deletingLastPathComponent + "/cluster-\(workers)x\(perWorker)")
            options.workers = workers
            options.slotsPerWorker = perWorker
            options.durable = config.durable
            var scheduler: [String: Any] = ["modelLimits": modelLimits]
            if let prefetch = config.prefetch { scheduler["prefetch"] = prefetch }
            if workload.name == "soak" {
                // Durable, with retention small enough to bind (issue 14 item 6).
                let limits = SoakWorkload.clusterRetention(SoakFigures.shape(tasks: SoakWorkload.tasks(o)))
                options.durable = true
                scheduler["retention"] = limits.scheduler
                options.workerRetention = limits.worker
            }
            options.clusterJSON = [
                "runtimes": try Self.runtimesJSON(agentScript: agentScript),
                "scheduler": scheduler,
                "allowCommands": true,
            ]
            progress.begin("starting a local cluster: \(workers) workers x \(perWorker) slots", total: 1)
            let cluster = LocalProcessCluster(options)
            local = cluster
            try cluster.start(runtime: SyntheticAgent.runtimeName)
            progress.end("local cluster at \(cluster.address): \(workers) workers x \(perWorker) slots")
        }
        let cluster = local!
        let size = cluster.options.slotsPerWorker
        report.cluster.scheduler = cluster.address
        report.cluster.workers = max(report.cluster.workers, workers)
        report.cluster.totalSlots = max(report.cluster.totalSlots, workers * size)
        var description = report.cluster
        description.totalSlots = cluster.options.workers * size
        description.workers = cluster.options.workers
        let client = try SwarmClient(address: cluster.address, token: nil, name: "bench")
        return BenchSession(options: o, client: client, cluster: description, progress: progress,
                            agentScript: agentScript, agentRuntime: SyntheticAgent.runtimeName,
                            modelLimits: modelLimits, local: cluster, scratchRoot: scratch, address: cluster.address, token: nil)
    }

    /// The synthetic agent's runtime as cluster.json's `runtimes` object.
    static func runtimesJSON(agentScript: String) throws -> [String: Any] {
        let text = "{" + SyntheticAgent.clusterJSONFragment(scriptPath: agentScript) + "}"
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw BenchError.failed("the synthetic agent's runtime is not a JSON object")
        }
        return object
    }

    static func outputDirectory(_ root: String, at date: Date) throws -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let absoluteRoot = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        let path = absoluteRoot + "/" + formatter.string(from: date)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let latest = absoluteRoot + "/latest"
        try? FileManager.default.removeItem(atPath: latest)
        try? FileManager.default.createSymbolicLink(atPath: latest, withDestinationPath: formatter.string(from: date))
        return path
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
