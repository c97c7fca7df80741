import Foundation
import Testing
@testable import SwarmProtocol

/// `FastJSONEncoder` against Foundation's `JSONEncoder`: same keys, same values, decodable.
@Suite struct FastJSONEncoderTests {
    static let tricky = "quote \" backslash \\ slash / newline \n tab \t cr \r bell \u{7} nul \u{0} é 日本 🐝"

    static var fullSpec: TaskSpec {
        var spec = TaskSpec(id: "s-1", command: [], env: ["PATH": "/bin", "Q": tricky], runtime: "claude",
                            model: "opus", prompt: tricky)
        spec.objective = "obj"
        spec.context = .object(["a": .array([.number(1.5), .number(-2), .number(1e-7), .number(3e20), .null,
                                             .bool(true), .string(tricky)]), "b": .object([:]), "c": .array([])])
        spec.requirements = ["x", "y"]
        spec.complexity = "moderate"
        spec.timeout = 12.25
        spec.maxTimeout = 100
        spec.extendBy = 0.1
        spec.extendWithin = 5
        spec.activityWindow = 30
        spec.minBursts = 2
        spec.burstGap = 0.75
        spec.silenceWarn = 60
        spec.silenceKill = 120.5
        spec.killGrace = 0.001
        spec.labels = ["team": "x"]
        spec.parent = "p-1"
        spec.constraints = ["gpu": "yes"]
        spec.priority = -7
        spec.after = ["a-1", "a.2"]
        spec.afterAny = ["b_3"]
        return spec
    }

    static var fullResult: TaskResult {
        var result = MessageCodingTests.result
        result.output = tricky
        result.submittedAt = Int64.min
        result.placedAt = Int64.max
        result.metrics.node = "w1"
        result.metrics.complexityScore = 4
        result.metrics.extensions = 3
        result.metrics.workDir = "/tmp/w/a b"
        result.metrics.exitedAtUs = 1_700_000_000_000_000
        return result
    }

    static var stats: StatsBlock {
        var block = StatsBlock()
        block.totals.completed = 5
        block.totals.failedByReason = ["timeout": 2]
        block.byModel = ["opus": block.totals]
        block.health = ["claude": HealthStats(healthy: true, passed: 1, failed: 0, lastLatencyMs: 5, meanLatencyMs: nil)]
        block.process = ProcessUsage(pid: 1, cpuUserMs: 2, cpuSystemMs: 3, maxRssKiB: 4, at: 5)
        return block
    }

    /// Every case the sample list of `MessageCodingTests` lacks, and richer values.
    static let samples: [Message] = MessageCodingTests.samples + [
        .health(.init(runtimes: [RuntimeStatus(name: "claude", healthy: false, checkedAt: 5, detail: tricky)], probing: 1)),
        .taskEvent(.init(id: "a", attempt: 1, kind: "extended", at: 7, detail: tricky)),
        .taskOutput(.init(id: "a", attempt: 1, stream: "stdout", data: tricky, at: 8)),
        .cancel(.init(requestId: 11, id: "a")),
        .stats(.init(requestId: 12)),
        .logs(.init(requestId: 13, id: "a", follow: true)),
        .drain(.init(requestId: 14, name: "w1")),
        .submitBatch(.init(requestId: 15, tasks: [fullSpec, TaskSpec(command: ["true"])])),
        .statsReply(.init(requestId: 16, cluster: stats, workers: ["w1": stats, "w2": StatsBlock()],
                          scheduler: ProcessUsage(pid: 9, cpuUserMs: 1, cpuSystemMs: 2, maxRssKiB: 3, at: 4))),
        .logChunk(.init(requestId: 17, id: "a", data: tricky, done: true, state: .silenceKilled)),
        .logChunk(.init(requestId: 20, id: "a", data: tricky, done: false, stream: "log", notice: tricky)),
        .readLog(.init(readId: 1, id: "a", offset: 1 << 40, maxBytes: 1 << 20)),
        .logData(.init(readId: 2, id: "a", offset: 0, nextOffset: 5, data: tricky, eof: true, problem: "gone")),
        .batchSubmitted(.init(requestId: 18, ids: ["a", "b"], existing: [])),
        .submit(.init(requestId: 19, task: fullSpec)),
        .taskFinished(.init(result: fullResult)),
        .assign(.init(task: TaskAssignment(id: "s-1", attempt: 3, spec: fullSpec, submittedAt: 1, placedAt: 2))),
        .register(.init(slots: 1, labels: [:], running: [], finished: [],
                        runtimes: [RuntimeStatus(name: "r", healthy: true)], allowsCommands: false, probing: 0)),
    ]

    @Test func samplesCoverEveryCase() {
        #expect(Set(Self.samples.map(\.type)).count == 38)
    }

    @Test(arguments: samples)
    func decodesToTheSameMessage(_ message: Message) throws {
        #expect(try MessageCodec.decode(MessageCodec.encode(message)) == message)
    }

    /// Same keys (nulls included) and values as Foundation writes, read back as plain JSON.
    @Test(arguments: samples)
    func sameJSONAsFoundation(_ message: Message) throws {
        let fast = try object(MessageCodec.encode(message))
        let foundation = try object(Array(JSONEncoder().encode(MessageCodec.Envelope(message: message))))
        #expect(fast != nil)
        #expect(fast == foundation)
    }

    @Test func resultsMatchFoundationKeyForKey() throws {
        for result in [Self.fullResult, MessageCodingTests.result] {
            let fast = try FastJSONEncoder().encode(result)
            let a = try JSONSerialization.jsonObject(with: Data(fast)) as? NSDictionary
            let b = try JSONSerialization.jsonObject(with: JSONEncoder().encode(result)) as? NSDictionary
            #expect(a == b)
            #expect(a?.count == 42)
            #expect(try JSONDecoder().decode(TaskResult.self, from: Data(fast)) == result)
        }
    }

    @Test func taskFinishedFrameSplicesTheResultFile() throws {
        let result = Self.fullResult
        let frame = MessageCodec.taskFinishedFrame(resultJSON: try FastJSONEncoder().encode(result))
        var decoder = FrameDecoder()
        decoder.feed(frame[...])
        let payload = try #require(try decoder.next())
        #expect(try MessageCodec.decode(payload) == .taskFinished(.init(result: result)))
        #expect(try object(payload) == object(MessageCodec.encode(.taskFinished(.init(result: result)))))
    }

    @Test func infoAndSpecMatchFoundation() throws {
        let info = MessageCodingTests.info
        #expect(try object(FastJSONEncoder().encode(info)) == object(Array(JSONEncoder().encode(info))))
        #expect(try object(FastJSONEncoder().encode(Self.fullSpec)) == object(Array(JSONEncoder().encode(Self.fullSpec))))
        #expect(try object(FastJSONEncoder().encode(Self.stats)) == object(Array(JSONEncoder().encode(Self.stats))))
    }

    @Test func scalarsAndEscapes() throws {
        #expect(try text("a\"b\\c/d\n\u{1}") == #""a\"b\\c/d\n\u0001""#)
        #expect(try text([Int64.min, 0, 7, Int64.max]) == "[-9223372036854775808,0,7,9223372036854775807]")
        #expect(try text([1.5, 2, -0.25]) == "[1.5,2,-0.25]")
        #expect(try text([String?.none, "x"]) == #"[null,"x"]"#)
        #expect(try text([[String: Int]]([[:], ["k": 1]])) == #"[{},{"k":1}]"#)
        #expect(throws: EncodingError.self) { try FastJSONEncoder().encode([Double.nan]) }
        for d in [0.1, 1e-7, 3e20, 123456789.123, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude] {
            let bytes = try FastJSONEncoder().encode([d])
            #expect(try JSONDecoder().decode([Double].self, from: Data(bytes)) == [d])
        }
    }

    private func text<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try FastJSONEncoder().encode(value), as: UTF8.self)
    }

    private func object(_ bytes: [UInt8]) throws -> NSDictionary? {
        try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary
    }
}
