import Foundation
import SwarmProtocol

/// `scale`: concurrency ramped 5, 10, 20, ... 10,000: each step runs that many supervised
/// agents (the synthetic agent through its runtime, or `sleep` without one) at once, and the
/// ramp stops at the first step this machine or the cluster cannot hold.
public struct ScaleWorkload: Workload {
    public let name = "scale"
    public init() {}

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let o = context.options
        let steps = o.quick ? o.scaleSteps.filter { $0 <= 200 } : o.scaleSteps
        let sleep = o.quick ? min(o.scaleSleepSeconds, 2) : o.scaleSleepSeconds
        let runtime = context.agentRuntime
        let what = runtime != nil ? "synthetic agents (runtime `\(runtime!)`, model fast, 3 bursts of output)" : "`sleep` tasks"
        var report = WorkloadReport(name: name, title: "Scale: concurrency ramp up to \(steps.last ?? 0)",
            description: "Each step submits N \(what) of at least \(sleepText(sleep)) s at once (longer for big steps, so that "
                + "they outlive their own start-up and really run together), for N = "
                + steps.map(String.init).joined(separator: ", ")
                + ", and waits for all of them. Throughput is N over the step's wall time; efficiency is the agents' run time "
                + "over the wall time (1.0: every agent started at once and was reported the moment it ended); the peak is the "
                + "most agents alive at the same instant. The ramp stops "
                + "before a step the cluster's slots, this machine's process limit or its free memory cannot hold.")
        report.parameters = ["steps": steps.map(String.init).joined(separator: ","), "minimumSleepSeconds": sleepText(sleep),
                             "task": runtime != nil ? "synthetic agent" : "sleep"]
        // Each step's agents must outlive the time it takes to start all of them, or they were
        // never concurrent: a step runs at least 2.5 x the start-up time the previous step showed.
        var startRate = 200.0
        for n in steps {
            let duration = min(600, max(sleep, (2.5 * Double(n) / startRate).rounded(.up)))
            if let reason = Self.limit(for: n, slots: context.cluster.totalSlots, local: context.cluster.mode == "local") {
                report.notes.append("Stopped before \(n): \(reason).")
                break
            }
            let specs: [TaskSpec] = (0..<n).map { i in
                guard let runtime else { return TaskSpec(command: ["sleep", sleepText(duration)]) }
                var spec = TaskSpec(command: [])
                spec.runtime = runtime
                spec.model = "fast"
                spec.prompt = "scale step \(n), agent \(i): think out loud in two bursts"
                spec.env = SyntheticAgent.environment(seconds: duration, bursts: 2)
                return spec
            }
            context.progress.begin("scale: \(n) at once", total: n)
            let (run, _) = try context.runBatch(specs, label: "concurrency \(n)", concurrency: n, sleepSeconds: duration,
                                                timeoutSeconds: max(120, duration * 4 + Double(n) / 20))
            context.progress.end("\(n) agents of \(sleepText(duration)) s: \(String(format: "%.2f", run.wallSeconds)) s, "
                + "peak \(run.peakConcurrent ?? 0) alive at once, efficiency \(String(format: "%.3f", run.efficiency ?? 0))")
            if let p99 = run.submitToStart?.p99, p99 > 0 { startRate = max(20, Double(n) / (p99 / 1000)) }
            report.runs.append(run)
            if run.lost > 0 || run.duplicated > 0 { report.passed = false }
            if run.failed > 0 || run.lost > 0 {
                report.notes.append("Stopped after \(n): \(run.failed) failed, \(run.lost) lost.")
                break
            }
        }
        report.summary = BatchMeasure.summary(report.runs)
        if let top = report.runs.last {
            report.notes.append("Largest step: \(top.concurrency) supervised \(runtime != nil ? "agents" : "tasks"), "
                + "\(top.peakConcurrent ?? 0) of them alive at the same instant, "
                + "efficiency \(String(format: "%.3f", top.efficiency ?? 0)), worker peak RSS "
                + "\(top.workersPeakRssMiB.map { String(format: "%.0f MiB", $0) } ?? "unknown").")
        }
        return report
    }

    /// Why a step of `n` cannot run here, or nil.
    static func limit(for n: Int, slots: Int, local: Bool) -> String? {
        if n > slots { return "the cluster has \(slots) slots, fewer than \(n) (run with more --slots to go further)" }
        guard local else { return nil }
        // Each agent is a shell plus the `sleep` it waits on; leave room for everything else.
        if let pidMax = readNumber("/proc/sys/kernel/pid_max") {
            let running = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil }.count ?? 0
            if running + 2 * n + 1000 > pidMax {
                return "it needs about \(2 * n) processes and pid_max is \(pidMax) with \(running) in use"
            }
        }
        if let available = memAvailableMiB(), Double(n) * 1.0 + 512 > available {
            return "about \(n) MiB would be needed and only \(Int(available)) MiB is available"
        }
        return nil
    }

    static func readNumber(_ path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func memAvailableMiB() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib / 1024
    }
}
