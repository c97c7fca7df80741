import Foundation
import Testing
import SwarmClient
import SwarmProtocol

/// Human renderings of the new task, node and stats fields.
@Suite struct OutputTests {
    static func agentTask() -> TaskInfo {
        var task = TaskInfo(id: "a1", state: .succeeded, command: [], node: "w1", exitCode: 0, attempts: 1,
                            submittedAt: 1_000, startedAt: 2_000, finishedAt: 62_000)
        task.metrics.runtime = "claude"
        task.metrics.model = "sonnet"
        task.metrics.complexity = "moderate"
        task.metrics.complexityScore = 4
        task.metrics.initialTimeoutMs = 300_000
        task.metrics.finalTimeoutMs = 420_000
        task.metrics.extensions = 2
        task.metrics.silenceWarnings = 1
        task.metrics.outputBytes = 5_120
        task.metrics.outputBursts = 7
        task.metrics.timeToFirstOutputMs = 1_500
        return task
    }

    @Test func statusShowsRunMetricsWhenKnown() {
        let text = Output.taskDetail(Self.agentTask())
        for line in ["runtime:   claude", "model:     sonnet", "complexity: moderate (score 4)",
                     "timeout:   300.0 s initial, 420.0 s final, 2 extensions", "silence warnings: 1",
                     "output:    5120 bytes in 7 bursts, first after 1.5 s"] {
            #expect(text.contains(line + "\n"), "missing '\(line)' in:\n\(text)")
        }
        #expect(!text.contains("command:"))
        // A plain command without measurements looks as before.
        let plain = Output.taskDetail(TaskInfo(id: "p", state: .queued, command: ["echo", "hi"], submittedAt: 1))
        #expect(plain.contains("command:   echo hi"))
        #expect(!plain.contains("runtime:") && !plain.contains("timeout:") && !plain.contains("output:"))
    }

    @Test func statusExplainsWhyATaskWaits() {
        var task = TaskInfo(id: "q", state: .queued, command: ["true"], submittedAt: 1)
        task.waitReason = "no worker has runtime 'codex'"
        task.unplaceable = true
        #expect(Output.taskDetail(task).contains("waiting:   no worker has runtime 'codex' (unplaceable: no registered worker can run it)"))
    }

    @Test func taskTableHasModelAndMarksUnplaceableTasks() {
        var stuck = TaskInfo(id: "q", state: .queued, command: ["true"], submittedAt: 1)
        stuck.unplaceable = true
        stuck.waitReason = "constraint gpu=1"
        let lines = Output.taskTable([Self.agentTask(), stuck]).split(separator: "\n")
        #expect(lines[0].hasPrefix("ID  STATE      NODE  MODEL   EXIT"))
        #expect(lines[1].contains("sonnet") && lines[1].contains("runtime:claude"))
        #expect(lines[2].hasSuffix("unplaceable: constraint gpu=1"))
    }

    @Test func nodeTableShowsRuntimeHealthAndWhetherCommandsMayRun() throws {
        let node = NodeInfo(name: "w1", slots: 4, freeSlots: 4, running: 0, state: .ready, labels: ["gpu": "1"], address: nil,
                            connected: true, lastSeenMsAgo: 10, completed: 0,
                            runtimes: [RuntimeStatus(name: "claude", healthy: true), RuntimeStatus(name: "codex", healthy: false)],
                            allowsCommands: false)
        let row = Output.nodeTable([node]).split(separator: "\n")[1]
        #expect(row.contains("claude:ok,codex:FAIL  no"))
        #expect(row.hasSuffix("gpu=1"))
        var busy = node
        (busy.freeSlots, busy.running, busy.prefetched) = (0, 4, 2)
        let lines = Output.nodeTable([busy]).split(separator: "\n")
        let header = lines[0].split(separator: " "), cells = lines[1].split(separator: " ")
        let held = try #require(header.firstIndex(of: "HELD"))
        #expect(header[held - 1] == "RUNNING" && cells[held - 1] == "4" && cells[held] == "2", "\(lines)")
    }

    @Test func statsHaveATaskTableAndAHealthTable() {
        var block = StatsBlock()
        block.totals.active = 1
        block.totals.completed = 4
        block.totals.succeeded = 2
        block.totals.failed = 2
        block.totals.failedByReason = ["silence_killed": 1, "timed_out": 1]
        block.totals.totalRunMs = 8_000
        block.byModel["opus"] = block.totals
        block.health["claude"] = HealthStats(healthy: false, passed: 3, failed: 2, lastLatencyMs: 90, meanLatencyMs: 1_200)
        let text = Output.stats(.init(requestId: 1, cluster: block, workers: ["w2": StatsBlock(), "w1": block]))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasPrefix("SCOPE    MODEL  ACTIVE  DONE  OK  FAILED"))
        #expect(lines[1].hasPrefix("cluster  all    1       4     2   2"))
        #expect(lines[1].hasSuffix("2.0 s     silence_killed=1,timed_out=1"))
        #expect(lines[2].hasPrefix("cluster  opus"))
        #expect(lines[3].hasPrefix("w1       all"))
        #expect(lines[5].hasPrefix("w2       all    0"))
        #expect(lines[5].hasSuffix("-         -"))
        #expect(text.contains("\n\nSCOPE    RUNTIME  HEALTHY  PASSED  FAILED  LAST LATENCY  MEAN LATENCY\n"))
        #expect(text.contains("cluster  claude   NO       3       2       90 ms         1.2 s"))
        #expect(Output.stats(.init(requestId: 1, cluster: StatsBlock(), workers: [:])).hasSuffix("\n\nno runtime health checks"))
    }

    @Test func statsJSONIsThePayloadWithoutRequestId() throws {
        let json = Output.json(StatsSnapshot(.init(requestId: 9, cluster: StatsBlock(), workers: ["w1": StatsBlock()])))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        // Absent is null, never a missing key: `scheduler` is there without figures too.
        #expect(Set(object.keys) == ["cluster", "workers", "scheduler"])
        #expect(object["scheduler"] is NSNull)
    }

    @Test func batchAndCancelLines() {
        #expect(Output.batchLines(ids: ["a", "b", "c"], existing: ["b"]) == "a\nb (already existed)\nc")
        #expect(Output.cancelled(TaskInfo(id: "t", state: .cancelled, command: [], submittedAt: 1)) == "t cancelled")
        #expect(Output.cancelled(TaskInfo(id: "t", state: .running, command: [], submittedAt: 1)) == "t running, being killed")
    }
}
