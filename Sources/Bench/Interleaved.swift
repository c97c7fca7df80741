import Foundation
import SwarmProtocol

/// Runs a batch through swarm and the same commands through xargs (and GNU parallel when
/// installed), interleaved, `repeats` times; fills runs, summary and baselines.
enum Interleaved {
    /// How one swarm run is made: `specs`, a label, a timeout in seconds -> its figures.
    typealias SwarmRun = (_ specs: [TaskSpec], _ label: String, _ timeoutSeconds: Double) throws -> RunFigures

    /// `runSwarm` replaces the bench client's `submitBatch` + `wait` (the CLI arm); nil uses them.
    static func measure(_ context: BenchContext, report: inout WorkloadReport, phase: String,
                        command: [String], tasks: Int, concurrency: Int, sleepSeconds: Double?,
                        warmUp: Bool = false, runSwarm: SwarmRun? = nil) throws {
        let repeats = max(1, context.options.repeats)
        let tools = Baseline.Tool.allCases
        var baselines = tools.map { tool in
            let reason = Baseline.unavailableReason(tool)
            var baseline = BaselineReport(tool: tool.rawValue, command: Baseline.pipeline(tool, command: command, tasks: tasks, concurrency: concurrency),
                                          available: reason == nil)
            baseline.problem = reason
            return baseline
        }
        let timeout = max(120, (sleepSeconds ?? 0) * Double(tasks) / Double(max(1, concurrency)) * 5 + Double(tasks) / 50)
        let swarm: SwarmRun = runSwarm ?? { specs, label, timeout in
            try context.runBatch(specs, label: label, concurrency: concurrency, sleepSeconds: sleepSeconds, timeoutSeconds: timeout).0
        }
        if warmUp && !context.options.quick {
            // One unmeasured round first (caches, heaps, directories of a fresh cluster), as
            // hyperfine does; its tasks are still counted for lost and duplicated ones.
            context.progress.begin("\(phase): warm-up", total: tasks)
            let run = try swarm((0..<tasks).map { _ in TaskSpec(command: command) }, "warm-up", timeout)
            context.progress.end("warm-up: \(run.tasks) tasks in \(String(format: "%.2f", run.wallSeconds)) s (not counted)")
            report.runs.append(run)
            if let tool = tools.first, baselines[0].available {
                _ = try Baseline.run(tool, command: command, tasks: tasks, concurrency: concurrency,
                                     sleepSeconds: sleepSeconds, label: "warm-up")
            }
        }
        for r in 1...repeats {
            context.progress.begin("\(phase): swarm run \(r)/\(repeats)", total: tasks)
            let run = try swarm((0..<tasks).map { _ in TaskSpec(command: command) }, "run \(r)", timeout)
            context.progress.end("\(run.tasks) tasks in \(String(format: "%.2f", run.wallSeconds)) s: \(Int(run.throughput))/s")
            report.runs.append(run)
            for (i, tool) in tools.enumerated() where baselines[i].available {
                context.progress.begin("\(phase): \(tool.rawValue) run \(r)/\(repeats)", total: 1)
                let figures = try Baseline.run(tool, command: command, tasks: tasks, concurrency: concurrency,
                                               sleepSeconds: sleepSeconds, label: "run \(r)")
                baselines[i].runs.append(figures)
                context.progress.end(figures.failed > 0 ? "\(tool.rawValue): the pipeline exited non-zero (not counted)"
                    : "\(tool.rawValue): \(String(format: "%.2f", figures.wallSeconds)) s: \(Int(figures.throughput))/s")
            }
        }
        let measured = report.runs.filter { !$0.label.hasPrefix("idle") && $0.label != "warm-up" }
        report.summary = BatchMeasure.summary(measured)
        for i in baselines.indices { Baseline.finish(&baselines[i], swarm: report.summary, swarmRuns: measured) }
        report.baselines = baselines
        report.passed = report.runs.allSatisfy { $0.lost == 0 && $0.duplicated == 0 && $0.failed == 0 }
    }
}
