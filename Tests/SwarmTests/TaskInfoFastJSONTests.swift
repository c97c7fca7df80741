import Foundation
import Testing
@testable import SwarmProtocol

/// `TaskInfo`'s hand-written `FastJSONEncoder` path (the scheduler's store rows, issue 17)
/// writes exactly the bytes of its keyed `encode(to:)`, and reads back as the same info.
@Suite struct TaskInfoFastJSONTests {
    /// The keyed path through the same encoder, for comparison.
    struct Keyed: Encodable {
        let info: TaskInfo
        func encode(to encoder: Encoder) throws { try info.encodeKeyed(to: encoder) }
    }

    static var minimal: TaskInfo { TaskInfo(id: "t-1", state: .queued, command: [], submittedAt: 0) }

    static var full: TaskInfo {
        let tricky = FastJSONEncoderTests.tricky
        var info = TaskInfo(id: "t.2_x", state: .succeeded, command: ["sh", "-c", tricky, ""], node: "w-1", exitCode: -1,
                            signal: 9, reason: tricky, attempts: 3, submittedAt: Int64.min, placedAt: Int64.max,
                            startedAt: 0, finishedAt: 1_764_000_000_123, output: tricky)
        info.parent = "p"
        info.priority = -7
        info.labels = ["team": "x", "q": tricky]
        info.secretEnv = ["TOKEN": TaskInfo.hiddenValue]
        info.after = ["a-1", "a.2"]
        info.afterAny = []
        info.waitReason = "waiting"
        info.unplaceable = true
        info.artifacts = [ArtifactRef(path: "out/a.txt", size: 12, sha256: String(repeating: "a", count: 64), kind: "file", mode: 0o644)]
        info.skippedArtifacts = [SkippedArtifact(path: "big", size: nil, reason: "too big")]
        info.git = GitOutcome(branch: "swarm/t", base: "abc", head: "def", commits: 2)
        info.runs = [TaskRun(attempt: 1, node: "w-1", state: .failed, exitCode: 1), TaskRun(attempt: 2, node: nil)]
        var m = RunMetrics()
        m.node = "w-1"
        m.runtime = "claude"
        m.model = "opus"
        m.complexity = "moderate"
        m.complexityScore = 4
        m.initialTimeoutMs = 1
        m.finalTimeoutMs = 2
        m.extensions = 3
        m.silenceWarnings = 4
        m.outputBytes = 5
        m.outputBursts = 6
        m.timeToFirstOutputMs = 7
        m.firstOutputAt = 8
        m.contextMode = "file"
        m.contextFile = tricky
        m.workDir = "/w"
        m.logFile = "/l"
        m.startedAtUs = 9
        m.firstOutputAtUs = 10
        m.exitedAtUs = 11
        m.runMs = 16
        m.prepareMs = 12
        m.inputBytesFetched = 13
        m.collectMs = 14
        m.worktreeMs = 15
        m.worktreeReused = false
        info.metrics = m
        return info
    }

    @Test(arguments: [minimal, full])
    func sameBytesAsTheKeyedPathAndReadsBack(_ info: TaskInfo) throws {
        let fast = try FastJSONEncoder().encode(info)
        let keyed = try FastJSONEncoder().encode(Keyed(info: info))
        #expect(String(decoding: fast, as: UTF8.self) == String(decoding: keyed, as: UTF8.self))
        #expect(try FastJSONDecoder().decode(TaskInfo.self, from: fast) == info)
        #expect(try JSONDecoder().decode(TaskInfo.self, from: Data(fast)) == info)
        // Foundation's encoder still takes the keyed path: the same keys and values.
        #expect(try JSONDecoder().decode(TaskInfo.self, from: JSONEncoder().encode(info)) == info)
    }

    /// Nested in a reply and in an array (a listing), the fast path keeps its neighbours intact.
    @Test func nestedInAReplyAndAList() throws {
        let reply = Message.TaskInfoReply(requestId: 7, task: Self.full)
        let bytes = try FastJSONEncoder().encode(reply)
        #expect(try FastJSONDecoder().decode(Message.TaskInfoReply.self, from: bytes) == reply)
        let list = [Self.full, Self.minimal, Self.full]
        let listBytes = try FastJSONEncoder().encode(list)
        #expect(try JSONDecoder().decode([TaskInfo].self, from: Data(listBytes)) == list)
        #expect(String(decoding: listBytes, as: UTF8.self)
                == String(decoding: try FastJSONEncoder().encode(list.map { Keyed(info: $0) }), as: UTF8.self))
    }

    /// `TaskResult`'s fast path (every `taskFinished` frame and journal record of a worker).
    struct KeyedResult: Encodable {
        let result: TaskResult
        func encode(to encoder: Encoder) throws { try result.encodeKeyed(to: encoder) }
    }

    static var minimalResult: TaskResult {
        TaskResult(id: "t-1", state: .succeeded, exitCode: nil, signal: nil, reason: nil, output: "", pid: nil,
                   attempt: 1, startedAt: nil, finishedAt: 0)
    }

    static var fullResult: TaskResult {
        let tricky = FastJSONEncoderTests.tricky
        var result = TaskResult(id: "t.2_x", state: .failed, exitCode: -1, signal: 9, reason: tricky, output: tricky,
                                pid: 4_194_304, attempt: 3, startedAt: Int64.min, finishedAt: Int64.max)
        result.submittedAt = 1
        result.placedAt = 2
        result.artifacts = full.artifacts
        result.skippedArtifacts = full.skippedArtifacts
        result.git = full.git
        result.metrics = full.metrics
        return result
    }

    @Test(arguments: [minimalResult, fullResult])
    func resultSameBytesAsTheKeyedPathAndReadsBack(_ result: TaskResult) throws {
        let fast = try FastJSONEncoder().encode(result)
        let keyed = try FastJSONEncoder().encode(KeyedResult(result: result))
        #expect(String(decoding: fast, as: UTF8.self) == String(decoding: keyed, as: UTF8.self))
        #expect(try FastJSONDecoder().decode(TaskResult.self, from: fast) == result)
        #expect(try JSONDecoder().decode(TaskResult.self, from: Data(fast)) == result)
        #expect(try JSONDecoder().decode(TaskResult.self, from: JSONEncoder().encode(result)) == result)
        // In its frame, next to the message's type.
        let frame = MessageCodec.encode(.taskFinished(.init(result: result)))
        guard case .taskFinished(let back) = try MessageCodec.decode(frame) else {
            Issue.record("not a taskFinished")
            return
        }
        #expect(back.result == result)
    }
}
