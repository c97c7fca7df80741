import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 4's user-facing promises on real `swarm` processes: node loss with kill -9, live
/// logs that survive a scheduler restart, and batch files.
@Suite struct ClusterEndToEndTests {
    typealias E2E = EndToEndTests

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// Pids of the direct children of `parent`.
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }
    }

    /// A scheduler with a state dir (its process, to kill it; `extra`: more of its flags) and
    /// one worker `w`, registered.
    static func schedulerAndWorker(_ harness: ProcessHarness, slots: Int, extra: [String] = []) throws -> (ProcessHarness.Child, String) {
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--state-dir", "\(harness.dir)/state"] + extra)
        let line = try #require(scheduler.waitForLine(containing: "listening on"))
        let address = String(try #require(line.split(separator: " ").last))
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", String(slots), "--name", "w",
                                     "--data-dir", "\(harness.dir)/w"])
        _ = try E2E.waitForNodes(harness, address, count: 1)
        return (scheduler, address)
    }

    @Test func killingAWorkerAndItsTasksMovesThemToTheOthers() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E2E.startScheduler(harness, extra: ["--lost-after", "1", "--heartbeat", "0.2"])
        let a = try harness.start("worker-a", ["worker", "--scheduler", address, "--slots", "2", "--name", "a",
                                               "--data-dir", "\(harness.dir)/a"])
        _ = try E2E.waitForNodes(harness, address, count: 1)
        let ids = (1...2).map { "moved-\($0)" }
        for id in ids {
            let submit = try harness.run(["submit", "--scheduler", address, "--id", id, "--", "sh", "-c",
                                          "echo on $SWARM_NODE; if [ $SWARM_ATTEMPT = 1 ]; then sleep 60; else sleep 0.2; fi", harness.marker])
            #expect(submit.status == 0)
        }
        for id in ids { try E2E.waitStarted(harness, address, id) }
        try harness.start("worker-b", ["worker", "--scheduler", address, "--slots", "2", "--name", "b",
                                       "--data-dir", "\(harness.dir)/b"])
        _ = try E2E.waitForNodes(harness, address, count: 2)
        // The machine dies: the worker and every process of its tasks, at once.
        let groups = Self.children(of: a.pid)
        #expect(groups.count == 2)
        kill(a.pid, SIGKILL)
        for pgid in groups { kill(-pgid, SIGKILL) }
        for id in ids {
            let info = try E2E.waitSucceeded(harness, address, id)
            #expect(info["attempts"] as? Int == 2)
            #expect(info["node"] as? String == "b")
        }
        let nodes = try harness.run(["nodes", "--scheduler", address, "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [[String: Any]])
        #expect(list.first { $0["name"] as? String == "a" }?["state"] as? String == "lost")
    }

    @Test func logsFollowLiveEndWithTheTaskAndOutliveARestart() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        var (scheduler, address) = try Self.schedulerAndWorker(harness, slots: 2)
        _ = try harness.run(["submit", "--scheduler", address, "--id", "talker", "--", "sh", "-c",
                             "echo first; sleep 2; echo second >&2; exit 3", harness.marker])
        // Follows across a 2 s silence, ends when the task does, with its outcome.
        let follow = try harness.run(["logs", "--scheduler", address, "-f", "talker"], timeout: 30)
        #expect(follow.stdout.contains("first"))
        #expect(follow.stdout.contains("second"))
        #expect(follow.status == 1)
        // A finished task's log, also with -f (returns at once).
        let done = try harness.run(["logs", "--scheduler", address, "-f", "talker"], timeout: 30)
        #expect(done.stdout.contains("first") && done.stdout.contains("second"))
        // kill -9 and restart on the same state dir and port: the log is still there.
        kill(scheduler.pid, SIGKILL)
        scheduler.process.waitUntilExit()
        scheduler = try harness.start("scheduler-2", ["scheduler", "--listen", address, "--state-dir", "\(harness.dir)/state"])
        _ = scheduler.waitForLine(containing: "listening on")
        let after = try harness.run(["logs", "--scheduler", address, "talker"])
        #expect(after.status == 0)
        #expect(after.stdout.contains("first") && after.stdout.contains("second"))
        let missing = try harness.run(["logs", "--scheduler", address, "nope"])
        #expect(missing.status != 0)
    }

    @Test func batchFilesGoInWholeOnceAndBadOnesNotAtAll() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E2E.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w",
                                     "--data-dir", "\(harness.dir)/w"])
        let file = "\(harness.dir)/tasks.jsonl"
        try """
        {"id": "b1", "command": ["true"]}
        {"id": "b2", "command": ["sh", "-c", "echo two"], "priority": 5}

        {"id": "b3", "command": ["true"], "env": {"K": "V"}}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let first = try harness.run(["submit", "--scheduler", address, "--file", file, "--wait"])
        #expect(first.status == 0)
        let again = try harness.run(["submit", "--scheduler", address, "--file", file, "--json"])
        let answer = try Self.json(again.stdout)
        #expect(answer["ids"] as? [String] == ["b1", "b2", "b3"])
        #expect(answer["existing"] as? [String] == ["b1", "b2", "b3"])
        let bad = "\(harness.dir)/bad.jsonl"
        try """
        {"id": "c1", "command": ["true"]}
        {"id": "c2", "comand": ["true"]}
        """.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try harness.run(["submit", "--scheduler", address, "--file", bad])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("bad.jsonl:2"))
        let tasks = try harness.run(["tasks", "--scheduler", address, "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(tasks.stdout.utf8)) as? [[String: Any]])
        #expect(list.map { $0["id"] as? String } == ["b1", "b2", "b3"])
    }

    @Test func outputMadeWhileTheSchedulerIsAwayReachesItsLogs() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        var (scheduler, address) = try Self.schedulerAndWorker(harness, slots: 1)
        _ = try harness.run(["submit", "--scheduler", address, "--id", "chatty", "--", "sh", "-c",
                             "sleep 0.5; echo while-away; sleep 2; echo back-again", harness.marker])
        try E2E.waitStarted(harness, address, "chatty")
        kill(scheduler.pid, SIGKILL)
        scheduler.process.waitUntilExit()
        // Away for longer than the task's first line takes.
        let end = Date().addingTimeInterval(1.5)
        while Date() < end { usleep(10_000) }
        scheduler = try harness.start("scheduler-2", ["scheduler", "--listen", address, "--state-dir", "\(harness.dir)/state"])
        _ = scheduler.waitForLine(containing: "listening on")
        let info = try E2E.waitSucceeded(harness, address, "chatty")
        #expect(info["attempts"] as? Int == 1)
        let logs = try harness.run(["logs", "--scheduler", address, "chatty"])
        #expect(logs.stdout.contains("while-away"))
        #expect(logs.stdout.contains("back-again"))
    }
}
