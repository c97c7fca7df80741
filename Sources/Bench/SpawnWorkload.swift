import Foundation
import SwarmProtocol

/// `spawn`: N trivial tasks (`true`) at one concurrency P: dispatch and spawn latency and
/// throughput, against xargs -P at the same P. The runner makes one per level of
/// `BenchOptions.spawnLevels` (`spawn-p4`, `spawn-p16`, and `spawn` at the top level, which
/// also measures the idle submit-to-start latency), and `spawn-cli`: the same batch through
/// the real CLI (`swarm submit --file`, then `swarm wait`) as child processes.
public struct SpawnWorkload: Workload {
    public let name: String
    /// Slots of the cluster it wants, and xargs' -P; nil: `options.spawnConcurrency`.
    let concurrency: Int?
    let throughCLI: Bool
    let idleProbe: Bool

    /// The top level: `spawn`, with the idle probe.
    public init() { self.init(name: "spawn", concurrency: nil, throughCLI: false, idleProbe: true) }

    init(name: String, concurrency: Int?, throughCLI: Bool, idleProbe: Bool) {
        self.name = name
        self.concurrency = concurrency
        self.throughCLI = throughCLI
        self.idleProbe = idleProbe
    }

    /// The workloads `spawn` stands for with these options, in the order they run (each level's
    /// cluster once: the CLI arm right after the in-process run at its level).
    static func all(_ o: BenchOptions, remote: Bool) -> [SpawnWorkload] {
        // A remote cluster has the slots it has: one level, and no CLI arm (it may need a token file).
        let levels = remote ? [o.spawnConcurrency] : o.spawnLevels
        var list: [SpawnWorkload] = []
        for level in levels {
            let top = level == levels.last
            list.append(SpawnWorkload(name: top ? "spawn" : "spawn-p\(level)", concurrency: level, throughCLI: false, idleProbe: top))
            if !remote && level == o.spawnCLIConcurrency {
                list.append(SpawnWorkload(name: "spawn-cli", concurrency: level, throughCLI: true, idleProbe: false))
            }
        }
        return list
    }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let o = context.options
        let tasks = o.quick ? min(o.spawnTasks, 300) : o.spawnTasks
        let concurrency = min(self.concurrency ?? o.spawnConcurrency, context.cluster.totalSlots)
        let path = throughCLI ? "through the CLI (`swarm submit --file` of a \(tasks)-line file, then `swarm wait` on its ids, "
            + "as two child processes)" : "as one batch by the bench's own client"
        var report = WorkloadReport(name: name, title: "Spawn: \(tasks) trivial tasks at P=\(concurrency)" + (throughCLI ? ", through the CLI" : ""),
            description: "\(tasks) tasks running `true`, submitted \(path) to a cluster with \(concurrency) slots, "
                + "against `xargs -P \(concurrency)` (and GNU parallel) running the same command at the same concurrency on the "
                + "same machine, interleaved. It measures what a coordinator adds to a process spawn: accepting, placing, "
                + "dispatching, supervising and reporting each task."
                + (idleProbe ? " Then single tasks are submitted one at a time to the idle cluster for its submit-to-start latency." : ""))
        report.parameters = ["tasks": "\(tasks)", "concurrency": "\(concurrency)", "command": "true",
                             "repeats": "\(max(1, o.repeats))", "submit": throughCLI ? "cli" : "client"]
        var runSwarm: Interleaved.SwarmRun?
        if throughCLI {
            guard let arm = try CLISubmitArm(context, concurrency: concurrency) else {
                report.notes.append("skipped: the bench does not know the swarm executable or the cluster's address")
                return report
            }
            runSwarm = arm.run
        }
        try Interleaved.measure(context, report: &report, phase: name, command: ["true"], tasks: tasks,
                                concurrency: concurrency, sleepSeconds: nil, warmUp: true, runSwarm: runSwarm)
        if !throughCLI, let directory = context.stateDirectory,
           let floor = DurableFloor.measure(directory: directory, samples: o.quick ? 20 : 100) {
            let xargs = report.baselines.first { $0.tool == "xargs" && $0.available }?.throughput?.median
            report.notes.append(floor.note(concurrency: concurrency, xargs: xargs))
        }
        if throughCLI {
            report.notes.append("Each run's wall time goes from starting `swarm submit --file` to `swarm wait` exiting, so it "
                + "includes both processes' start-up and connection; CPU per task counts the scheduler and workers only.")
        }
        if idleProbe { try Self.idle(context, report: &report) }
        return report
    }

    /// Idle latency: one task at a time, each submitted once the previous one ended.
    static func idle(_ context: BenchContext, report: inout WorkloadReport) throws {
        let probes = context.options.quick ? 20 : 100
        context.progress.begin("spawn: idle submit-to-start, one at a time", total: probes)
        var samples: [Double] = []
        var idle = RunFigures(label: "idle: one task at a time", tasks: probes, concurrency: 1)
        let start = monotonicMicros()
        for i in 0..<probes {
            // Wall clock: compared with the worker's `startedAtUs`, a timestamp of another process.
            let t0 = unixMicros()
            let id = try context.client.submit(TaskSpec(command: ["true"]))
            let info = try context.client.wait([id], timeoutSeconds: 60)[0]
            if info.state == .succeeded { idle.succeeded += 1 } else { idle.failed += 1 }
            if info.attempts > 1 { idle.duplicated += 1 }
            if let s = info.metrics.startedAtUs { samples.append(Double(s - t0) / 1000) }
            context.progress.update(done: i + 1)
        }
        idle.wallSeconds = Double(monotonicMicros() - start) / 1_000_000
        idle.throughput = idle.wallSeconds > 0 ? Double(probes) / idle.wallSeconds : 0
        idle.submitToStart = Percentiles(samples)
        context.progress.end("idle submit-to-start p50 \(String(format: "%.3f", idle.submitToStart?.p50 ?? .nan)) ms")
        report.runs.append(idle)
        if idle.failed > 0 || idle.duplicated > 0 { report.passed = false }
        report.notes.append("Submit-to-start is measured from the moment the bench sends the submit to the moment the "
            + "worker's spawn returned (both clocks are this machine's in a local cluster). The idle row submits one task at "
            + "a time and waits for it, so nothing queues.")
    }
}
