import Foundation
import SwarmProtocol

extension Output {
    /// `swarm stats`: a task table (cluster, then each worker: totals, then one row per
    /// model) and a health table (one row per scope and runtime).
    public static func stats(_ reply: Message.StatsReply) -> String {
        let scopes = [("cluster", reply.cluster)] + reply.workers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var tasks = [["SCOPE", "MODEL", "ACTIVE", "DONE", "OK", "FAILED", "EXT", "SILENCE WARN", "SILENCE KILL",
                      "TIMEOUTS", "MEAN RUN", "FAILED BY REASON"]]
        var health = [["SCOPE", "RUNTIME", "HEALTHY", "PASSED", "FAILED", "LAST LATENCY", "MEAN LATENCY"]]
        for (scope, block) in scopes {
            tasks.append(counterRow(scope, "all", block.totals))
            for (model, counters) in block.byModel.sorted(by: { $0.key < $1.key }) {
                tasks.append(counterRow(scope, model, counters))
            }
            for (runtime, h) in block.health.sorted(by: { $0.key < $1.key }) {
                health.append([scope, runtime, h.healthy ? "yes" : "NO", String(h.passed), String(h.failed),
                               h.lastLatencyMs.map(ms) ?? "-", h.meanLatencyMs.map(ms) ?? "-"])
            }
        }
        var text = table(tasks)
        text += health.count > 1 ? "\n\n" + table(health) : "\n\nno runtime health checks"
        var processes = [["PROCESS", "PID", "CPU USER", "CPU SYS", "PEAK RSS"]]
        let usages = (reply.scheduler.map { [("scheduler", $0)] } ?? [])
            + reply.workers.sorted { $0.key < $1.key }.compactMap { name, block in block.process.map { (name, $0) } }
        for (name, u) in usages {
            processes.append([name, String(u.pid), ms(u.cpuUserMs), ms(u.cpuSystemMs), String(format: "%.1f MiB", Double(u.maxRssKiB) / 1024)])
        }
        if processes.count > 1 { text += "\n\n" + table(processes) }
        return text
    }

    private static func counterRow(_ scope: String, _ model: String, _ c: StatsCounters) -> [String] {
        let reasons = c.failedByReason.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let mean = c.completed > 0 ? ms(c.totalRunMs / Int64(c.completed)) : "-"
        return [scope, model, String(c.active), String(c.completed), String(c.succeeded), String(c.failed),
                String(c.extensions), String(c.silenceWarnings), String(c.silenceKills), String(c.timeouts), mean,
                reasons.isEmpty ? "-" : reasons.joined(separator: ",")]
    }
}
