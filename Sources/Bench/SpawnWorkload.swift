import Foundation
import SwarmProtocol

/// Runs a batch through swarm and the same commands through xargs (and GNU parallel when
/// installed), interleaved, `repeats` times; fills runs, summary and baselines.
enum Interleaved {
    static func measure(_ context: BenchContext, report: inout WorkloadReport, phase: String,
                        command: [String], tasks: Int, concurrency: Int, sleepSeconds: Double?,
                        warmUp: Bool = false) throws {
        let repeats = max(1, context.options.repeats)
        let tools = Baseline.Tool.allCases
        var baselines = tools.map { tool in
            BaselineReport(tool: tool.rawValue, command: Baseline.pipeline(tool, command: command, tasks: tasks, concurrency: concurrency),
                           available: Baseline.path(of: tool) != nil)
        }
        let timeout = max(120, (sleepSeconds ?? 0) * Double(tasks) / Double(max(1, concurrency)) * 5 + Double(tasks) / 50)
        if warmUp && !context.options.quick {
            // One unmeasured round first (caches, heaps, directories of a fresh cluster), as
            // hyperfine does; its tasks are still counted for lost and duplicated ones.
            context.progress.begin("\(phase): warm-up", total: tasks)
            let (run, _) = try context.runBatch((0..<tasks).map { _ in TaskSpec(command: command) }, label: "warm-up",
                                                concurrency: concurrency, sleepSeconds: sleepSeconds, timeoutSeconds: timeout)
            context.progress.end("warm-up: \(run.tasks) tasks in \(String(format: "%.2f", run.wallSeconds)) s (not counted)")
            report.runs.append(run)
            if let tool = tools.first, baselines[0].available {
                _ = try Baseline.run(tool, command: command, tasks: tasks, concurrency: concurrency,
                                     sleepSeconds: sleepSeconds, label: "warm-up")
            }
        }
        for r in 1...repeats {
            context.progress.begin("\(phase): swarm run \(r)/\(repeats)", total: tasks)
            let specs = (0..<tasks).map { _ in TaskSpec(command: command) }
            let (run, _) = try context.runBatch(specs, label: "run \(r)", concurrency: concurrency,
                                                sleepSeconds: sleepSeconds, timeoutSeconds: timeout)
            context.progress.end("\(run.tasks) tasks in \(String(format: "%.2f", run.wallSeconds)) s: \(Int(run.throughput))/s")
            report.runs.append(run)
            for (i, tool) in tools.enumerated() where baselines[i].available {
                // GNU parallel starts ~300 jobs/s: cap its share of a big batch's time.
                context.progress.begin("\(phase): \(tool.rawValue) run \(r)/\(repeats)", total: 1)
                let figures = try Baseline.run(tool, command: command, tasks: tasks, concurrency: concurrency,
                                               sleepSeconds: sleepSeconds, label: "run \(r)")
                baselines[i].runs.append(figures)
                context.progress.end("\(tool.rawValue): \(String(format: "%.2f", figures.wallSeconds)) s: \(Int(figures.throughput))/s")
            }
        }
        report.summary = BatchMeasure.summary(report.runs.filter { !$0.label.hasPrefix("idle") && $0.label != "warm-up" })
        for i in baselines.indices { Baseline.finish(&baselines[i], swarm: report.summary) }
        report.baselines = baselines
        report.passed = report.runs.allSatisfy { $0.lost == 0 && $0.duplicated == 0 && $0.failed == 0 }
    }
}

/// `spawn`: N trivial tasks (`true`): dispatch and spawn latency and throughput, against
/// xargs -P at the same concurrency; then the submit-to-start latency of an idle cluster.
public struct SpawnWorkload: Workload {
    public let name = "spawn"
    public init() {}

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let o = context.options
        let tasks = o.quick ? min(o.spawnTasks, 300) : o.spawnTasks
        let concurrency = min(o.spawnConcurrency, context.cluster.totalSlots)
        var report = WorkloadReport(name: name, title: "Spawn: \(tasks) trivial tasks",
            description: "\(tasks) tasks running `true`, submitted as one batch to a cluster with \(concurrency) slots, "
                + "against `xargs -P \(concurrency)` (and GNU parallel) running the same command at the same concurrency on the "
                + "same machine, interleaved. It measures what a coordinator adds to a process spawn: accepting, placing, "
                + "dispatching, supervising and reporting each task. Then single tasks are submitted one at a time to the idle "
                + "cluster for its submit-to-start latency.")
        report.parameters = ["tasks": "\(tasks)", "concurrency": "\(concurrency)", "command": "true",
                             "repeats": "\(max(1, o.repeats))"]
        try Interleaved.measure(context, report: &report, phase: "spawn", command: ["true"], tasks: tasks,
                                concurrency: concurrency, sleepSeconds: nil, warmUp: true)

        // Idle latency: one task at a time, each submitted once the previous one ended.
        let probes = o.quick ? 20 : 100
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
        return report
    }
}
