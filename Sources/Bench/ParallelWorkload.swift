import Foundation
import SwarmProtocol

/// `parallel`: N tasks sleeping T seconds, all at once: speedup and efficiency against
/// xargs -P. Two shapes: few long tasks (100 x 10 s) and many short ones (1,000 x 2 s).
public struct ParallelWorkload: Workload {
    public let name: String
    let tasks: Int
    let sleepSeconds: Double

    /// `wide` selects the second shape (`parallel-wide` in the report).
    public init(options: BenchOptions, wide: Bool) {
        name = wide ? "parallel-wide" : "parallel"
        let quick = options.quick
        if wide {
            tasks = quick ? min(options.parallelWideTasks, 200) : options.parallelWideTasks
            sleepSeconds = quick ? min(options.parallelWideSleepSeconds, 1) : options.parallelWideSleepSeconds
        } else {
            tasks = quick ? min(options.parallelTasks, 20) : options.parallelTasks
            sleepSeconds = quick ? min(options.parallelSleepSeconds, 1) : options.parallelSleepSeconds
        }
    }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let concurrency = min(tasks, context.cluster.totalSlots)
        let sleep = sleepText(sleepSeconds)
        var report = WorkloadReport(name: name, title: "Parallel: \(tasks) x sleep \(sleep) s",
            description: "\(tasks) tasks each sleeping \(sleep) s, submitted at once with \(concurrency) slots. "
                + "Efficiency is the ideal wall time (\(sleep) s per wave of \(concurrency)) over the measured one, from "
                + "the bench's submit to the last task's end as the bench saw it; speedup is the work done (tasks x \(sleep) s) "
                + "over the wall time. xargs -P \(concurrency) runs the same sleeps for comparison.")
        report.parameters = ["tasks": "\(tasks)", "sleepSeconds": sleep, "concurrency": "\(concurrency)",
                             "repeats": "\(max(1, context.options.repeats))"]
        guard tasks > 0 else {
            report.notes.append("skipped: no tasks")
            return report
        }
        // A warm-up round costs one more sleep: worth it for the short shape only.
        try Interleaved.measure(context, report: &report, phase: name, command: ["sleep", sleep], tasks: tasks,
                                concurrency: concurrency, sleepSeconds: sleepSeconds, warmUp: sleepSeconds <= 3)
        if concurrency < tasks {
            report.notes.append("The cluster has \(context.cluster.totalSlots) slots, fewer than the \(tasks) tasks: they ran in waves.")
        }
        return report
    }
}

func sleepText(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%g", seconds)
}
