import Foundation
import Testing
import SwarmClient
import SwarmProtocol

/// The original coordinator's request JSON -> `TaskSpec`, and an ended task -> its result
/// JSON (issue 18).
@Suite struct SpoolMappingTests {
    static let defaults = SpoolRequest.Defaults(runtime: "claude", model: nil)

    static func parse(_ json: String, name: String = "a.json", mtimeMs: Int64 = 1_700_000_000_000,
                      defaults: SpoolRequest.Defaults = defaults) throws(SpoolRejection) -> SpoolRequest {
        try SpoolRequest.parse(Array(json.utf8), fileName: name, mtimeMs: mtimeMs, defaults: defaults)
    }

    static func rejection(_ json: String) -> String? {
        do { _ = try parse(json); return nil } catch { return error.reason }
    }

    @Test func everyFieldOfTheOriginalMaps() throws {
        let request = try Self.parse("""
        {"requestId": "req-1-abcdef", "agentRole": "researcher", "parentRequestId": "req-0-parent",
         "task": {"objective": "find the bug", "context": {"files": ["a.c"], "n": 9007199254740993},
                  "requirements": ["be brief", "cite lines"]},
         "model": "opus", "runtime": "fake", "timeout": 90, "createdAt": "ignored"}
        """)
        #expect(request.id == "req-1-abcdef" && !request.generatedId)
        let spec = request.spec
        #expect(spec.id == "req-1-abcdef")
        #expect(spec.labels == ["agentRole": "researcher"])
        #expect(spec.parent == "req-0-parent")
        #expect(spec.objective == "find the bug" && spec.prompt == nil)
        #expect(spec.requirements == ["be brief", "cite lines"])
        #expect(spec.context?.serialized == #"{"files":["a.c"],"n":9007199254740993}"#)
        #expect(request.contextChars == spec.context?.serialized.count)
        #expect(spec.model == "opus" && spec.runtime == "fake" && spec.timeout == 90)
        #expect(spec.command.isEmpty && spec.problem() == nil)
    }

    @Test func theSpoolsDefaultsFillWhatTheRequestLeavesOut() throws {
        let request = try Self.parse(#"{"requestId": "r", "task": {"objective": "x"}}"#,
                                     defaults: .init(runtime: "fake", model: "sonnet"))
        #expect(request.spec.runtime == "fake" && request.spec.model == "sonnet")
        #expect(request.spec.labels == nil && request.spec.parent == nil && request.spec.timeout == nil)
        #expect(request.contextChars == 0)
    }

    @Test func anAbsentIdIsGeneratedTheSameForTheSameFile() throws {
        let json = #"{"task": {"objective": "x"}}"#
        let first = try Self.parse(json, name: "a.json", mtimeMs: 1_700_000_000_123)
        let again = try Self.parse(json, name: "a.json", mtimeMs: 1_700_000_000_123)
        let other = try Self.parse(json, name: "b.json", mtimeMs: 1_700_000_000_123)
        #expect(first.generatedId && first.id == again.id && first.id != other.id)
        #expect(first.id.wholeMatch(of: /req-1700000000123-[a-z0-9]{6}/) != nil)
        #expect(TaskID.problem(with: first.id) == nil)
    }

    @Test func badRequestsSayWhy() {
        #expect(Self.rejection("{\"requestId\": \"x\", \"task\": {\"objective\": ")?.hasPrefix("invalid JSON") == true)
        #expect(Self.rejection("[1, 2]") == "invalid request: the JSON is not an object")
        #expect(Self.rejection(#"{"requestId": "../etc/passwd", "task": {"objective": "x"}}"#)?.hasPrefix("invalid requestId") == true)
        #expect(Self.rejection(#"{"requestId": "a/b", "task": {"objective": "x"}}"#)?.hasPrefix("invalid requestId") == true)
        #expect(Self.rejection(#"{"requestId": "..", "task": {"objective": "x"}}"#)?.hasPrefix("invalid requestId") == true)
        #expect(Self.rejection(#"{"requestId": 7, "task": {"objective": "x"}}"#) == "invalid request: requestId must be a string")
        #expect(Self.rejection(#"{"parentRequestId": "../p", "task": {"objective": "x"}}"#)?.hasPrefix("invalid parentRequestId") == true)
        #expect(Self.rejection(#"{"task": {"objective": "x", "requirements": [1]}}"#) == "invalid request: task.requirements must be an array of strings")
        #expect(Self.rejection(#"{"task": {}}"#)?.contains("task.objective is missing") == true)
        #expect(Self.rejection(#"{"task": {"objective": "x"}, "timeout": "soon"}"#) == "invalid request: timeout must be a number of seconds")
        #expect(Self.rejection(#"{"task": {"objective": "x"}, "timeout": -1}"#)?.hasPrefix("invalid request: timeout") == true)
        #expect(Self.rejection(#"{"task": {"objective": "x"}, "runtime": "a b"}"#)?.contains("invalid runtime") == true)
        let big = "{\"task\": {\"objective\": \"" + String(repeating: "x", count: SpoolRequest.maxBytes) + "\"}}"
        #expect(Self.rejection(big)?.contains("the most a request may have is 1048576") == true)
        #expect((try? SpoolRequest.parse([0xFF, 0xFE], fileName: "a", mtimeMs: 0, defaults: Self.defaults)) == nil)
    }

    @Test func aResultHasTheOriginalsKeysAndSwarmsOwn() throws {
        var info = TaskInfo(id: "r1", state: .succeeded, command: [], node: "w1", exitCode: 0, attempts: 1,
                            submittedAt: 1_000, placedAt: 1_010, startedAt: 1_030, finishedAt: 2_030, output: "done\n")
        info.metrics.contextMode = "inline"
        info.metrics.complexity = "moderate"
        info.metrics.complexityScore = 4
        info.metrics.initialTimeoutMs = 120_000
        info.metrics.finalTimeoutMs = 180_000
        info.metrics.extensions = 1
        info.metrics.outputBytes = 5
        info.metrics.outputBursts = 2
        info.metrics.timeToFirstOutputMs = 7
        info.metrics.runtime = "fake"
        info.metrics.model = "sonnet"
        let json = try JSONValue.parse(String(decoding: SpoolResult.bytes(for: info, contextChars: 42), as: UTF8.self))
        guard case .object(let root) = json, case .object(let stats)? = root["stats"], case .object(let swarm)? = root["swarm"] else {
            Issue.record("not the result shape: \(json)"); return
        }
        #expect(Set(root.keys) == ["requestId", "status", "output", "durationMs", "exitCode", "failureReason", "stats", "swarm"])
        #expect(root["requestId"] == .string("r1") && root["status"] == .string("success") && root["output"] == .string("done\n"))
        #expect(root["durationMs"] == .number(1_000) && root["exitCode"] == .number(0) && root["failureReason"] == .null)
        #expect(stats == ["contextMode": .string("inline"), "contextSizeChars": .number(42), "complexity": .string("moderate"),
                          "complexityScore": .number(4), "initialTimeoutMs": .number(120_000), "finalTimeoutMs": .number(180_000),
                          "extensionsApplied": .number(1), "startupLatencyMs": .number(20), "totalOutputBytes": .number(5),
                          "outputBursts": .number(2), "timeToFirstOutputMs": .number(7)])
        #expect(swarm == ["node": .string("w1"), "attempts": .number(1), "state": .string("succeeded"), "reason": .null,
                          "signal": .null, "runtime": .string("fake"), "model": .string("sonnet")])
    }

    @Test func aTaskThatDidNotSucceedFailsWithItsReason() throws {
        var info = TaskInfo(id: "r2", state: .timedOut, command: [], signal: 15, reason: "timed out after 3 s", attempts: 2,
                            submittedAt: 0, placedAt: 5, startedAt: nil, finishedAt: 50)
        info.output = String(repeating: "a", count: 70_000) + "é" + "end"
        let json = SpoolResult.json(for: info, contextChars: 0)
        guard case .object(let root) = json, case .string(let output)? = root["output"] else { Issue.record("\(json)"); return }
        #expect(root["status"] == .string("failed") && root["failureReason"] == .string("timed out after 3 s"))
        #expect(root["exitCode"] == .null && root["durationMs"] == .number(45))
        #expect(output.utf8.count <= SpoolResult.maxOutputBytes && output.hasSuffix("éend"))
        let cancelled = TaskInfo(id: "r3", state: .cancelled, command: [], submittedAt: 0, finishedAt: 1)
        guard case .object(let other) = SpoolResult.json(for: cancelled, contextChars: 0) else { return }
        #expect(other["failureReason"] == .string("cancelled") && other["durationMs"] == .number(1))
    }

    @Test func theOutputKeepsItsLast64KiBOnACharacterBoundary() {
        let text = String(repeating: "é", count: 40_000)  // 80,000 bytes
        let tail = SpoolResult.tail(text)
        #expect(tail.utf8.count <= 65_536 && tail.utf8.count >= 65_535 && tail.allSatisfy { $0 == "é" })
        #expect(SpoolResult.tail("short") == "short")
    }
}
