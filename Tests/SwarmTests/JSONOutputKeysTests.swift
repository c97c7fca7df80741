import Foundation
import Testing
import SwarmClient
@testable import SwarmProtocol

/// Issue 10, item 18: in every JSON the CLI prints (and every result file), an unknown value
/// is `null`, never a missing key. Each output type is encoded twice, with every optional set
/// and with none set: the key paths must be the same.
@Suite struct JSONOutputKeysTests {
    /// The keys of every object in a decoded JSON value, by the object's path ("", "a.b",
    /// "list[]": the elements of a list are merged).
    static func objects(_ value: Any, _ path: String = "", into out: inout [String: Set<String>]) {
        if let object = value as? [String: Any] {
            out[path, default: []].formUnion(object.keys)
            for (key, child) in object { objects(child, path.isEmpty ? key : "\(path).\(key)", into: &out) }
        } else if let array = value as? [Any] {
            for child in array { objects(child, path + "[]", into: &out) }
        }
    }

    /// The objects of `value` as `swarm ... --json` prints it (and as it goes on the wire).
    static func objects<T: Codable & Equatable>(_ value: T) throws -> [String: Set<String>] {
        var printed: [String: Set<String>] = [:], wire: [String: Set<String>] = [:]
        objects(try JSONSerialization.jsonObject(with: Data(Output.json(value).utf8)), into: &printed)
        let bytes = try FastJSONEncoder().encode(value)
        objects(try JSONSerialization.jsonObject(with: Data(bytes)), into: &wire)
        #expect(printed == wire)
        #expect(try FastJSONDecoder().decode(T.self, from: bytes) == value)
        return printed
    }

    /// Every object printed for both values has the same keys (an object that is `null` in
    /// one of them has no keys to compare).
    static func expectSameKeys<T: Codable & Equatable>(_ full: T, _ empty: T, _ what: String) throws {
        let a = try objects(full), b = try objects(empty)
        #expect(a.count > 1 || !(a[""] ?? []).isEmpty, "\(what): nothing printed")
        for (path, keys) in a {
            guard let other = b[path] else { continue }
            #expect(keys == other, "\(what) at '\(path)': only with values: \(keys.subtracting(other).sorted()), only without: \(other.subtracting(keys).sorted())")
        }
    }

    static let usage = ProcessUsage(pid: 1, cpuUserMs: 2, cpuSystemMs: 3, maxRssKiB: 4, at: 5)
    static let checked = RuntimeStatus(name: "claude", healthy: true, checkedAt: 1, latencyMs: 2, detail: "ok", passed: 1, failed: 0, totalLatencyMs: 2)
    static let unchecked = RuntimeStatus(name: "claude", healthy: true)

    @Test func nodesJSONHasEveryKeyForRuntimesWithoutAHealthCheck() throws {
        let full = NodeInfo(name: "w", slots: 1, freeSlots: 1, running: 0, state: .ready, labels: ["k": "v"], address: "1.2.3.4:5",
                            connected: true, lastSeenMsAgo: 0, completed: 0, runtimes: [Self.checked])
        var empty = full
        empty.address = nil
        empty.runtimes = [Self.unchecked]
        try Self.expectSameKeys([full], [empty], "nodes --json")
        let printed = try #require(JSONSerialization.jsonObject(with: Data(Output.json([empty]).utf8)) as? [[String: Any]])
        let runtime = try #require((printed.first?["runtimes"] as? [[String: Any]])?.first)
        for key in ["checkedAt", "latencyMs", "detail"] { #expect(runtime[key] is NSNull, "\(key)") }
    }

    @Test func statsJSONHasEveryKeyWithoutLatenciesOrProcessFigures() throws {
        func reply(_ health: HealthStats, _ process: ProcessUsage?, _ scheduler: ProcessUsage?) -> Message.StatsReply {
            var block = StatsBlock()
            block.byModel["-"] = StatsCounters()
            block.health["claude"] = health
            var worker = block
            worker.process = process
            return Message.StatsReply(requestId: 1, cluster: block, workers: ["w": worker], scheduler: scheduler)
        }
        let full = reply(HealthStats(healthy: true, passed: 1, failed: 0, lastLatencyMs: 3, meanLatencyMs: 3), Self.usage, Self.usage)
        let empty = reply(HealthStats(healthy: false, passed: 0, failed: 0, lastLatencyMs: nil, meanLatencyMs: nil), nil, nil)
        try Self.expectSameKeys(StatsSnapshot(full), StatsSnapshot(empty), "stats --json")
        let printed = try #require(JSONSerialization.jsonObject(with: Data(Output.json(StatsSnapshot(empty)).utf8)) as? [String: Any])
        let health = try #require(((printed["cluster"] as? [String: Any])?["health"] as? [String: Any])?["claude"] as? [String: Any])
        #expect(health["lastLatencyMs"] is NSNull && health["meanLatencyMs"] is NSNull)
        #expect(printed["scheduler"] is NSNull)
    }

    @Test func taskAndResultJSONHaveEveryKey() throws {
        var full = TaskInfo(id: "t", state: .succeeded, command: ["true"], node: "w", exitCode: 0, signal: 9, reason: "r",
                            attempts: 1, submittedAt: 1, placedAt: 2, startedAt: 3, finishedAt: 4, output: "o")
        full.parent = "p"
        full.labels = ["k": "v"]
        full.secretEnv = ["K": TaskInfo.hiddenValue]
        full.waitReason = "w"
        var m = RunMetrics()
        m.node = "w"; m.runtime = "r"; m.model = "m"; m.complexity = "simple"; m.complexityScore = 1
        m.initialTimeoutMs = 1; m.finalTimeoutMs = 2; m.timeToFirstOutputMs = 3; m.firstOutputAt = 4
        m.contextMode = "inline"; m.contextFile = "f"; m.workDir = "d"; m.logFile = "l"
        m.startedAtUs = 5; m.firstOutputAtUs = 6; m.exitedAtUs = 7; m.runMs = 12
        m.prepareMs = 8; m.inputBytesFetched = 9; m.collectMs = 10; m.worktreeMs = 11
        full.metrics = m
        // Issue 11: a plain file's `kind` and a skipped file's unknown `size` are null, not missing.
        let hash = String(repeating: "a", count: 64)
        full.artifacts = [ArtifactRef(path: "a", size: 1, sha256: hash, kind: "gitBundle"), ArtifactRef(path: "b", size: 1, sha256: hash)]
        full.skippedArtifacts = [SkippedArtifact(path: "c", size: 2, reason: "r"), SkippedArtifact(path: "d", size: nil, reason: "r")]
        full.git = GitOutcome(branch: "swarm/t", base: "b", head: "h", commits: 1)
        var halfEmpty = full
        halfEmpty.artifacts = [ArtifactRef(path: "b", size: 1, sha256: hash)]
        halfEmpty.skippedArtifacts = [SkippedArtifact(path: "d", size: nil, reason: "r")]
        try Self.expectSameKeys(full, halfEmpty, "status --json artifacts")
        let empty = TaskInfo(id: "t", state: .queued, command: [], submittedAt: 1)
        // status, tasks, wait and submit --json print TaskInfo (one or a list).
        try Self.expectSameKeys(full, empty, "status --json")
        try Self.expectSameKeys([full], [empty], "tasks --json")
        var result = TaskResult(id: "t", state: .failed, exitCode: 1, signal: 2, reason: "r", output: "o", pid: 3, attempt: 1,
                                startedAt: 4, finishedAt: 5)
        result.submittedAt = 1
        result.placedAt = 2
        result.metrics = m
        let bare = TaskResult(id: "t", state: .lost, exitCode: nil, signal: nil, reason: nil, output: "", pid: nil, attempt: 1,
                              startedAt: nil, finishedAt: 5)
        try Self.expectSameKeys(result, bare, "result file")
    }
}
