import Foundation
import Logging
import Testing
import SwarmClient
import SwarmCluster
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Admission on real processes (issue 10, items 3, 6 and 13).
@Suite(.serialized) struct AdmissionEndToEndTests {
    /// Item 6: `modelLimits: {"sonnet": 1}` and a runtime whose `defaultModel` is `sonnet`:
    /// tasks naming no model show it at once and never run more than one at a time.
    @Test func aRuntimesDefaultModelCountsAgainstItsLimit() throws {
        let marks = NSTemporaryDirectory() + "swarm-marks-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: marks) }
        // As `swarm up --config` sets it up.
        let config = """
        {"scheduler": {"modelLimits": {"sonnet": 1}},
         "runtimes": {"fake": {"command": ["sh", "\(EngineEndToEndTests.agent)", "--model", "{model}"], "defaultModel": "sonnet"}}}
        """
        let dir = NSTemporaryDirectory() + "swarm-limits-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var options = LocalCluster.Options()
        options.workers = 1
        options.slots = 4
        options.dataDir = dir
        options.clusterFile = try ClusterFile.parse(Data(config.utf8))
        options.settings.modelLimits = options.clusterFile?.scheduler.modelLimits ?? [:]
        let cluster = try LocalCluster(options, logger: Logger(label: "test"))
        defer { EngineEndToEndTests.finish(cluster, dir) }
        let client = try SwarmClient(address: cluster.address, token: nil)
        for _ in 0..<3_000 where try client.listNodes().isEmpty { usleep(10_000) }
        let ids = try (0..<3).map { i in
            try client.submit(EngineEndToEndTests.agentTask("lim-\(i)", env: ["FAKE_MARKS": marks, "FAKE_BURSTS": "2",
                                                                              "FAKE_BURST_GAP": "0.15"]))
        }
        // Seen before they run or end: listings show the model they will run with.
        #expect(try client.listTasks().filter { ids.contains($0.id) }.allSatisfy { $0.metrics.model == "sonnet" })
        let infos = try client.wait(ids)
        #expect(infos.allSatisfy { $0.state == .succeeded && $0.metrics.model == "sonnet" })
        let (events, peak) = try EngineEndToEndTests.replayMarks(marks)
        #expect(events == 6)
        #expect(peak == 1)
    }

    /// Items 3 and 13 at submit: a task whose frames could not fit, a command and environment
    /// exec would refuse, a prompt too long for argv: each refused with its reason, and the
    /// tasks around them run.
    @Test func oversizeTasksAreRefusedAtSubmitAndCostOthersNothing() throws {
        let config = """
        {"runtimes": {"fake": {"command": ["sh", "\(EngineEndToEndTests.agent)", "--model", "{model}"], "defaultModel": "sonnet"},
                      "argv": {"command": ["sh", "-c", "echo ok", "{prompt}"]}}}
        """
        let (cluster, client, dir) = try EngineEndToEndTests.cluster(slots: 4, config: config)
        defer { EngineEndToEndTests.finish(cluster, dir) }
        func refusal(_ spec: TaskSpec) -> String {
            do { _ = try client.submit(spec); return "accepted" } catch { return "\(error)" }
        }
        // A submit frame of nearly 16 MiB: accepted before, then every assignment of it broke
        // the worker's connection.
        var big = TaskSpec(id: "big", command: ["true"])
        big.labels = ["pad": String(repeating: "a", count: Frame.defaultMaxPayload - 200)]
        #expect(refusal(big).contains("bytes as JSON; the limit is \(FrameBudget.maxSpecBytes)"))
        var env: [String: String] = [:]
        for i in 0..<70_000 { env["V\(i)"] = "" }
        #expect(refusal(TaskSpec(id: "env", command: ["true"], env: env)).contains("8-byte pointer"))
        #expect(refusal(TaskSpec(id: "argv", runtime: "argv", prompt: String(repeating: "p", count: 200_000)))
                    .contains("puts the prompt into argv"))
        #expect(refusal(TaskSpec(id: "nul", runtime: "argv", prompt: "a\u{0}b")).contains("NUL"))
        let ids = try (0..<20).map { try client.submit(TaskSpec(id: "ok-\($0)", command: ["true"])) }
        let infos = try client.wait(ids)
        #expect(infos.allSatisfy { $0.state == .succeeded && $0.attempts == 1 })
    }

    /// Item 3, a batch: one frame, so over the frame limit it is refused before it is sent
    /// (the scheduler would drop the connection), saying so.
    @Test func aBatchOverTheFrameLimitIsRefusedBeforeItIsSent() throws {
        let fake = try FakeScheduler { _ in .init(messages: []) }
        defer { fake.stop() }
        let client = try SwarmClient(address: fake.address, token: nil)
        let spec = { (i: Int) in TaskSpec(id: "b\(i)", command: ["echo", String(repeating: "x", count: 100_000)]) }
        do {
            _ = try client.submitBatch((0..<170).map(spec))
            Issue.record("an oversize batch was sent")
        } catch {
            #expect("\(error)".contains("split it into smaller batches"))
        }
        #expect(!fake.requests.contains { if case .submitBatch = $0 { true } else { false } })
    }

    /// Item 3, the worker's last line: an assignment it cannot decode is refused for good with
    /// its reason, and the connection stays up for the next one.
    @Test func aWorkerRefusesAnAssignmentItCannotReadAndKeepsItsConnection() throws {
        let good = TaskAssignment(id: "good", attempt: 1, spec: TaskSpec(command: ["true"]), submittedAt: 1, placedAt: 1)
        // Readable, but no worker could run it (a NUL in a variable): refused for good as well.
        let invalid = TaskAssignment(id: "invalid", attempt: 1, spec: TaskSpec(command: ["true"], env: ["A": "x\u{0}"]),
                                     submittedAt: 1, placedAt: 1)
        let fake = try FakeScheduler { message in
            switch message {
            case .register:
                let bad = Array(#"{"type":"assign","task":{"id":"bad","attempt":1,"spec":{"command":5}}}"#.utf8)
                return .init(messages: [.registered(.init(heartbeatMs: 1_000)), .assign(.init(task: invalid))], raw: [bad])
            case .reject(let reject) where reject.id == "bad":
                return .init(messages: [.assign(.init(task: good))])
            case .taskFinished(let finished):
                return .init(messages: [.resultAck(.init(id: finished.result.id, attempt: finished.result.attempt))])
            default:
                return .init(messages: [])
            }
        }
        defer { fake.stop() }
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        try harness.start("worker", ["worker", "--scheduler", fake.address, "--slots", "1", "--name", "w",
                                     "--data-dir", "\(harness.dir)/w"])
        var finished: TaskResult?
        for _ in 0..<500 where finished == nil {
            finished = fake.requests.lazy.compactMap { if case .taskFinished(let f) = $0 { f.result } else { nil } }.first
            usleep(20_000)
        }
        let requests = fake.requests
        let rejects = requests.compactMap { if case .reject(let r) = $0 { r } else { nil } }
        #expect(rejects.map(\.id) == ["invalid", "bad"])
        #expect(rejects.allSatisfy { $0.permanent == true })
        #expect(rejects.last?.reason.contains("cannot read its assignment") == true)
        #expect(rejects.first?.reason.contains("NUL") == true)
        #expect(finished?.id == "good" && finished?.state == .succeeded)
        // One registration: the connection was never dropped.
        #expect(requests.filter { if case .register = $0 { true } else { false } }.count == 1)
    }
}
