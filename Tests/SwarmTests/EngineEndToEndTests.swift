import Foundation
import Logging
import Testing
import SwarmClient
import SwarmCluster
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The agent engine on real processes: an in-process cluster running the fake agent
/// (Fixtures/fake-agent.sh) with every duration scaled down to fractions of a second.
@Suite(.serialized) struct EngineEndToEndTests {
    static let agent = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/fake-agent.sh").path

    /// A cluster whose workers run the runtime `fake` (the fake agent) and plain commands.
    static func cluster(workers: Int = 1, slots: Int = 4, health: String = "", config given: String? = nil) throws -> (LocalCluster, SwarmClient, String) {
        let dir = NSTemporaryDirectory() + "swarm-engine-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let config = given ?? """
        {"runtimes": {"fake": {"command": ["sh", "\(agent)", "--model", "{model}"], "defaultModel": "sonnet"\(health)}}}
        """
        var options = LocalCluster.Options()
        options.workers = workers
        options.slots = slots
        options.dataDir = dir
        options.clusterFile = try ClusterFile.parse(Data(config.utf8))
        let cluster = try LocalCluster(options, logger: Logger(label: "test"))
        let client = try SwarmClient(address: cluster.address, token: nil)
        // Wait until the workers are registered and their runtimes healthy.
        for _ in 0..<3_000 {
            let nodes = try client.listNodes()
            let ready = nodes.count == workers && nodes.allSatisfy { node in
                node.runtimes.allSatisfy { $0.healthy || $0.failed > 0 }
            }
            if ready { break }
            usleep(10_000)
        }
        return (cluster, client, dir)
    }

    static func finish(_ cluster: LocalCluster, _ dir: String) {
        let leaks = cluster.stop()
        #expect(leaks.isEmpty)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Replays a `FAKE_MARKS` file ("S time" at each start, "E time" at each end; ends sort
    /// before starts at the same instant): how many marks, and the most processes alive at once.
    static func replayMarks(_ path: String) throws -> (events: Int, peak: Int) {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let events = lines.compactMap { line -> (Int, Int)? in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let t = Int(parts[1]) else { return nil }
            return (t, parts[0] == "S" ? 1 : -1)
        }.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var running = 0, peak = 0
        for (_, delta) in events { running += delta; peak = max(peak, running) }
        return (events.count, peak)
    }

    static func agentTask(_ id: String, env: [String: String] = [:], _ tweak: (inout TaskSpec) -> Void = { _ in }) -> TaskSpec {
        var spec = TaskSpec(id: id, env: env, runtime: "fake", prompt: "say hi")
        tweak(&spec)
        return spec
    }

    /// Pids of live or zombie processes whose process group is `pgid`.
    static func groupMembers(_ pgid: Int) -> [Int] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            return fields.count > 2 && Int(fields[2]) == pgid
        }
    }

    @Test func agentGetsPromptModelEnvironmentAndLazyContext() throws {
        let (cluster, client, dir) = try Self.cluster()
        defer { Self.finish(cluster, dir) }
        let big = JSONValue.object(["notes": .string(String(repeating: "x", count: 600))])
        let id1 = try client.submit(Self.agentTask("ctx-big") { $0.model = "opus"; $0.context = big; $0.parent = "root-1"; $0.requirements = ["be brief"] })
        let id2 = try client.submit(Self.agentTask("ctx-small") { $0.context = .object(["k": .string("v")]) })
        let infos = try client.wait([id1, id2])
        let bigInfo = try client.status(id1), small = try client.status(id2)
        #expect(infos.allSatisfy { $0.state == .succeeded })
        let out = bigInfo.output ?? ""
        #expect(out.contains("model=opus"))
        #expect(out.contains("prompt=say hi"))
        #expect(out.contains("- be brief"))
        #expect(bigInfo.metrics.contextMode == "file")
        let file = try #require(bigInfo.metrics.contextFile)
        #expect(file.hasSuffix("/ctx-big/.swarm/context/ctx-big.json"))
        #expect(out.contains("context=\(file)"))
        #expect(out.contains("parent=root-1"))
        #expect(out.contains("model=opus scheduler=127.0.0.1:"))
        #expect(out.contains("Context: ") && out.contains(file))
        let written = try JSONValue.parse(String(contentsOfFile: file, encoding: .utf8))
        #expect(written == big)
        #expect(bigInfo.metrics.model == "opus")
        #expect(bigInfo.metrics.runtime == "fake")
        #expect(bigInfo.metrics.complexity == "simple")
        // Small context is inlined; the default model is used.
        #expect(small.metrics.contextMode == "inline")
        #expect(small.output?.contains("{\"k\":\"v\"}") == true)
        #expect(small.output?.contains("model=sonnet") == true)
        // The log is where it is documented to be (results are in the worker's run journal
        // until acknowledged, then only the scheduler's: no result file).
        let node = try #require(bigInfo.node)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/\(node)/results/ctx-big.json"))
        #expect(bigInfo.metrics.logFile == "\(dir)/\(node)/logs/ctx-big.stream.txt")
        let log = try String(contentsOfFile: "\(dir)/\(node)/logs/ctx-big.stream.txt", encoding: .utf8)
        #expect(log.contains("stdout") && log.contains("model=opus"))
    }

    @Test func resultsCarryOrderedMicrosecondSpawnFirstOutputAndExitTimes() throws {
        let (cluster, client, dir) = try Self.cluster()
        defer { Self.finish(cluster, dir) }
        let before = unixMicros()
        let id = try client.submit(TaskSpec(id: "timed", command: ["sh", "-c", "sleep 0.3; echo hi; sleep 0.3"]))
        let info = try #require(try client.wait([id]).first)
        let after = unixMicros()
        #expect(info.state == .succeeded)
        let started = try #require(info.metrics.startedAtUs)
        let firstOutput = try #require(info.metrics.firstOutputAtUs)
        let exited = try #require(info.metrics.exitedAtUs)
        #expect(before <= started && started < firstOutput && firstOutput < exited && exited <= after)
        #expect(firstOutput - started >= 150_000, "0.3 s of sleep before the first output (half of it allows for a loaded machine)")
        #expect(exited - firstOutput >= 150_000)
        // A task that prints nothing has no first-output time.
        let quiet = try client.submit(TaskSpec(id: "quiet-timed", command: ["true"]))
        let quietInfo = try #require(try client.wait([quiet]).first)
        #expect(quietInfo.metrics.startedAtUs != nil && quietInfo.metrics.exitedAtUs != nil)
        #expect(quietInfo.metrics.firstOutputAtUs == nil)
    }

    @Test func silenceWarnsThenKills() throws {
        let (cluster, client, dir) = try Self.cluster()
        defer { Self.finish(cluster, dir) }
        let id = try client.submit(Self.agentTask("quiet", env: ["FAKE_SILENCE": "30"]) {
            $0.silenceWarn = 0.3; $0.silenceKill = 0.8; $0.killGrace = 0.5; $0.timeout = 20
        })
        let info = try #require(try client.wait([id]).first)
        #expect(info.state == .silenceKilled)
        #expect(info.reason?.contains("no output for") == true)
        #expect(info.metrics.silenceWarnings == 1)
        let stats = try client.stats()
        #expect(stats.cluster.totals.silenceKills == 1)
        #expect(stats.cluster.byModel["sonnet"]?.failedByReason["silence_killed"] == 1)
        #expect(stats.cluster.byModel["sonnet"]?.silenceWarnings == 1)
        #expect(stats.workers["worker-1"]?.totals.completed == 1)
    }

    @Test func progressEarnsExtensionsUpToTheMaximum() throws {
        let (cluster, client, dir) = try Self.cluster()
        defer { Self.finish(cluster, dir) }
        // Prints every 0.1 s for 3 s, each line a burst of its own (a 0.05 s gap, scaled down
        // like the rest): always in progress, so only the maximum stops it.
        let busy = try client.submit(Self.agentTask("busy", env: ["FAKE_BURSTS": "30"]) {
            $0.timeout = 0.6; $0.maxTimeout = 1.5; $0.extendBy = 0.4; $0.extendWithin = 0.3; $0.activityWindow = 0.3
            $0.burstGap = 0.05
            $0.killGrace = 0.5
        })
        // Silent from the start: no progress, so no extension, whatever the maximum.
        let stuck = try client.submit(Self.agentTask("stuck", env: ["FAKE_SILENCE": "30", "FAKE_QUIET": "1"]) {
            $0.timeout = 0.6; $0.maxTimeout = 5; $0.extendWithin = 0.3; $0.activityWindow = 0.2; $0.killGrace = 0.5
            $0.silenceKill = 60
        })
        let b = try client.wait([busy])[0], s = try client.wait([stuck])[0]
        #expect(b.state == .timedOut)
        #expect(b.metrics.extensions >= 2)
        #expect(b.metrics.initialTimeoutMs == 600)
        #expect(b.metrics.finalTimeoutMs == 1500)
        #expect(s.state == .timedOut)
        #expect(s.metrics.extensions == 0)
        #expect(s.metrics.finalTimeoutMs == 600)
        // The reason names the limit: no output near the deadline, not a vague "no progress".
        #expect(s.reason?.contains("no output in the last 0.2 s before the 0.6 s deadline") == true, "\(s.reason ?? "")")
        #expect(b.reason?.contains("reached --max-timeout 1.5 s") == true, "\(b.reason ?? "")")
    }

    @Test func agentIgnoringTermIsKilledWithItsGrandchildren() throws {
        let (cluster, client, dir) = try Self.cluster()
        defer { Self.finish(cluster, dir) }
        let id = try client.submit(Self.agentTask("stubborn", env: ["FAKE_IGNORE_TERM": "1", "FAKE_GRANDCHILDREN": "2", "FAKE_SILENCE": "60", "FAKE_QUIET": "1"]) {
            $0.timeout = 0.5; $0.killGrace = 1; $0.silenceKill = 60
        })
        for _ in 0..<3_000 where try client.status(id).startedAt == nil { usleep(10_000) }
        let started = try client.status(id)
        let pgid = try #require(try? client.wait([id])[0])
        let info = try client.status(id)
        #expect(pgid.state == .timedOut)
        #expect(info.reason?.contains("timed out") == true)
        // Gone within timeout + grace + 1 s of its start, with its whole group, zombies too.
        let startedAt = try #require(started.startedAt), finishedAt = try #require(info.finishedAt)
        #expect(finishedAt - startedAt <= 500 + 1_000 + 1_000)
        let node = try #require(info.node)
        // Its pid from its log's start line (the kill made the log, though it printed nothing).
        let logPath = "\(dir)/\(node)/logs/stubborn.stream.txt"
        // The result leaves before the worker writes its files (its log's last line included):
        // `wait` may return first. Bounded wait for that line, then read.
        for _ in 0..<500 where (try? String(contentsOfFile: logPath, encoding: .utf8))?.contains("result: timed_out") != true {
            usleep(10_000)
        }
        let log = try String(contentsOfFile: logPath, encoding: .utf8)
        let startLine = try #require(log.split(separator: "\n").first { $0.contains("swarm  started pid ") })
        let pid = try #require(Int(startLine.split(separator: "started pid ")[1].prefix { $0.isNumber }))
        #expect(Self.groupMembers(pid).isEmpty)
        #expect(log.contains("result: timed_out"))
    }

    @Test func slowHealthProbesHoldSlotsSoTheLimitIsNeverExceeded() throws {
        let marks = NSTemporaryDirectory() + "swarm-marks-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: marks) }
        let probe = "echo S $(date +%s%N) >> \(marks); sleep 0.3; echo E $(date +%s%N) >> \(marks); echo ready"
        let health = #", "health": {"command": ["sh", "-c", "\#(probe)"], "expect": "ready", "intervalSeconds": 0.4}"#
        let (cluster, client, dir) = try Self.cluster(slots: 2, health: health)
        defer { Self.finish(cluster, dir) }
        let specs = (0..<50).map { i in
            Self.agentTask("slot-\(i)", env: ["FAKE_MARKS": marks, "FAKE_BURSTS": "1", "FAKE_BURST_GAP": "0.05"])
        }
        let ids = try specs.map { try client.submit($0) }
        let infos = try client.wait(ids)
        #expect(infos.allSatisfy { $0.state == .succeeded })
        // Replay the start/end marks of agents and probes: never more than 2 at once.
        let (events, peak) = try Self.replayMarks(marks)
        #expect(peak <= 2)
        #expect(peak >= 1)
        let status = try #require(try client.listNodes().first?.runtimes.first)
        // Probes ran at start and periodically while tasks ran (not once per task).
        #expect(status.passed >= 2)
        #expect(status.passed < 50)
        #expect(events >= 2 * 50 + 2 * 2)
    }

    @Test func cancelKillsARunningTaskAndDropsAQueuedOne() throws {
        let (cluster, client, dir) = try Self.cluster(slots: 1)
        defer { Self.finish(cluster, dir) }
        let running = try client.submit(TaskSpec(id: "c-run", command: ["sh", "-c", "trap '' TERM; sleep 60"]) .with { $0.killGrace = 0.3 })
        let queued = try client.submit(TaskSpec(id: "c-queued", command: ["true"]))
        for _ in 0..<3_000 where try client.status(running).startedAt == nil { usleep(10_000) }
        let q = try client.cancel(queued)
        #expect(q.state == .cancelled)
        _ = try client.cancel(running)
        let r = try client.wait([running])[0]
        #expect(r.state == .cancelled)
        #expect(r.reason?.contains("cancelled") == true)
        // Cancelling it again is not an error: the reply is its final state (issue 10, item 21).
        #expect(try client.cancel(running).state == .cancelled)
        #expect(try client.cancel("c-queued").state == .cancelled)
    }

    @Test func anAgentSubmitsChildTasksWithItsOwnCredentialNotTheClusterToken() throws {
        let dir = NSTemporaryDirectory() + "swarm-engine-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var options = LocalCluster.Options()
        options.workers = 1
        options.slots = 2
        options.dataDir = dir
        options.token = ClusterToken("engine-secret")
        let cluster = try LocalCluster(options, logger: Logger(label: "test"))
        defer { Self.finish(cluster, dir) }
        let client = try SwarmClient(address: cluster.address, token: ClusterToken("engine-secret"))
        // The agent sees no cluster token, only its task credential; its child's parent is it.
        let script = """
        test -z "$SWARM_TOKEN" || exit 9
        "$SWARM_BIN" submit --id child-1 --wait -- echo from-child || exit 7
        "$SWARM_BIN" drain worker-1 && exit 8
        exit 0
        """
        let id = try client.submit(TaskSpec(id: "parent-1", command: ["sh", "-c", script], env: ["SWARM_BIN": ProcessHarness.swarmBinary]))
        let parent = try client.wait([id])[0]
        let parentOutput = try client.status(id).output ?? ""
        #expect(parent.state == .succeeded, "\(parentOutput)")
        let child = try client.status("child-1")
        #expect(child.state == .succeeded)
        #expect(child.parent == "parent-1")
        // A wrong credential is refused.
        let forged = try? SwarmClient(address: cluster.address, token: ClusterToken("guess"), name: "task:parent-1").listTasks()
        #expect(forged == nil)
    }

    @Test func runtimeTasksGoOnlyWhereTheRuntimeIsHealthyAndTheRestSayWhyTheyWait() throws {
        let config = """
        {"runtimes": {
           "fake": {"command": ["sh", "\(Self.agent)", "--model", "{model}"], "defaultModel": "sonnet"},
           "broken": {"command": ["sh", "\(Self.agent)"], "health": {"command": ["sh", "-c", "echo no; exit 3"], "retrySeconds": 0.2}}},
         "workers": {"worker-1": {"runtimes": ["fake", "broken"]}, "worker-2": {"runtimes": ["fake"], "allowCommands": false}}}
        """
        let (cluster, client, dir) = try Self.cluster(workers: 2, slots: 2, config: config)
        defer { Self.finish(cluster, dir) }
        let nodes = try client.listNodes()
        let w1 = try #require(nodes.first { $0.name == "worker-1" }), w2 = try #require(nodes.first { $0.name == "worker-2" })
        #expect(w1.runtimes.map(\.name) == ["broken", "fake"] && w2.runtimes.map(\.name) == ["fake"])
        #expect(w1.runtimes.first { $0.name == "broken" }?.healthy == false)
        #expect(w1.runtimes.first { $0.name == "broken" }?.detail?.contains("exit") == true)
        #expect(!w2.allowsCommands)
        let ids = try (0..<6).map { i in try client.submit(Self.agentTask("h-\(i)")) }
        let plain = try (0..<3).map { i in try client.submit(TaskSpec(id: "p-\(i)", command: ["true"])) }
        let infos = try client.wait(ids + plain)
        #expect(infos.allSatisfy { $0.state == .succeeded })
        #expect(Set(infos.prefix(6).compactMap(\.node)) == ["worker-1", "worker-2"])
        #expect(infos.suffix(3).allSatisfy { $0.node == "worker-1" })
        // Unhealthy everywhere it exists: waits, and says so (it may recover).
        let sick = try client.submit(TaskSpec(id: "sick", runtime: "broken", prompt: "x"))
        // No worker has it: unplaceable, and it does not hold up what follows.
        let ghost = try client.submit(TaskSpec(id: "ghost", runtime: "ghost", prompt: "x"))
        let after = try client.submit(Self.agentTask("after"))
        #expect(try client.wait([after])[0].state == .succeeded)
        let s = try client.status(sick), g = try client.status(ghost)
        #expect(s.state == .queued && !s.unplaceable && s.waitReason?.contains("broken") == true)
        #expect(g.state == .queued && g.unplaceable && g.waitReason?.contains("ghost") == true)
        #expect(try client.cancel(sick).state == .cancelled)
        #expect(try client.cancel(ghost).state == .cancelled)
    }
}

extension TaskSpec {
    func with(_ tweak: (inout TaskSpec) -> Void) -> TaskSpec {
        var copy = self
        tweak(&copy)
        return copy
    }
}
