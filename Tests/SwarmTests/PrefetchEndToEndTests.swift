import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Assignment prefetch (issue 17) on real `swarm` processes: a task sent ahead to a busy
/// worker never makes it run more than its slots, shows `queued` until it starts, runs once,
/// can be cancelled while held, goes elsewhere, uncharged, when its worker dies, and is handed
/// back to run on a slot free elsewhere when its worker's slot stays busy.
@Suite(.serialized) struct PrefetchEndToEndTests {
    typealias E2E = EndToEndTests

    static func list(_ text: String) -> [[String: Any]] {
        ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]]) ?? []
    }

    static func status(_ harness: ProcessHarness, _ address: String, _ id: String) throws -> [String: Any] {
        let r = try harness.run(["status", "--scheduler", address, "--json", id])
        return try #require((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any], "status \(id): \(r.stderr)")
    }

    /// Polls (bounded) until `id` is queued and prefetched to `node` (its wait reason says so).
    static func waitPrefetched(_ harness: ProcessHarness, _ address: String, _ id: String, to node: String) throws -> [String: Any] {
        for _ in 0..<300 {
            let info = try status(harness, address, id)
            if info["state"] as? String == "queued", (info["waitReason"] as? String)?.contains("prefetched to worker \(node)") == true {
                return info
            }
            usleep(20_000)
        }
        Issue.record("task \(id) was not prefetched to \(node)")
        return [:]
    }

    @Test func fortyShortTasksOnTwoTwoSlotWorkersRunOnceWithinSlots() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E2E.startScheduler(harness, extra: ["--prefetch", "2"])
        for name in ["w1", "w2"] {
            try harness.start(name, ["worker", "--scheduler", address, "--slots", "2", "--name", name,
                                     "--data-dir", "\(harness.dir)/\(name)"])
        }
        _ = try E2E.waitForNodes(harness, address, count: 2)
        let traceDir = "\(harness.dir)/trace"
        try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)
        let script = #"echo "S $SWARM_TASK_ID $(date +%s%N)" >> "$1/$SWARM_NODE.trace"; sleep 0.05; echo "E $SWARM_TASK_ID $(date +%s%N)" >> "$1/$SWARM_NODE.trace""#
        let lines = try (1...40).map { i -> String in
            let task: [String: Any] = ["id": "p-\(i)", "command": ["sh", "-c", script, harness.marker, traceDir]]
            return String(decoding: try JSONSerialization.data(withJSONObject: task), as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: "\(harness.dir)/jobs.jsonl", atomically: true, encoding: .utf8)
        let r = try harness.run(["submit", "--scheduler", address, "--file", "\(harness.dir)/jobs.jsonl"])
        #expect(r.status == 0, "submit: \(r.stderr)")
        let ids = r.stdout.split(separator: "\n").map(String.init)
        #expect(ids.count == 40)
        // Polled while they run (at most 60 s of it): what the scheduler shows running never
        // exceeds the slots, by node and by task.
        let deadline = Date().addingTimeInterval(60)
        for _ in 0..<300 where Date() < deadline {
            let nodes = Self.list(try harness.run(["nodes", "--scheduler", address, "--json"]).stdout)
            for node in nodes { #expect((node["running"] as? Int ?? 0) <= 2, "\(node)") }
            let tasks = Self.list(try harness.run(["tasks", "--scheduler", address, "--json"]).stdout)
            let running = Dictionary(grouping: tasks.filter { $0["state"] as? String == "running" }, by: { $0["node"] as? String ?? "?" })
            for (node, list) in running { #expect(list.count <= 2, "\(node) shows \(list.count) running") }
            if !tasks.isEmpty, tasks.allSatisfy({ ($0["state"] as? String) == "succeeded" }) { break }
            usleep(10_000)
        }
        let wait = try harness.run(["wait", "--scheduler", address, "--timeout", "120"] + ids, timeout: 150)
        #expect(wait.status == 0, "wait: \(wait.stdout) \(wait.stderr)")
        let tasks = Self.list(try harness.run(["tasks", "--scheduler", address, "--json"]).stdout)
        #expect(tasks.count == 40)
        #expect(tasks.allSatisfy { $0["state"] as? String == "succeeded" && $0["attempts"] as? Int == 1 })
        // The processes themselves: each task started once, never more than 2 at once per worker.
        var starts: [String: Int] = [:]
        for node in ["w1", "w2"] {
            let text = (try? String(contentsOfFile: "\(traceDir)/\(node).trace", encoding: .utf8)) ?? ""
            var events: [(time: Int64, delta: Int)] = []
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 3, let t = Int64(parts[2]) else { Issue.record("bad trace line \(line)"); continue }
                if parts[0] == "S" { starts[String(parts[1]), default: 0] += 1 }
                events.append((t, parts[0] == "S" ? 1 : -1))
            }
            events.sort { $0.time != $1.time ? $0.time < $1.time : $0.delta < $1.delta }
            var running = 0, peak = 0
            for e in events { running += e.delta; peak = max(peak, running) }
            #expect(peak <= 2, "worker \(node) ran \(peak) tasks at once")
        }
        #expect(starts.count == 40 && starts.values.allSatisfy { $0 == 1 })
    }

    @Test func aHeldTaskCancelledNeverRuns() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E2E.startScheduler(harness)
        // Held until a slot frees (not handed back after the default 1 s): the test cancels it held.
        try harness.start("w", ["worker", "--scheduler", address, "--slots", "1", "--name", "w", "--data-dir", "\(harness.dir)/w",
                                "--prefetch-hold", "600"])
        _ = try E2E.waitForNodes(harness, address, count: 1)
        let mark = "\(harness.dir)/held-ran"
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "busy", "--", "sh", "-c", "sleep 60", harness.marker]).status == 0)
        try E2E.waitStarted(harness, address, "busy")
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "held", "--", "touch", mark]).status == 0)
        _ = try Self.waitPrefetched(harness, address, "held", to: "w")
        let nodes = Self.list(try harness.run(["nodes", "--scheduler", address, "--json"]).stdout)
        #expect(nodes.first?["running"] as? Int == 1)
        #expect(try harness.run(["cancel", "--scheduler", address, "held"]).status == 0)
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30", "held"])
        let info = try #require(Self.list(wait.stdout).first)
        #expect(info["state"] as? String == "cancelled")
        #expect(info["startedAt"] == nil || info["startedAt"] is NSNull)
        #expect(try harness.run(["cancel", "--scheduler", address, "busy"]).status == 0)
        _ = try harness.run(["wait", "--scheduler", address, "--timeout", "30", "busy"])
        #expect(!FileManager.default.fileExists(atPath: mark), "the cancelled held task ran")
    }

    @Test func killingAWorkerHoldingTasksRunsThemElsewhereUncharged() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E2E.startScheduler(harness, extra: ["--lost-after", "1", "--heartbeat", "0.2"])
        let a = try harness.start("worker-a", ["worker", "--scheduler", address, "--slots", "1", "--name", "a",
                                               "--data-dir", "\(harness.dir)/a", "--prefetch-hold", "600"])
        _ = try E2E.waitForNodes(harness, address, count: 1)
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "first", "--", "sh", "-c",
                                 "if [ $SWARM_ATTEMPT = 1 ]; then sleep 60; fi", harness.marker]).status == 0)
        try E2E.waitStarted(harness, address, "first")
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "second", "--", "sh", "-c",
                                 "echo ran on $SWARM_NODE attempt $SWARM_ATTEMPT", harness.marker]).status == 0)
        _ = try Self.waitPrefetched(harness, address, "second", to: "a")
        try harness.start("worker-b", ["worker", "--scheduler", address, "--slots", "2", "--name", "b",
                                       "--data-dir", "\(harness.dir)/b"])
        _ = try E2E.waitForNodes(harness, address, count: 2)
        let groups = ClusterEndToEndTests.children(of: a.pid)
        kill(a.pid, SIGKILL)
        for pgid in groups { kill(-pgid, SIGKILL) }
        let first = try E2E.waitSucceeded(harness, address, "first")
        #expect(first["attempts"] as? Int == 2 && first["node"] as? String == "b")
        let second = try E2E.waitSucceeded(harness, address, "second")
        // It never ran on a: its attempt was given back, and it ran once, on b.
        #expect(second["attempts"] as? Int == 1 && second["node"] as? String == "b")
        #expect((second["output"] as? String)?.contains("ran on b attempt 1") == true)
    }

    /// The defect the hold limit fixes: a task held behind a slot busy for minutes while
    /// another worker's slot is free. Held on w1 (name order picks it), it is handed back after
    /// 1 s and runs on w2 once w2's short task ends: seconds, not the 120 s of w1's task.
    @Test func aTaskHeldBehindALongRunMovesToAFreeSlotElsewhere() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E2E.startScheduler(harness)
        for (name, kind) in [("w1", "long"), ("w2", "short")] {
            try harness.start(name, ["worker", "--scheduler", address, "--slots", "1", "--name", name, "--label", "kind=\(kind)",
                                     "--data-dir", "\(harness.dir)/\(name)"])
        }
        _ = try E2E.waitForNodes(harness, address, count: 2)
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "long", "--constraint", "kind=long", "--",
                                 "sh", "-c", "sleep 120", harness.marker]).status == 0)
        try E2E.waitStarted(harness, address, "long")
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "short", "--constraint", "kind=short", "--",
                                 "sh", "-c", "sleep 2", harness.marker]).status == 0)
        try E2E.waitStarted(harness, address, "short")
        let submitted = Date()
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "moved", "--",
                                 "sh", "-c", "echo ran on $SWARM_NODE", harness.marker]).status == 0)
        // Bounds a hang only: without the limit it waits on w1 until its 120 s task ends.
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "60", "moved"], timeout: 90)
        #expect(wait.status == 0, "wait: \(wait.stdout) \(wait.stderr)")
        let info = try #require(Self.list(wait.stdout).first)
        #expect(info["state"] as? String == "succeeded" && info["node"] as? String == "w2")
        #expect(info["attempts"] as? Int == 1)
        #expect((info["output"] as? String)?.contains("ran on w2") == true)
        #expect(Date().timeIntervalSince(submitted) < 60)
        #expect(try Self.status(harness, address, "long")["state"] as? String == "running")
        #expect(try harness.run(["cancel", "--scheduler", address, "long"]).status == 0)
        _ = try harness.run(["wait", "--scheduler", address, "--timeout", "30", "long"])
    }
}
