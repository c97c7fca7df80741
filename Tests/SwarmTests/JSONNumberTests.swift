import Foundation
import Logging
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler
import SwarmClient
import SwarmCluster
import SwarmNode

/// Issue 10, item 14: numbers in a task's `context` keep their literal text from the client
/// to the agent (codec, SQLite store and restart, prompt text, context file).
@Suite(.serialized) struct JSONNumberTests {
    /// Literals a double would change: past 2^53, a fraction of zero, past Double's range,
    /// negative zero, and a decimal with no exact binary form.
    static let literals = ["9007199254740993", "1.0", "1e400", "-0", "0.1", "-9223372036854775809", "1E+2", "-0.0e-0"]
    static let contextText = #"{"big":9007199254740993,"list":[1.0,1e400,-0,0.1,-9223372036854775809,1E+2,-0.0e-0],"n":{"x":12345678901234567890123}}"#

    @Test func parseKeepsEveryNumberLiteral() throws {
        let value = try JSONValue.parse(Self.contextText)
        #expect(value.serialized == Self.contextText)
        for literal in Self.literals {
            let parsed = try JSONValue.parse(literal)
            #expect(parsed == .number(JSONNumber(text: literal)!), "\(literal)")
            #expect(parsed.serialized == literal)
        }
        // Not numbers by RFC 8259.
        for bad in ["01", "+1", ".5", "1.", "1e", "NaN", "Infinity", "0x10", "--1"] {
            #expect(JSONNumber(text: bad) == nil, "\(bad)")
            #expect(throws: (any Error).self) { try JSONValue.parse(bad) }
        }
    }

    @Test func contextSurvivesTheWireAndTheStoreByteForByte() throws {
        var spec = TaskSpec(id: "ctx", runtime: "r", prompt: "p")
        spec.context = try JSONValue.parse(Self.contextText)
        // Client -> scheduler -> worker: the codec.
        let decoded = try MessageCodec.decode(MessageCodec.encode(.submit(.init(requestId: 1, task: spec))))
        guard case .submit(let submit) = decoded else { Issue.record("not a submit"); return }
        #expect(submit.task.context?.serialized == Self.contextText)
        let assign = try MessageCodec.decode(MessageCodec.encode(.assign(.init(task: TaskAssignment(id: "ctx", attempt: 1, spec: spec)))))
        guard case .assign(let a) = assign else { Issue.record("not an assign"); return }
        #expect(a.task.spec.context?.serialized == Self.contextText)
        // The SQLite store, across a reopen (a scheduler restart).
        let dir = NSTemporaryDirectory() + "swarm-jsonnum-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = ClusterState()
        _ = try state.submit(spec, at: 1)
        var store: TaskStore? = try TaskStore(directory: dir)
        try store!.save(state.takeChanges(), at: 1)
        store = nil
        let loaded = try TaskStore(directory: dir).loadTasks()
        #expect(loaded.first?.spec.context?.serialized == Self.contextText)
        #expect(loaded.first?.spec == spec)
    }

    @Test func theAgentSeesTheLiteralsInlineAndInTheContextFile() throws {
        var spec = TaskSpec(id: "ctx", runtime: "r", prompt: "p")
        spec.context = try JSONValue.parse(Self.contextText)
        let inline = AgentPrompt.text(for: spec, contextFile: nil)
        #expect(inline.contains(Self.contextText))
        guard case .file(let json) = AgentPrompt.placement(of: spec, inlineLimit: 10) else { Issue.record("not file"); return }
        for literal in Self.literals { #expect(json.contains(literal), "\(literal)") }
        #expect(try JSONValue.parse(json) == spec.context)
        #expect(try JSONSerialization.jsonObject(with: Data("[\(JSONValue.parse("[1,2.0]").pretty)]".utf8)) is [Any])
    }

    /// Real `swarm` processes, with a scheduler restart in the middle: `swarm submit
    /// --context-file` queues the task (no worker yet, so it waits in SQLite), the scheduler is
    /// killed and started again on the same state, then a worker runs it through a runtime
    /// that prints its stdin. The agent sees the numbers as written.
    @Test func contextNumbersSurviveTheCLITheStoreARestartAndTheWorker() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let stateDir = "\(harness.dir)/state"
        let address = try EndToEndTests.startScheduler(harness)
        let scheduler = try #require(harness.childNamed("scheduler"))
        try Self.contextText.write(toFile: "\(harness.dir)/ctx.json", atomically: true, encoding: .utf8)
        let config = #"{"runtimes": {"echo": {"command": ["sh", "-c", "cat"]}}, "workers": {"w1": {"slots": 1}}, "contextInlineMax": 100000}"#
        try config.write(toFile: "\(harness.dir)/cluster.json", atomically: true, encoding: .utf8)
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "ctx", "--runtime", "echo", "--prompt", "go",
                                      "--context-file", "\(harness.dir)/ctx.json"])
        #expect(submit.status == 0, "submit: \(submit.stderr)")
        kill(scheduler.pid, SIGKILL)
        scheduler.process.waitUntilExit()
        try RestartTests.restartScheduler(harness, address, stateDir: stateDir)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "w1", "--config",
                                     "\(harness.dir)/cluster.json", "--data-dir", "\(harness.dir)/w1"])
        let info = try EndToEndTests.waitSucceeded(harness, address, "ctx")
        let output = try #require(info["output"] as? String)
        #expect(output.contains("Context (JSON):\n" + Self.contextText), "\(output)")
    }

    /// The whole way on real processes: the client reads a context file, a worker's agent
    /// (a runtime that prints its stdin) gets the prompt with the context inline, and a big
    /// context goes to a file with every literal intact.
    @Test func endToEndTheAgentGetsTheNumbersAsWritten() throws {
        let dir = NSTemporaryDirectory() + "swarm-jsonnum-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = #"{"contextInlineMax": 200, "runtimes": {"echo": {"command": ["sh", "-c", "cat; if [ -n \"$SWARM_CONTEXT_FILE\" ]; then cat \"$SWARM_CONTEXT_FILE\"; fi"]}}}"#
        var options = LocalCluster.Options()
        options.workers = 1
        options.slots = 2
        options.dataDir = dir
        options.clusterFile = try ClusterFile.parse(Data(config.utf8))
        let cluster = try LocalCluster(options, logger: Logger(label: "test"))
        defer { #expect(cluster.stop().isEmpty) }
        let client = try SwarmClient(address: cluster.address, token: nil)
        for _ in 0..<3_000 where (try client.listNodes()).isEmpty { usleep(10_000) }

        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.contextText.write(toFile: "\(dir)/small.json", atomically: true, encoding: .utf8)
        let bigText = #"{"pad":""# + String(repeating: "x", count: 300) + #"","n":"# + Self.contextText + "}"
        try bigText.write(toFile: "\(dir)/big.json", atomically: true, encoding: .utf8)
        var ids: [String] = []
        for name in ["small", "big"] {
            var o = TaskOptions()
            o.id = name
            o.runtime = "echo"
            o.prompt = "go"
            o.contextFile = "\(dir)/\(name).json"
            ids.append(try client.submit(o.spec()))
        }
        let infos = try client.wait(ids, timeoutSeconds: 30)
        #expect(infos.allSatisfy { $0.state == .succeeded }, "\(infos.map(\.state))")
        let small = try client.status("small"), big = try client.status("big")
        #expect(small.metrics.contextMode == "inline")
        #expect(small.output?.contains(Self.contextText) == true, "\(small.output ?? "")")
        #expect(big.metrics.contextMode == "file")
        let file = try String(contentsOfFile: try #require(big.metrics.contextFile), encoding: .utf8)
        #expect(try JSONValue.parse(file).serialized == JSONValue.parse(bigText).serialized)
        for literal in Self.literals { #expect(file.contains(literal) && big.output?.contains(literal) == true, "\(literal)") }
    }
}
