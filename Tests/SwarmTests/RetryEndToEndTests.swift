import Foundation
import Testing
import SwarmClient
import SwarmProtocol

/// Retries, run history and `swarm rerun` with real processes (issue 13): a flaky agent that
/// fails twice then succeeds, on 3 workers; the history in `status`; a scheduler killed with
/// -9 while a task waits out its backoff; reruns.
@Suite(.serialized) struct RetryEndToEndTests {
    typealias E = EndToEndTests

    /// Fails until it has been run `$2` times (counted in `$1/count`), then succeeds. `$0` is
    /// the harness's marker, so leftovers are found.
    static let flaky = #"n=$(cat "$1/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1/count"; echo "run $n on $SWARM_NODE"; [ "$n" -ge "$2" ]"#

    static func startCluster(_ harness: ProcessHarness, workers: Int) throws -> String {
        let address = try E.startScheduler(harness)
        for i in 1...workers {
            try harness.start("worker-\(i)", ["worker", "--scheduler", address, "--slots", "1", "--name", "w\(i)",
                                              "--data-dir", "\(harness.dir)/w\(i)"])
        }
        _ = try E.waitForNodes(harness, address, count: workers)
        return address
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// `swarm wait --json ID` prints an array: its one task.
    static func waited(_ text: String) throws -> [String: Any] {
        try #require((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])?.first, "not a JSON array: \(text)")
    }

    @Test func aFlakyAgentFailsTwiceThenSucceedsOnOtherNodesAndCanBeRerun() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startCluster(harness, workers: 3)
        let work = "\(harness.dir)/flaky"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

        let submit = try harness.run(["submit", "--scheduler", address, "--id", "flaky", "--retries", "3",
                                      "--retry-backoff", "0.2", "--", "sh", "-c", Self.flaky, harness.marker, work, "3"])
        #expect(submit.status == 0, "\(submit.stderr)")
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30", "flaky"])
        #expect(wait.status == 0, "\(wait.stderr)")
        let status = try harness.run(["status", "--scheduler", address, "--json", "flaky"])
        let task = try Self.json(status.stdout)
        #expect(task["state"] as? String == "succeeded")
        #expect(task["attempts"] as? Int == 3)
        let runs = try #require(task["runs"] as? [[String: Any]])
        #expect(runs.map { $0["attempt"] as? Int } == [1, 2, 3])
        #expect(runs.map { $0["state"] as? String } == ["failed", "failed", "succeeded"])
        #expect(runs.map { $0["exitCode"] as? Int } == [1, 1, 0])
        #expect(runs.allSatisfy { $0["startedAt"] as? Int != nil && $0["durationMs"] as? Int != nil })
        // Each retry went to a node other than the one that had just failed (3 idle workers).
        let nodes = runs.compactMap { $0["node"] as? String }
        #expect(nodes.count == 3 && nodes[1] != nodes[0] && nodes[2] != nodes[1], "nodes: \(nodes)")

        let text = try harness.run(["status", "--scheduler", address, "flaky"])
        #expect(text.stdout.contains("runs:      3"))
        #expect(text.stdout.contains("ATTEMPT") && text.stdout.contains("DURATION"))
        #expect(text.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.contains(" failed ") }.count == 2)

        // `swarm rerun`: a new task from the same spec; ids ID.r1, ID.r2, or --id.
        let rerun = try harness.run(["rerun", "--scheduler", address, "flaky"])
        #expect(rerun.status == 0 && rerun.stdout == "flaky.r1\n", "\(rerun.stderr)")
        let again = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30", "flaky.r1"])
        let rerunTask = try Self.waited(again.stdout)
        #expect(rerunTask["state"] as? String == "succeeded" && rerunTask["attempts"] as? Int == 1)
        #expect((rerunTask["command"] as? [String])?.last == "3")
        #expect(try harness.run(["rerun", "--scheduler", address, "flaky"]).stdout == "flaky.r2\n")
        #expect(try harness.run(["rerun", "--scheduler", address, "flaky", "--id", "named"]).stdout == "named\n")
        let taken = try harness.run(["rerun", "--scheduler", address, "flaky", "--id", "named"])
        #expect(taken.status != 0 && taken.stderr.contains("already exists"))

        // Refused: a task that has not finished, and one that does not exist.
        _ = try harness.run(["submit", "--scheduler", address, "--id", "long", "--", "sleep", "30"])
        let running = try harness.run(["rerun", "--scheduler", address, "long"])
        #expect(running.status != 0)
        #expect(running.stderr.contains("task 'long' has not finished"), "\(running.stderr)")
        #expect(running.stderr.split(separator: "\n").count == 1)
        let unknown = try harness.run(["rerun", "--scheduler", address, "nope"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no task with id 'nope'"))
        _ = try harness.run(["cancel", "--scheduler", address, "long"])
    }

    @Test func badRetryValuesAreRefusedWithOneLine() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let cases: [([String], String)] = [
            (["--retries", "-1"], "retries must be 0 to 100, got -1"),
            (["--retries", "1000"], "retries must be 0 to 100, got 1000"),
            (["--retries", "x"], "retries"),
            (["--retry-on", "succeeded"], "'succeeded' is not a state a run is retried from"),
            (["--retry-on", "failed,,lost"], "'' is not a state"),
            (["--retry-backoff", "601"], "retryBackoff must be a number of seconds from 0 to 600"),
            (["--retry-backoff", "nan"], "retryBackoff"),
        ]
        for (flags, message) in cases {
            let r = try harness.run(["submit", "--scheduler", "127.0.0.1:1"] + flags + ["--", "true"])
            #expect(r.status != 0 && r.status != 2, "\(flags): \(r.status)")
            #expect(r.stderr.contains(message), "\(flags): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(flags): \(r.stderr)")
        }
        let file = "\(harness.dir)/tasks.jsonl"
        try #"{"id": "a", "command": ["true"], "retries": 2, "retryOn": "failed,lost", "retryBackoff": 700}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = try harness.run(["submit", "--scheduler", "127.0.0.1:1", "--file", file])
        #expect(r.status != 0 && r.stderr.contains("tasks.jsonl:1: retryBackoff must be"), "\(r.stderr)")
    }

    @Test func aSchedulerKilledDuringABackoffRetriesAfterItsRestart() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startCluster(harness, workers: 2)
        let scheduler = try #require(harness.childNamed("scheduler"))
        let work = "\(harness.dir)/flaky"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let file = "\(harness.dir)/tasks.jsonl"
        let line: [String: Any] = ["id": "once", "command": ["sh", "-c", Self.flaky, harness.marker, work, "2"],
                                   "retries": 2, "retryOn": ["failed"], "retryBackoff": 6]
        try String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self).write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try harness.run(["submit", "--scheduler", address, "--file", file]).status == 0)

        // Its first run failed: queued, waiting out its backoff (6 s: each poll runs a `swarm`
        // process, which a loaded machine may take a second or more to start).
        var waiting: [String: Any] = [:]
        for _ in 0..<400 {
            waiting = try Self.json(try harness.run(["status", "--scheduler", address, "--json", "once"]).stdout)
            if waiting["state"] as? String == "queued", waiting["attempts"] as? Int == 1 { break }
            usleep(25_000)
        }
        #expect((waiting["waitReason"] as? String)?.hasPrefix("retrying in ") == true, "\(waiting)")
        #expect((waiting["waitReason"] as? String)?.contains(" after failed on w") == true)

        kill(scheduler.pid, SIGKILL)
        scheduler.process.waitUntilExit()
        try RestartTests.restartScheduler(harness, address, stateDir: "\(harness.dir)/state")
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "30", "once"])
        let task = try Self.waited(wait.stdout)
        #expect(task["state"] as? String == "succeeded" && task["attempts"] as? Int == 2, "\(wait.stdout) \(wait.stderr)")
        let runs = try #require(try Self.json(try harness.run(["status", "--scheduler", address, "--json", "once"]).stdout)["runs"] as? [[String: Any]])
        #expect(runs.map { $0["state"] as? String } == ["failed", "succeeded"])
        #expect(runs.first?["exitCode"] as? Int == 1)
        // A resubmission of the same file stays idempotent: nothing new runs.
        let resubmit = try harness.run(["submit", "--scheduler", address, "--file", file])
        #expect(resubmit.stdout.contains("once (already existed)"))
        #expect(RestartTests.lines("\(work)/count") == ["2"])
    }
}
