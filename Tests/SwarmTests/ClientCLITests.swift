import Foundation
import Testing
import SwarmProtocol

/// The `swarm` binary's cancel, logs, stats, drain and `submit --file` against a scripted
/// scheduler: what they print and their exit codes.
@Suite struct ClientCLITests {
    static func info(_ id: String, _ state: TaskState) -> TaskInfo {
        TaskInfo(id: id, state: state, command: ["true"], exitCode: state == .succeeded ? 0 : nil, attempts: 1, submittedAt: 1)
    }

    /// A scheduler that knows tasks `queued1` (cancellable), `run1` (running), `done1`
    /// (succeeded), `ok` and `bad` (logs), batches, stats and worker `w1`.
    static let script: @Sendable (Message) -> FakeScheduler.Reply = { m in
        func error(_ code: ErrorCode, _ reason: String) -> FakeScheduler.Reply {
            .init(messages: [.error(.init(code: code, reason: reason, requestId: m.requestId))])
        }
        switch m {
        case .cancel(let r) where r.id == "queued1":
            return .init(messages: [.taskInfo(.init(requestId: r.requestId, task: info(r.id, .cancelled)))])
        case .cancel(let r) where r.id == "run1":
            return .init(messages: [.taskInfo(.init(requestId: r.requestId, task: info(r.id, .running)))])
        case .cancel(let r) where r.id == "done1":
            // Cancelling an ended task is not an error: the reply is its final state.
            return .init(messages: [.taskInfo(.init(requestId: r.requestId, task: info(r.id, .succeeded)))])
        case .status(let r) where r.id == "done1":
            return .init(messages: [.taskInfo(.init(requestId: r.requestId, task: info(r.id, .succeeded)))])
        case .cancel(let r), .status(let r):
            return error(.unknownTask, "no task with id '\(r.id)'")
        case .logs(let r) where r.follow:
            let end: TaskState = r.id == "ok" ? .succeeded : .failed
            return .init(messages: [.logChunk(.init(requestId: r.requestId, id: r.id, data: "line 1\n", done: false)),
                                    .logChunk(.init(requestId: r.requestId, id: r.id, data: "line 2\n", done: true, state: end))])
        case .logs(let r):
            return .init(messages: [.logChunk(.init(requestId: r.requestId, id: r.id, data: "stored\n", done: true, state: .running))])
        case .submitBatch(let b):
            return .init(messages: [.batchSubmitted(.init(requestId: b.requestId, ids: b.tasks.map { $0.id ?? "gen" }, existing: ["a2"]))])
        case .wait(let w):
            return .init(messages: [.waitResult(.init(requestId: w.requestId, tasks: w.ids.map { info($0, $0 == "a2" ? .failed : .succeeded) }))])
        case .stats(let r):
            var block = StatsBlock()
            block.totals.completed = 2
            block.totals.failed = 1
            block.totals.failedByReason = ["timed_out": 1]
            block.byModel["sonnet"] = block.totals
            block.health["claude"] = HealthStats(healthy: true, passed: 4, failed: 1, lastLatencyMs: 120, meanLatencyMs: 150)
            return .init(messages: [.statsReply(.init(requestId: r.requestId, cluster: block, workers: ["w1": block]))])
        case .drain(let r) where r.name == "w1":
            let node = NodeInfo(name: "w1", slots: 2, freeSlots: 1, running: 1, state: .draining, labels: [:], address: nil,
                                connected: true, lastSeenMsAgo: 5, completed: 0,
                                runtimes: [RuntimeStatus(name: "claude", healthy: false)], allowsCommands: false)
            return .init(messages: [.nodeList(.init(requestId: r.requestId, nodes: [node]))])
        case .drain(let r):
            return error(.unexpected, "no worker named '\(r.name)'")
        default:
            return error(.unexpected, "a client may not send '\(m.type)'")
        }
    }

    static func run(_ body: (ProcessHarness, (([String]) throws -> ProcessHarness.RunResult)) throws -> Void) throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let fake = try FakeScheduler(script: script)
        defer { fake.stop() }
        try body(harness) { try harness.run([$0[0], "--scheduler", fake.address] + $0.dropFirst()) }
    }

    @Test func cancelExitCodes() throws {
        try Self.run { _, swarm in
            let queued = try swarm(["cancel", "queued1"])
            #expect(queued.status == 0)
            #expect(queued.stdout == "queued1 cancelled\n")
            let running = try swarm(["cancel", "run1"])
            #expect(running.status == 0)
            #expect(running.stdout == "run1 running, being killed\n")
            // Issue 10 item 21: an ended task is left as it is, exit 0, and the line says so.
            let ended = try swarm(["cancel", "done1"])
            #expect(ended.status == 0)
            #expect(ended.stdout == "done1 had already ended (succeeded); nothing to cancel\n")
            let missing = try swarm(["cancel", "nope"])
            #expect(missing.status == 2)
            #expect(missing.stderr == "swarm: error: no task with id 'nope'\n")
            let json = try swarm(["cancel", "--json", "queued1"])
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(object?["state"] as? String == "cancelled")
        }
    }

    @Test func logsPrintTheTextAndFollowExitsWithTheTasksOutcome() throws {
        try Self.run { _, swarm in
            let ok = try swarm(["logs", "-f", "ok"])
            #expect(ok.status == 0)
            #expect(ok.stdout == "line 1\nline 2\n")
            let bad = try swarm(["logs", "--follow", "bad"])
            #expect(bad.status == 1)
            #expect(bad.stdout == "line 1\nline 2\n")
            #expect(bad.stderr == "swarm: task bad failed\n")
            let stored = try swarm(["logs", "bad"])
            #expect(stored.status == 0)
            #expect(stored.stdout == "stored\n")
        }
    }

    @Test func submitFilePrintsIdsAndWaitsForAll() throws {
        try Self.run { harness, swarm in
            try "{\"id\": \"a1\", \"command\": [\"true\"]}\n{\"id\": \"a2\", \"command\": [\"false\"]}\n"
                .write(toFile: harness.dir + "/t.jsonl", atomically: true, encoding: .utf8)
            let plain = try swarm(["submit", "--file", "t.jsonl"])
            #expect(plain.status == 0)
            #expect(plain.stdout == "a1\na2 (already existed)\n")
            let json = try swarm(["submit", "--file", "t.jsonl", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["ids"] as? [String] == ["a1", "a2"])
            #expect(object["existing"] as? [String] == ["a2"])
            #expect(object["tasks"] is NSNull)
            let waited = try swarm(["submit", "--file", "t.jsonl", "--wait"])
            #expect(waited.status == 1)
            #expect(waited.stdout.hasPrefix("a1\na2 (already existed)\nID "))
            #expect(waited.stderr == "swarm: 1 of 2 tasks did not succeed\n")
            let waitedJSON = try swarm(["submit", "--file", "t.jsonl", "--wait", "--json"])
            #expect(waitedJSON.status == 1)
            let tasks = (try JSONSerialization.jsonObject(with: Data(waitedJSON.stdout.utf8)) as? [String: Any])?["tasks"] as? [[String: Any]]
            #expect(tasks?.map { $0["state"] as? String } == ["succeeded", "failed"])
        }
    }

    @Test func aBadTaskFileSubmitsNothing() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let fake = try FakeScheduler(script: Self.script)
        defer { fake.stop() }
        try "{\"id\": \"a1\", \"command\": [\"true\"]}\n{\"id\": \"a1\", \"command\": [\"true\"]}\n"
            .write(toFile: harness.dir + "/dup.jsonl", atomically: true, encoding: .utf8)
        let dup = try harness.run(["submit", "--scheduler", fake.address, "--file", "dup.jsonl"])
        #expect(dup.status == 64)
        #expect(dup.stderr == "swarm: error: dup.jsonl:2: duplicate id 'a1' (first on line 1)\n")
        let missing = try harness.run(["submit", "--scheduler", fake.address, "--file", "none.jsonl"])
        #expect(missing.status == 64)
        #expect(missing.stderr == "swarm: error: none.jsonl: cannot read it: no such file\n")
        #expect(fake.requests.isEmpty)
    }

    @Test func statsAndDrain() throws {
        try Self.run { _, swarm in
            let json = try swarm(["stats", "--json"])
            #expect(json.status == 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["cluster", "workers", "scheduler"])
            #expect((object["workers"] as? [String: Any])?.keys.sorted() == ["w1"])
            let human = try swarm(["stats"])
            #expect(human.status == 0)
            #expect(human.stdout.contains("timed_out=1"))
            #expect(human.stdout.contains("sonnet"))
            #expect(human.stdout.contains("150 ms"))

            let drained = try swarm(["drain", "w1"])
            #expect(drained.status == 0)
            #expect(drained.stdout.contains("draining"))
            #expect(drained.stdout.contains("claude:FAIL"))
            let unknown = try swarm(["drain", "w9"])
            #expect(unknown.status == 2)
            #expect(unknown.stderr == "swarm: error: no worker named 'w9'\n")
        }
    }

    @Test func aSchedulerWithoutTheNewMessagesIsAClientError() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let fake = try FakeScheduler { m in
            .init(messages: [.error(.init(code: .unexpected, reason: "a client may not send '\(m.type)'", requestId: m.requestId))],
                  close: true)
        }
        defer { fake.stop() }
        for arguments in [["cancel", "t"], ["logs", "-f", "t"], ["stats"], ["drain", "w1"]] {
            let result = try harness.run([arguments[0], "--scheduler", fake.address] + arguments.dropFirst())
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr == "swarm: error: a client may not send '\(arguments[0])'\n")
        }
    }
}
