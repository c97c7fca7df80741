import Foundation
import Testing
import SwarmClient
import SwarmProtocol
@testable import SwarmScheduler

/// Task dependencies with real processes (issue 13 item 6): a diamond through `--file` with a
/// failing branch, what submit refuses, and a scheduler killed with -9 in the middle of a DAG
/// of 200 tasks.
@Suite(.serialized) struct DependencyEndToEndTests {
    typealias E = EndToEndTests
    typealias R = RetryEndToEndTests

    @Test func aDiamondThroughAFileWithAFailingBranch() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try R.startCluster(harness, workers: 2)
        // a -> b, c -> d: b fails. d (after) ends dependency_failed naming b; e (afterAny) runs.
        let file = "\(harness.dir)/dag.jsonl"
        try """
            {"id": "a", "command": ["true"]}
            {"id": "d", "command": ["true"], "after": ["b", "c"]}
            {"id": "b", "command": ["sh", "-c", "exit 3"], "after": "a"}
            {"id": "c", "command": ["true"], "after": ["a"]}
            {"id": "e", "command": ["echo", "merged"], "afterAny": "b,c"}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let submit = try harness.run(["submit", "--scheduler", address, "--file", file, "--wait"])
        #expect(submit.status == 1 && submit.stderr.contains("2 of 5 tasks did not succeed"), "\(submit.stdout)\(submit.stderr)")
        let d = try R.json(try harness.run(["status", "--scheduler", address, "--json", "d"]).stdout)
        #expect(d["state"] as? String == "dependency_failed")
        #expect(d["reason"] as? String == "dependency b failed")
        #expect(d["after"] as? [String] == ["b", "c"] && d["attempts"] as? Int == 0)
        let e = try R.json(try harness.run(["status", "--scheduler", address, "--json", "e"]).stdout)
        #expect(e["state"] as? String == "succeeded" && e["afterAny"] as? [String] == ["b", "c"])
        let text = try harness.run(["status", "--scheduler", address, "d"]).stdout
        #expect(text.contains("after:     b, c") && text.contains("reason:    dependency b failed"), "\(text)")
        // Every task ran after what it waited for.
        let infos = try SwarmClient(address: address, token: nil).wait(["a", "b", "c", "e"])
        let at = Dictionary(uniqueKeysWithValues: infos.map { ($0.id, $0) })
        #expect(at["b"]!.startedAt! >= at["a"]!.finishedAt! && at["c"]!.startedAt! >= at["a"]!.finishedAt!)
        #expect(at["e"]!.startedAt! >= max(at["b"]!.finishedAt!, at["c"]!.finishedAt!))

        // A task submitted after one that failed ends at once; --wait says so (125).
        let late = try harness.run(["submit", "--scheduler", address, "--id", "late", "--after", "c,b", "--wait", "--", "true"])
        #expect(late.status == 125 && late.stderr.contains("task late dependency_failed: dependency b failed"), "\(late.stderr)")
        let waited = try harness.run(["wait", "--scheduler", address, "late"])
        #expect(waited.status != 0)
        // A dependency_failed task is not rerun.
        let rerun = try harness.run(["rerun", "--scheduler", address, "d"])
        #expect(rerun.status != 0 && rerun.stderr.contains("rerun the dependency that failed"), "\(rerun.stderr)")
    }

    /// The head of a chain of 2,500 fails: the scheduler ends the chain a slice a turn
    /// (`ClusterState.settleSlice`) and keeps turning until it is done, answering clients in
    /// between: the last task ends `dependency_failed`, naming the first failure.
    @Test func aFailureRunsDownALongChainThroughTheRealScheduler() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try R.startCluster(harness, workers: 1)
        let client = try SwarmClient(address: address, token: nil)
        let n = 2_500
        var specs = [TaskSpec(id: "c0", command: ["sh", "-c", "exit 3"])]
        for i in 1..<n {
            var spec = TaskSpec(id: "c\(i)", command: ["true"])
            spec.after = ["c\(i - 1)"]
            specs.append(spec)
        }
        _ = try client.submitBatch(Array(specs[..<1_500]))
        _ = try client.submitBatch(Array(specs[1_500...]))
        let last = try client.wait(["c\(n - 1)"], timeoutSeconds: 60)
        #expect(last.first?.state == .dependencyFailed)
        #expect(last.first?.reason == "dependency c\(n - 2) dependency_failed (c0 failed)")
        let middle = try client.wait(["c1200"], timeoutSeconds: 30)
        #expect(middle.first?.state == .dependencyFailed && middle.first?.attempts == 0)
        // A cancel starts such a cascade too, with no result or worker to ask for more turns.
        let chain = specs.map { spec -> TaskSpec in
            var copy = spec
            copy.id = "k" + spec.id!.dropFirst()
            copy.after = spec.after.map { $0.map { "k" + $0.dropFirst() } }
            copy.command = ["sleep", "600"]
            return copy
        }
        _ = try client.submitBatch(Array(chain[..<1_500]))
        _ = try client.submitBatch(Array(chain[1_500...]))
        _ = try client.cancel("k0")
        let cancelled = try client.wait(["k\(n - 1)"], timeoutSeconds: 60)
        #expect(cancelled.first?.reason == "dependency k\(n - 2) dependency_failed (k0 cancelled)")
    }

    @Test func submitRefusesUnknownDependenciesAndCyclesInOneLine() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        let unknown = try harness.run(["submit", "--scheduler", address, "--after", "nope", "--", "true"])
        #expect(unknown.status != 0 && unknown.stderr.contains("dependency 'nope' is not a known task"), "\(unknown.stderr)")
        #expect(unknown.stderr.split(separator: "\n").count == 1)
        let file = "\(harness.dir)/cycle.jsonl"
        try """
            {"id": "x", "command": ["true"], "after": "z"}
            {"id": "y", "command": ["true"], "after": "x"}
            {"id": "z", "command": ["true"], "afterAny": ["y"]}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let cycle = try harness.run(["submit", "--scheduler", address, "--file", file])
        #expect(cycle.status != 0 && cycle.stderr.contains("the dependencies form a cycle: x -> z -> y -> x"), "\(cycle.stderr)")
        let typed = "\(harness.dir)/typed.jsonl"
        try #"{"id": "x", "command": ["true"], "after": 3}"#.write(toFile: typed, atomically: true, encoding: .utf8)
        let wrong = try harness.run(["submit", "--scheduler", address, "--file", typed])
        #expect(wrong.status != 0 && wrong.stderr.contains("'after' must be a string or an array of strings"), "\(wrong.stderr)")
        let listed = try harness.run(["tasks", "--scheduler", address, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.isEmpty == true, "\(listed.stdout)")
    }

    /// Each task writes "start NS" and "end NS" (wall clock, ns) to `$1/$SWARM_TASK_ID`.
    static let traced = #"echo "start $(date +%s%N)" >> "$1/$SWARM_TASK_ID"; sleep 0.05; echo "end $(date +%s%N)" >> "$1/$SWARM_TASK_ID""#

    /// The issue's test: 200 tasks in 20 layers of 10, each after the whole layer before; the
    /// scheduler is killed with -9 once layer 8 has started, and started again on its state.
    /// Every task runs exactly once, and none starts before all it waited for had ended.
    @Test func schedulerKilledInTheMiddleOfADagOfTwoHundredRunsEachOnceInOrder() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let stateDir = "\(harness.dir)/state"
        let address = try E.startScheduler(harness)
        let scheduler = try #require(harness.childNamed("scheduler"))
        for i in 1...2 {
            try harness.start("worker-\(i)", ["worker", "--scheduler", address, "--slots", "5", "--name", "w\(i)",
                                              "--data-dir", "\(harness.dir)/w\(i)"])
        }
        _ = try E.waitForNodes(harness, address, count: 2)
        let trace = "\(harness.dir)/trace"
        try FileManager.default.createDirectory(atPath: trace, withIntermediateDirectories: true)
        let layers = 20, width = 10
        func id(_ layer: Int, _ i: Int) -> String { "L\(layer)-\(i)" }
        var lines: [String] = []
        for layer in 0..<layers {
            for i in 0..<width {
                var spec = TaskSpec(id: id(layer, i), command: ["sh", "-c", Self.traced, harness.marker, trace])
                if layer > 0 { spec.after = (0..<width).map { id(layer - 1, $0) } }
                lines.append(String(decoding: try JSONEncoder().encode(spec), as: UTF8.self))
            }
        }
        let file = "\(harness.dir)/dag.jsonl"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let submit = try harness.run(["submit", "--scheduler", address, "--file", file])
        #expect(submit.status == 0, "\(submit.stderr)")

        // Killed once the middle layer has started (bounded: 30 s).
        for _ in 0..<3_000 where !FileManager.default.fileExists(atPath: "\(trace)/\(id(8, 0))") { usleep(10_000) }
        kill(scheduler.pid, SIGKILL)
        scheduler.process.waitUntilExit()
        let started = ((try? FileManager.default.contentsOfDirectory(atPath: trace)) ?? []).count
        #expect(started < layers * width, "the DAG had ended before the kill")
        try RestartTests.restartScheduler(harness, address, stateDir: stateDir)

        let ids = (0..<layers).flatMap { layer in (0..<width).map { id(layer, $0) } }
        let infos = try SwarmClient(address: address, token: nil).wait(ids, timeoutSeconds: 60)
        #expect(infos.filter { $0.state != .succeeded }.map(\.id).isEmpty)
        var times: [String: (start: Int64, end: Int64)] = [:]
        var notOnce: [String] = []
        for task in ids {
            let entries = RestartTests.lines("\(trace)/\(task)")
            guard entries.count == 2, entries[0].hasPrefix("start "), entries[1].hasPrefix("end "),
                  let start = Int64(entries[0].dropFirst(6)), let end = Int64(entries[1].dropFirst(4)) else {
                notOnce.append(task)
                continue
            }
            times[task] = (start, end)
        }
        #expect(notOnce.isEmpty, "tasks that did not run exactly once: \(notOnce.prefix(10))")
        var early: [String] = []
        for layer in 1..<layers {
            let previousEnd = (0..<width).compactMap { times[id(layer - 1, $0)]?.end }.max() ?? .max
            for i in 0..<width where (times[id(layer, i)]?.start ?? 0) < previousEnd { early.append(id(layer, i)) }
        }
        #expect(early.isEmpty, "tasks that started before all they waited for had ended: \(early.prefix(10))")
        print("DAG of \(layers * width): scheduler killed with \(started) tasks started; all ran once, in order")
    }
}
