import Foundation
import Testing
import SwarmClient
import SwarmCluster
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `swarm spool` as a real process in front of an in-process cluster whose runtime `fake` is
/// the fake agent (issue 18, item 3: the original harness's shape, files in and out).
@Suite(.serialized) struct SpoolEndToEndTests {
    static let subAgent = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/spool-subrequest-agent.sh").path

    /// A cluster with `fake`, `slow` (2 s, then a line) and `parent` (asks the spool in `spool`
    /// for a sub-agent), plus a harness and the spool directory.
    static func setUp() throws -> (LocalCluster, SwarmClient, String, ProcessHarness, String) {
        let harness = try ProcessHarness()
        let spool = harness.dir + "/spool"
        let config = """
        {"runtimes": {
          "fake": {"command": ["sh", "\(EngineEndToEndTests.agent)", "--model", "{model}"], "defaultModel": "sonnet"},
          "slow": {"command": ["sh", "-c", "cat > /dev/null; sleep 2; echo slow done"]},
          "parent": {"command": ["sh", "\(subAgent)", "\(spool)"]}}}
        """
        let (cluster, client, dir) = try EngineEndToEndTests.cluster(slots: 4, config: config)
        return (cluster, client, dir, harness, spool)
    }

    static func startSpool(_ harness: ProcessHarness, _ dir: String, _ cluster: LocalCluster, name: String = "spool") throws -> ProcessHarness.Child {
        let child = try harness.start(name, ["spool", dir, "--runtime", "fake", "--scheduler", cluster.address])
        #expect(child.waitForLine(containing: "swarm spool serving", timeout: 30) != nil)
        return child
    }

    /// Polls (every 50 ms, at most `timeout` s) until `condition` holds.
    @discardableResult
    static func eventually(_ timeout: Double = 15, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    static func names(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func result(_ spool: String, _ id: String) -> [String: JSONValue]? {
        guard let text = try? String(contentsOfFile: "\(spool)/results/\(id).json", encoding: .utf8),
              case .object(let root)? = try? JSONValue.parse(text) else { return nil }
        return root
    }

    static func write(_ path: String, _ text: String) {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    @Test func threeRequestsDroppedAtOnceEachGetASuccessResult() throws {
        let (cluster, client, dir, harness, spool) = try Self.setUp()
        defer { harness.cleanup(); EngineEndToEndTests.finish(cluster, dir) }
        _ = try Self.startSpool(harness, spool, cluster)
        for i in 1...3 {
            Self.write("\(spool)/requests/r\(i).json", """
            {"requestId": "r\(i)", "agentRole": "coder", "task": {"objective": "say hi \(i)", "context": {"n": \(i)}, "requirements": ["be brief"]}}
            """)
        }
        #expect(Self.eventually { (1...3).allSatisfy { Self.result(spool, "r\($0)") != nil } })
        for i in 1...3 {
            let result = try #require(Self.result(spool, "r\(i)"))
            #expect(result["requestId"] == .string("r\(i)") && result["status"] == .string("success"))
            #expect(result["exitCode"] == .number(0) && result["failureReason"] == .null)
            guard case .string(let output)? = result["output"], case .object(let stats)? = result["stats"],
                  case .object(let swarm)? = result["swarm"] else { Issue.record("shape: \(result)"); continue }
            #expect(output.contains("prompt=say hi \(i)") && output.contains("- be brief") && output.contains(#"{"n":\#(i)}"#))
            #expect(stats["contextMode"] == .string("inline") && stats["contextSizeChars"] == .number(7))
            #expect(stats["totalOutputBytes"] != .number(0) && stats["complexity"] == .string("simple"))
            #expect(swarm["state"] == .string("succeeded") && swarm["attempts"] == .number(1) && swarm["node"] != .null)
            #expect(try client.status("r\(i)").labels == ["agentRole": "coder"])
        }
        #expect(Self.eventually(5) { Self.names("\(spool)/done") == ["r1.json", "r2.json", "r3.json"] })
        #expect(Self.names("\(spool)/requests").isEmpty && Self.names("\(spool)/processing").isEmpty)
        // The same id again: rejected, and the first result stays as it was.
        let before = try String(contentsOfFile: "\(spool)/results/r1.json", encoding: .utf8)
        Self.write("\(spool)/requests/again.json", #"{"requestId": "r1", "task": {"objective": "other"}}"#)
        #expect(Self.eventually { Self.names("\(spool)/rejected") == ["again.json", "again.json.error"] })
        let reason = try String(contentsOfFile: "\(spool)/rejected/again.json.error", encoding: .utf8)
        #expect(reason.hasPrefix("reused id"))
        #expect(try String(contentsOfFile: "\(spool)/results/r1.json", encoding: .utf8) == before)
    }

    @Test func aRequestWrittenSlowlyInThreePiecesIsReadWhole() throws {
        let (cluster, _, dir, harness, spool) = try Self.setUp()
        defer { harness.cleanup(); EngineEndToEndTests.finish(cluster, dir) }
        _ = try Self.startSpool(harness, spool, cluster)
        let text = #"{"requestId": "slowly", "task": {"objective": "say hi", "requirements": ["written in pieces"]}}"#
        let cut = text.index(text.startIndex, offsetBy: text.count / 3)
        let cut2 = text.index(cut, offsetBy: text.count / 3)
        let handle = try #require(FileHandle(forWritingAtPath: { Self.write("\(spool)/requests/slowly.json", ""); return "\(spool)/requests/slowly.json" }()))
        for piece in [text[..<cut], text[cut..<cut2], text[cut2...]] {
            handle.write(Data(piece.utf8))
            usleep(300_000)
        }
        try handle.close()
        #expect(Self.eventually { Self.result(spool, "slowly") != nil })
        #expect(Self.result(spool, "slowly")?["status"] == .string("success"))
        #expect(Self.names("\(spool)/rejected").isEmpty)
    }

    @Test func malformedJSONAndADotDotIdAreRejectedWithAReason() throws {
        let (cluster, client, dir, harness, spool) = try Self.setUp()
        defer { harness.cleanup(); EngineEndToEndTests.finish(cluster, dir) }
        _ = try Self.startSpool(harness, spool, cluster)
        Self.write("\(spool)/requests/bad.json", #"{"requestId": "bad", "task": {"objective": "#)
        Self.write("\(spool)/requests/evil.json", #"{"requestId": "../evil", "task": {"objective": "escape"}}"#)
        #expect(Self.eventually { Self.names("\(spool)/rejected").count == 4 })
        #expect(Self.names("\(spool)/rejected") == ["bad.json", "bad.json.error", "evil.json", "evil.json.error"])
        let bad = try String(contentsOfFile: "\(spool)/rejected/bad.json.error", encoding: .utf8)
        let evil = try String(contentsOfFile: "\(spool)/rejected/evil.json.error", encoding: .utf8)
        #expect(bad.hasPrefix("invalid JSON"))
        #expect(evil.hasPrefix("invalid requestId") && evil.contains("A-Z a-z 0-9 . _ -"))
        // The files are kept as they were; nothing was submitted or written outside the spool.
        #expect(try String(contentsOfFile: "\(spool)/rejected/bad.json", encoding: .utf8).hasSuffix(#""objective": "#))
        #expect(Self.names("\(spool)/results").isEmpty && !FileManager.default.fileExists(atPath: "\(spool)/evil.json"))
        #expect(try client.listTasks().isEmpty)
    }

    @Test func aSpoolKilledWithSIGKILLResumesWithOneResultPerRequest() throws {
        let (cluster, client, dir, harness, spool) = try Self.setUp()
        defer { harness.cleanup(); EngineEndToEndTests.finish(cluster, dir) }
        let first = try Self.startSpool(harness, spool, cluster, name: "spool-1")
        // One without requestId: its generated id must come out the same after the restart.
        for i in 1...2 {
            Self.write("\(spool)/requests/k\(i).json", #"{"requestId": "k\#(i)", "runtime": "slow", "task": {"objective": "wait"}}"#)
        }
        Self.write("\(spool)/requests/anon.json", #"{"runtime": "slow", "task": {"objective": "wait"}}"#)
        #expect(Self.eventually { (try? client.listTasks().count) == 3 && Self.names("\(spool)/processing").count == 3 })
        kill(first.pid, SIGKILL)
        first.process.waitUntilExit()
        #expect(Self.names("\(spool)/results").isEmpty)
        _ = try Self.startSpool(harness, spool, cluster, name: "spool-2")
        #expect(Self.eventually(20) { Self.names("\(spool)/results").count == 3 && Self.names("\(spool)/done").count == 3 })
        let tasks = try client.listTasks()
        #expect(tasks.count == 3 && tasks.allSatisfy { $0.state == .succeeded && $0.attempts == 1 })
        let ids = tasks.map(\.id).sorted()
        #expect(Self.names("\(spool)/results") == ids.map { $0 + ".json" })
        #expect(ids.contains("k1") && ids.contains("k2") && ids.contains { $0.hasPrefix("req-") })
        #expect(Self.names("\(spool)/processing").isEmpty && Self.names("\(spool)/rejected").isEmpty)
        #expect(Self.result(spool, "k1")?["output"].map { "\($0)".contains("slow done") } == true)
    }

    @Test func anAgentsSubRequestThroughTheSpoolGetsItsResultFile() throws {
        let (cluster, client, dir, harness, spool) = try Self.setUp()
        defer { harness.cleanup(); EngineEndToEndTests.finish(cluster, dir) }
        _ = try Self.startSpool(harness, spool, cluster)
        Self.write("\(spool)/requests/top.json.tmp", #"{"requestId": "top", "runtime": "parent", "task": {"objective": "delegate"}}"#)
        #expect(rename("\(spool)/requests/top.json.tmp", "\(spool)/requests/top.json") == 0)
        #expect(Self.eventually(20) { Self.result(spool, "top") != nil })
        let top = try #require(Self.result(spool, "top"))
        #expect(top["status"] == .string("success"))
        guard case .string(let output)? = top["output"] else { Issue.record("\(top)"); return }
        #expect(output.contains("sub result:") && output.contains(#""requestId" : "top-sub""#) && output.contains(#""status" : "success""#))
        #expect(Self.result(spool, "top-sub")?["status"] == .string("success"))
        #expect(try client.status("top-sub").parent == "top")
    }

    @Test func usageErrorsAndASecondSpoolOnOneDirectoryAreRefused() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let spool = harness.dir + "/spool"
        #expect(try harness.run(["spool"]).status == 64)
        let badRuntime = try harness.run(["spool", spool, "--runtime", "a b"])
        #expect(badRuntime.status == 64 && badRuntime.stderr.contains("invalid runtime name"))
        // Serving starts before the scheduler answers (it is dialled again every 2 s).
        let first = try harness.start("spool", ["spool", spool, "--scheduler", "127.0.0.1:1"])
        #expect(first.waitForLine(containing: "swarm spool serving", timeout: 30) != nil)
        let second = try harness.run(["spool", spool, "--scheduler", "127.0.0.1:1"], timeout: 10)
        #expect(second.status == 2 && second.stderr.contains("another swarm spool serves"))
        #expect(Self.names(spool) == ["done", "processing", "rejected", "requests", "results"])
    }

    @Test func aReadOnlyTokenStopsTheSpoolAndRejectsNothing() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let spool = harness.dir + "/spool"
        for role in ["cluster", "read"] {
            try "\(role)-token-\(UInt64.random(in: 0...UInt64.max))\n".write(toFile: "\(harness.dir)/\(role).token", atomically: true, encoding: .utf8)
        }
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--state-dir", "\(harness.dir)/state",
                                                        "--token-file", "\(harness.dir)/cluster.token", "--read-token-file", "\(harness.dir)/read.token"])
        let address = String(try #require(scheduler.waitForLine(containing: "listening on")?.split(separator: " ").last))
        let reader = try harness.start("spool", ["spool", spool, "--scheduler", address, "--token-file", "\(harness.dir)/read.token"])
        #expect(reader.waitForLine(containing: "swarm spool serving", timeout: 30) != nil)
        Self.write("\(spool)/requests/r.json", #"{"requestId": "r", "task": {"objective": "x"}}"#)
        #expect(Self.eventually { !reader.process.isRunning })
        reader.process.waitUntilExit()
        #expect(reader.process.terminationStatus == 2)
        let log = (try? String(contentsOfFile: "\(harness.dir)/spool.log", encoding: .utf8)) ?? ""
        #expect(log.contains("may only read"), "\(log)")
        // The request waits in processing/ for a spool that may submit; it is not rejected.
        #expect(Self.names("\(spool)/processing") == ["r.json"] && Self.names("\(spool)/rejected").isEmpty)
    }
}
