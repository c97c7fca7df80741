import Foundation
import SwarmClient
import SwarmProtocol

/// The README's main job for now: a visible workload, then a throughput batch, through a
/// running cluster. (The bench issue turns this into the full stress test.)
public enum Demo {
    public struct Report: Sendable {
        public var batch = 0
        public var succeeded = 0
        public var failed = 0
        public var ranMoreThanOnce = 0
        public var wallSeconds = 0.0
        public var tasksPerSecond: Double { wallSeconds > 0 ? Double(batch) / wallSeconds : 0 }
        public var perNode: [String: Int] = [:]
        public var submitToStartMs: [Int64] = []
    }

    /// Runs both phases against the scheduler at `address`; `say` prints a line. Returns the
    /// batch report; the demo passed when `failed == 0` and `ranMoreThanOnce == 0`.
    public static func run(address: String, token: ClusterToken?, visibleTasks: Int, batch: Int,
                           say: (String) -> Void) throws -> Report {
        let client = try SwarmClient(address: address, token: token, name: "demo")
        let nodes = try waitForWorkers(client)
        say("cluster at \(address): \(nodes.count) workers, \(nodes.reduce(0) { $0 + $1.slots }) slots")

        if visibleTasks > 0 {
            say("\n== \(visibleTasks) visible tasks (each prints a line and sleeps 0.3 s) ==")
            let specs = (1...visibleTasks).map { n in
                TaskSpec(command: ["sh", "-c", "echo \"$SWARM_TASK_ID on $SWARM_NODE: $1 squared is $(( $1 * $1 ))\"; sleep 0.3", "sh", String(n)])
            }
            let ids = try client.submitMany(specs).map { try $0.get() }
            for id in ids {
                let info = try client.wait([id], timeoutSeconds: 120)[0]
                let ran = (info.finishedAt ?? 0) &- (info.startedAt ?? 0)
                let line = info.output?.split(separator: "\n").last.map(String.init) ?? ""
                say("  \(info.state == .succeeded ? "ok  " : "FAIL") \(info.node ?? "-")  \(Output.ms(ran))  \(line)")
            }
        }

        var report = Report()
        guard batch > 0 else { return report }
        say("\n== throughput: \(batch) trivial tasks (`true`) submitted at once ==")
        report.batch = batch
        // Elapsed time, on the monotonic clock (a step of the wall clock is not throughput).
        let start = monotonicMicros()
        let ids = try client.submitMany((0..<batch).map { _ in TaskSpec(command: ["true"]) }).map { try $0.get() }
        let infos = try client.wait(ids, timeoutSeconds: 600)
        report.wallSeconds = Double(monotonicMicros() - start) / 1_000_000
        for info in infos {
            if info.state == .succeeded { report.succeeded += 1 } else { report.failed += 1 }
            if info.attempts != 1 { report.ranMoreThanOnce += 1 }
            report.perNode[info.node ?? "-", default: 0] += 1
            if let started = info.startedAt { report.submitToStartMs.append(started &- info.submittedAt) }
        }
        report.submitToStartMs.sort()
        say(summary(report))
        return report
    }

    static func waitForWorkers(_ client: SwarmClient) throws -> [NodeInfo] {
        for _ in 0..<100 {
            let nodes = try client.listNodes().filter { $0.connected && $0.state == .ready }
            if !nodes.isEmpty { return nodes }
            usleep(50_000)
        }
        throw ClientError.timeout("waiting for a worker to register")
    }

    public static func summary(_ r: Report) -> String {
        func pct(_ p: Double) -> String {
            guard !r.submitToStartMs.isEmpty else { return "-" }
            return "\(r.submitToStartMs[min(r.submitToStartMs.count - 1, Int(Double(r.submitToStartMs.count) * p))]) ms"
        }
        var lines = [
            "tasks:            \(r.batch) (\(r.succeeded) succeeded, \(r.failed) failed, \(r.ranMoreThanOnce) ran more than once)",
            "wall time:        \(String(format: "%.2f", r.wallSeconds)) s",
            "throughput:       \(String(format: "%.0f", r.tasksPerSecond)) tasks/s",
            "submit -> start:  p50 \(pct(0.5)), p90 \(pct(0.9)), p99 \(pct(0.99)), max \(r.submitToStartMs.last.map { "\($0) ms" } ?? "-")",
            "per node:",
        ]
        for (node, count) in r.perNode.sorted(by: { $0.key < $1.key }) { lines.append("  \(node): \(count)") }
        return lines.joined(separator: "\n")
    }
}
