import Foundation
import Testing
import SwarmProtocol

/// Real `swarm` processes: a scheduler, workers and CLI clients on loopback.
@Suite(.serialized) struct EndToEndTests {
    /// Starts `swarm scheduler` on a free port; returns its HOST:PORT.
    static func startScheduler(_ harness: ProcessHarness, extra: [String] = []) throws -> String {
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0",
                                                        "--state-dir", "\(harness.dir)/state"] + extra)
        let line = try #require(scheduler.waitForLine(containing: "listening on"), "scheduler did not report its address")
        return String(try #require(line.split(separator: " ").last))
    }

    static func waitForNodes(_ harness: ProcessHarness, _ address: String, count: Int, extra: [String] = []) throws -> [[String: Any]] {
        for _ in 0..<300 {
            let r = try harness.run(["nodes", "--scheduler", address, "--json"] + extra)
            if r.status == 0, let nodes = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
               nodes.filter({ $0["state"] as? String == "ready" && $0["connected"] as? Bool == true }).count == count {
                return nodes
            }
            usleep(50_000)
        }
        Issue.record("\(count) workers did not register")
        return []
    }

    /// `swarm wait --json ID` (bounded), expected to succeed; returns the task.
    static func waitSucceeded(_ harness: ProcessHarness, _ address: String, _ id: String) throws -> [String: Any] {
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30", id])
        #expect(wait.status == 0, "wait \(id): \(wait.stderr)")
        return try #require((try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]])?.first)
    }

    /// Waits (bounded) until the scheduler reports the task started.
    static func waitStarted(_ harness: ProcessHarness, _ address: String, _ id: String) throws {
        for _ in 0..<300 {
            if try harness.run(["status", "--scheduler", address, "--json", id]).stdout.contains("\"startedAt\" : 1") { return }
            usleep(20_000)
        }
        Issue.record("task \(id) did not start")
    }

    /// SIGSTOP, then SIGCONT after `seconds`: a hung process.
    static func freeze(_ pid: Int32, seconds: Double) {
        kill(pid, SIGSTOP)
        // Not one usleep: a signal (SIGCHLD of any child of this test process) ends it early.
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { usleep(10_000) }
        kill(pid, SIGCONT)
    }

    @Test func sixtyTasksOnThreeTwoSlotWorkersRunExactlyOnceWithinSlots() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness)
        for i in 1...3 {
            try harness.start("worker-\(i)", ["worker", "--scheduler", address, "--slots", "2", "--name", "w\(i)",
                                              "--data-dir", "\(harness.dir)/w\(i)"])
        }
        let nodes = try Self.waitForNodes(harness, address, count: 3)
        #expect(nodes.map { $0["slots"] as? Int } == [2, 2, 2])

        let traceDir = "\(harness.dir)/trace"
        try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)
        let script = #"echo "S $SWARM_TASK_ID $(date +%s%N)" >> "$1/$SWARM_NODE.trace"; sleep 0.1; echo "E $SWARM_TASK_ID $(date +%s%N)" >> "$1/$SWARM_NODE.trace""#
        // One batch, so all 60 are queued at once and spread over the workers (one submit
        // process per task can be slower than a task on a loaded machine: then the first
        // worker, free again each time, would take them all).
        let lines = try (1...60).map { i -> String in
            let task: [String: Any] = ["id": "job-\(i)", "command": ["sh", "-c", script, harness.marker, traceDir]]
            return String(decoding: try JSONSerialization.data(withJSONObject: task), as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: "\(harness.dir)/jobs.jsonl", atomically: true, encoding: .utf8)
        let r = try harness.run(["submit", "--scheduler", address, "--file", "\(harness.dir)/jobs.jsonl"])
        #expect(r.status == 0, "submit failed: \(r.stderr)")
        let ids = r.stdout.split(separator: "\n").map(String.init)
        #expect(ids == (1...60).map { "job-\($0)" })

        let wait = try harness.run(["wait", "--scheduler", address, "--timeout", "120"] + ids, timeout: 150)
        #expect(wait.status == 0, "wait: \(wait.stdout) \(wait.stderr)")

        let tasksRun = try harness.run(["tasks", "--scheduler", address, "--json"])
        let tasks = try #require(try JSONSerialization.jsonObject(with: Data(tasksRun.stdout.utf8)) as? [[String: Any]])
        #expect(tasks.count == 60)
        #expect(tasks.allSatisfy { $0["state"] as? String == "succeeded" && $0["exitCode"] as? Int == 0 && $0["attempts"] as? Int == 1 })

        // Each task's own trace: started exactly once, and never more than 2 at once per worker.
        var starts: [String: Int] = [:]
        var perNode: [String: Int] = [:]
        for node in ["w1", "w2", "w3"] {
            let text = (try? String(contentsOfFile: "\(traceDir)/\(node).trace", encoding: .utf8)) ?? ""
            var events: [(time: Int64, delta: Int)] = []
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 3, let t = Int64(parts[2]) else { Issue.record("bad trace line \(line)"); continue }
                if parts[0] == "S" { starts[String(parts[1]), default: 0] += 1; perNode[node, default: 0] += 1 }
                events.append((t, parts[0] == "S" ? 1 : -1))
            }
            // Ends sort before starts at the same instant.
            events.sort { $0.time != $1.time ? $0.time < $1.time : $0.delta < $1.delta }
            var running = 0, peak = 0
            for e in events { running += e.delta; peak = max(peak, running) }
            #expect(peak <= 2, "worker \(node) ran \(peak) tasks at once")
            #expect(running == 0)
        }
        #expect(starts.count == 60)
        #expect(starts.values.allSatisfy { $0 == 1 })
        #expect(perNode.count == 3, "all three workers took tasks: \(perNode)")

        // A task's directory stays on the worker that ran it. These tasks print nothing: no
        // log file (nor a result file: results are in the run journal until acknowledged),
        // and `swarm logs` of one is empty, not an error.
        let first = try #require(tasks.first)
        let node = try #require(first["node"] as? String), id = try #require(first["id"] as? String)
        #expect(FileManager.default.fileExists(atPath: "\(harness.dir)/\(node)/work/\(id)"))
        #expect(!FileManager.default.fileExists(atPath: "\(harness.dir)/\(node)/logs/\(id).stream.txt"))
        #expect(!FileManager.default.fileExists(atPath: "\(harness.dir)/\(node)/results/\(id).json"))
        let logs = try harness.run(["logs", "--scheduler", address, "--lifecycle", id])
        #expect(logs.status == 0 && logs.stdout.isEmpty && logs.stderr.isEmpty, "\(logs.status) \(logs.stdout) \(logs.stderr)")
    }

    @Test func submitWaitStatusAndJSONContract() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "solo",
                                     "--data-dir", "\(harness.dir)/solo"])
        _ = try Self.waitForNodes(harness, address, count: 1)

        let ok = try harness.run(["submit", "--scheduler", address, "--wait", "--json", "--", "sh", "-c", "echo hi; echo oops >&2"])
        #expect(ok.status == 0)
        let task = try #require(try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        #expect(task["state"] as? String == "succeeded")
        #expect(task["exitCode"] as? Int == 0)
        #expect(task["node"] as? String == "solo")
        #expect((task["output"] as? String)?.contains("hi\n") == true)
        #expect((task["output"] as? String)?.contains("oops\n") == true)

        // --quiet: the id, and 1 for a task that did not succeed (without it: the task's own code).
        let bad = try harness.run(["submit", "--scheduler", address, "--id", "failing", "--wait", "--quiet", "--", "sh", "-c", "exit 7"])
        #expect(bad.status == 1)
        #expect(bad.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "failing")
        // The outcome line has the form plain --wait prints: an outcome, not an error of the command.
        #expect(bad.stderr.hasPrefix("swarm: task failing failed") && !bad.stderr.contains("error:"), "\(bad.stderr)")
        let status = try harness.run(["status", "--scheduler", address, "--json", "failing"])
        let info = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect(info["state"] as? String == "failed")
        #expect(info["exitCode"] as? Int == 7)

        let missing = try harness.run(["submit", "--scheduler", address, "--wait", "--", "/no/such/program"])
        #expect(missing.status == 127)

        // SWARM_SCHEDULER is the default address.
        let viaEnv = try harness.run(["submit", "--wait", "--", "true"], environment: ["SWARM_SCHEDULER": address])
        #expect(viaEnv.status == 0)

        // wait: all must succeed; a timeout exits 124.
        let slow = try harness.run(["submit", "--scheduler", address, "--", "sleep", "30"])
        let slowId = slow.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let timedOut = try harness.run(["wait", "--scheduler", address, "--timeout", "0.3", slowId])
        #expect(timedOut.status == 124)
        #expect(timedOut.stderr.contains("timed out"))
        let mixed = try harness.run(["wait", "--scheduler", address, "failing"])
        #expect(mixed.status == 1)

        // Duplicate ids are an error, never an overwrite.
        let dup = try harness.run(["submit", "--scheduler", address, "--id", "failing", "--", "true"])
        #expect(dup.status != 0)
        #expect(dup.stderr.contains("already exists"))
    }

    @Test func clientErrorsAreOneClearLineAndNonZero() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness)

        let unknown = try harness.run(["status", "--scheduler", address, "nope"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr == "swarm: error: no task with id 'nope'\n")

        let badId = try harness.run(["submit", "--scheduler", address, "--id", "../etc/passwd", "--", "true"])
        #expect(badId.status != 0)
        #expect(badId.stderr.contains("may contain only"))

        let noCommand = try harness.run(["submit", "--scheduler", address])
        #expect(noCommand.status != 0)
        #expect(noCommand.stderr.contains("missing command"))

        let badFlag = try harness.run(["tasks", "--bogus"])
        #expect(badFlag.status != 0)

        // A port nothing listens on.
        let unreachable = try harness.run(["tasks", "--scheduler", "127.0.0.1:1"])
        #expect(unreachable.status == 2)
        #expect(unreachable.stderr.hasPrefix("swarm: error: cannot reach scheduler at 127.0.0.1:1"))
        #expect(unreachable.stderr.split(separator: "\n").count == 1)

        let badAddress = try harness.run(["tasks", "--scheduler", "nonsense"])
        #expect(badAddress.status != 0)

        // Without a token, only loopback may be bound.
        let open = try harness.run(["scheduler", "--listen", "0.0.0.0:0", "--state-dir", "\(harness.dir)/s2"])
        #expect(open.status == 1)
        #expect(open.stderr.contains("without a cluster token"))
    }

    @Test func workerReconnectsAfterTheSchedulerRestarts() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "phoenix",
                                     "--data-dir", "\(harness.dir)/phoenix"])
        _ = try Self.waitForNodes(harness, address, count: 1)
        harness.stop("scheduler")
        let again = try harness.start("scheduler2", ["scheduler", "--listen", address, "--state-dir", "\(harness.dir)/state"])
        #expect(again.waitForLine(containing: "listening on") != nil)
        let nodes = try Self.waitForNodes(harness, address, count: 1)
        #expect(nodes.first?["name"] as? String == "phoenix")
        let r = try harness.run(["submit", "--scheduler", address, "--wait", "--", "true"])
        #expect(r.status == 0)
    }

    @Test func upRunsALocalClusterUntilInterrupted() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let up = try harness.start("up", ["up", "--workers", "2", "--slots", "2", "--listen", "127.0.0.1:0",
                                          "--data-dir", "\(harness.dir)/local"])
        let line = try #require(up.waitForLine(containing: "listening on"))
        let address = String(try #require(line.split(separator: " ").last))
        let nodes = try Self.waitForNodes(harness, address, count: 2)
        #expect(nodes.compactMap { $0["name"] as? String } == ["worker-1", "worker-2"])
        let r = try harness.run(["submit", "--scheduler", address, "--wait", "--json", "--", "sh", "-c", "echo $SWARM_NODE"])
        #expect(r.status == 0)
        // A task still running when Ctrl-C arrives is killed with its group.
        _ = try harness.run(["submit", "--scheduler", address, "--", "sh", "-c", "sleep 60 & sleep 60", harness.marker])
        kill(up.pid, SIGINT)
        for _ in 0..<3_000 where up.process.isRunning { usleep(10_000) }
        #expect(!up.process.isRunning)
        #expect(up.process.terminationStatus == 0)
        #expect(ProcessHarness.processes(containing: harness.marker).isEmpty)
    }

    /// A worker that stops answering is marked lost and its task runs elsewhere; when it comes
    /// back, the copy it still runs is killed there. The task has one outcome, attempts 2.
    @Test func lostWorkersTaskIsRequeuedAndItsLateCopyKilled() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness, extra: ["--lost-after", "1", "--heartbeat", "0.2"])
        let a = try harness.start("worker-a", ["worker", "--scheduler", address, "--slots", "1", "--name", "a",
                                               "--data-dir", "\(harness.dir)/a"])
        _ = try Self.waitForNodes(harness, address, count: 1)
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "survivor", "--",
                                      "sh", "-c", "echo ran on $SWARM_NODE attempt $SWARM_ATTEMPT; if [ $SWARM_ATTEMPT = 1 ]; then sleep 30; else sleep 1; fi",
                                      harness.marker])
        #expect(submit.status == 0)
        try Self.waitStarted(harness, address, "survivor")
        kill(a.pid, SIGSTOP)  // a hangs: no heartbeats, no results
        try harness.start("worker-b", ["worker", "--scheduler", address, "--slots", "1", "--name", "b",
                                       "--data-dir", "\(harness.dir)/b"])
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30", "survivor"])
        #expect(wait.status == 0)
        let tasks = try #require(try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]])
        #expect(tasks.first?["node"] as? String == "b")
        #expect(tasks.first?["attempts"] as? Int == 2)
        #expect((tasks.first?["output"] as? String)?.contains("ran on b attempt 2") == true)

        kill(a.pid, SIGCONT)  // a comes back still running its copy: the scheduler has it killed
        var killed = false
        for _ in 0..<300 {
            let log = (try? String(contentsOfFile: "\(harness.dir)/a/logs/survivor.stream.txt", encoding: .utf8)) ?? ""
            if log.contains("killing process group: killed by scheduler") { killed = true; break }
            usleep(20_000)
        }
        #expect(killed)
        let after = try harness.run(["status", "--scheduler", address, "--json", "survivor"])
        let info = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])
        #expect(info["state"] as? String == "succeeded")
        #expect(info["node"] as? String == "b")
        let nodes = try Self.waitForNodes(harness, address, count: 2)
        #expect(nodes.count == 2)
    }

    /// The reviewer's case: the only worker hangs past lost-after while its task finishes,
    /// then comes back. The finished run's late result must not count; the task ends from
    /// exactly one run, attempt 2.
    @Test func lateResultOfAnEarlierRunDoesNotCount() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness, extra: ["--lost-after", "1", "--heartbeat", "0.2"])
        let c = try harness.start("worker-c", ["worker", "--scheduler", address, "--slots", "1", "--name", "c",
                                               "--data-dir", "\(harness.dir)/c"])
        _ = try Self.waitForNodes(harness, address, count: 1)
        let id = try harness.run(["submit", "--scheduler", address, "--", "sh", "-c",
                                  "echo attempt=$SWARM_ATTEMPT; sleep 1.5; echo done $SWARM_ATTEMPT"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Running (not a fixed while: a loaded machine may take longer to start it).
        try Self.waitStarted(harness, address, id)
        // Frozen three times lost-after: a margin for a loaded machine, where the scheduler's
        // own stalls (CPU starvation, slow fsyncs) are forgiven to every worker.
        Self.freeze(c.pid, seconds: 3)
        let info = try Self.waitSucceeded(harness, address, id)
        #expect(info["attempts"] as? Int == 2)
        let status = try harness.run(["status", "--scheduler", address, "--json", id])
        let detail = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect((detail["output"] as? String) == "attempt=2\ndone 2\n")
        let nodes = try Self.waitForNodes(harness, address, count: 1)
        #expect(nodes.first?["freeSlots"] as? Int == 1)
        #expect(nodes.first?["running"] as? Int == 0)
    }

    /// Stopping a worker (SIGTERM, or SIGHUP from a closed terminal) kills its tasks' groups and
    /// hands them back: they run again on another worker instead of ending `cancelled`.
    @Test func stoppedWorkersTasksRunAgainElsewhere() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness)
        var ids: [String] = []
        for (index, signal) in [SIGTERM, SIGHUP].enumerated() {
            let leaving = try harness.start("leaving-\(index)", ["worker", "--scheduler", address, "--slots", "1",
                                                                  "--name", "leaving-\(index)", "--data-dir", "\(harness.dir)/l\(index)"])
            _ = try Self.waitForNodes(harness, address, count: 1)
            let id = try harness.run(["submit", "--scheduler", address, "--", "sh", "-c",
                                      "if [ $SWARM_ATTEMPT = 1 ]; then sleep 60; fi; echo on $SWARM_NODE", harness.marker]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try Self.waitStarted(harness, address, id)
            kill(leaving.pid, signal)
            for _ in 0..<3_000 where leaving.process.isRunning { usleep(10_000) }
            #expect(!leaving.process.isRunning)
            #expect(leaving.process.terminationStatus == 0)
            ids.append(id)
        }
        // Nothing of the stopped workers' tasks is left running.
        #expect(ProcessHarness.processes(containing: "sleep 60").filter { ProcessHarness.processes(containing: harness.marker).contains($0) }.isEmpty)
        try harness.start("stayer", ["worker", "--scheduler", address, "--slots", "2", "--name", "stayer",
                                     "--data-dir", "\(harness.dir)/stayer"])
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30"] + ids)
        #expect(wait.status == 0)
        let tasks = try #require(try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]])
        // The first ran again on the second worker as soon as it joined; the second on `stayer`.
        #expect(tasks.map { $0["node"] as? String } == ["leaving-1", "stayer"])
        #expect(tasks.map { $0["attempts"] as? Int } == [2, 2])
    }

    /// The scheduler itself pausing past lost-after (VM pause, Ctrl-Z) must not cost its
    /// healthy workers their tasks.
    @Test func aStalledSchedulerKeepsItsWorkers() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startScheduler(harness, extra: ["--lost-after", "1", "--heartbeat", "0.2"])
        let scheduler = try #require(harness.childNamed("scheduler"))
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "steady",
                                     "--data-dir", "\(harness.dir)/steady"])
        _ = try Self.waitForNodes(harness, address, count: 1)
        let id = try harness.run(["submit", "--scheduler", address, "--", "sleep", "3"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.waitStarted(harness, address, id)
        Self.freeze(scheduler.pid, seconds: 2)
        let info = try Self.waitSucceeded(harness, address, id)
        #expect(info["attempts"] as? Int == 1)
    }

    @Test func workerWithWrongTokenExitsWithAClearError() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let tokenFile = "\(harness.dir)/token"
        try "right-secret\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let wrongFile = "\(harness.dir)/wrong"
        try "wrong-secret\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
        let address = try Self.startScheduler(harness, extra: ["--token-file", tokenFile])
        let worker = try harness.run(["worker", "--scheduler", address, "--slots", "1", "--name", "intruder",
                                      "--token-file", wrongFile, "--data-dir", "\(harness.dir)/x"], timeout: 30)
        #expect(worker.status == 1)
        #expect(worker.stderr.contains("wrong cluster token"))

        let client = try harness.run(["nodes", "--scheduler", address], environment: ["SWARM_TOKEN": "wrong-secret"])
        #expect(client.status == 2)
        let good = try harness.run(["nodes", "--scheduler", address, "--token-file", tokenFile])
        #expect(good.status == 0)
        let none = try harness.run(["nodes", "--scheduler", address])
        #expect(none.status == 2)
        #expect(none.stderr.contains("token"))
    }
}

extension ProcessHarness {
    /// SIGTERM one child and wait (bounded) for it to exit.
    func stop(_ name: String) {
        guard let child = childNamed(name) else { return }
        kill(child.pid, SIGTERM)
        for _ in 0..<3_000 where child.process.isRunning { usleep(10_000) }
    }
}
