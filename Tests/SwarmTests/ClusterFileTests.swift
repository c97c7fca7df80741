import Foundation
import Testing
import SwarmCluster
import SwarmNode

/// cluster.json's engine and placement keys: what they set, and what they refuse.
@Suite struct ClusterFileTests {
    static let example = #filePath.replacingOccurrences(of: "Tests/SwarmTests/ClusterFileTests.swift", with: "cluster.example.json")

    @Test func theExampleSetsRuntimesTimeoutsAndPlacement() throws {
        let file = try ClusterFile.load(path: Self.example)
        #expect(file.scheduler.placement == "spread")
        #expect(file.scheduler.modelLimits == ["opus": 4])
        let claude = try #require(file.runtimes["claude"])
        #expect(claude.command.last == "{model}" && claude.defaultModel == "sonnet" && claude.promptOnStdin)
        #expect(claude.health?.command == ["claude", "--version"] && claude.health?.expect == "Claude")
        #expect(claude.health?.timeoutMs == 10_000 && claude.health?.intervalMs == 300_000)
        var worker = WorkerConfig(name: "build-2", slots: 4, dataDir: "/tmp/w")
        worker.apply(file, worker: "build-2")
        #expect(!worker.allowsCommands)
        #expect(worker.runtimes.map(\.name) == ["claude"])  // all defined, when the entry names none
        #expect(worker.supervisor.policy.silenceKillMs == 90_000 && worker.supervisor.policy.killGraceMs == 5_000)
        #expect(worker.workRoot == "/tmp/w/work")
        var first = WorkerConfig(name: "build-1", slots: 8, dataDir: "/tmp/w1")
        first.apply(file, worker: "build-1")
        #expect(first.allowsCommands && first.workRoot == "/srv/agents")
    }

    @Test func badEngineKeysAreClearErrors() {
        let bad = [
            #"{"runtimes": {"c": {"command": []}}}"#,
            #"{"runtimes": {"c": {"command": ["c"], "helth": {}}}}"#,
            #"{"runtimes": {"c": {"command": ["c"], "health": {"command": ["c"], "timeoutSeconds": 0}}}}"#,
            #"{"timeouts": {"silenceKill": -1}}"#,
            #"{"timeouts": {"sillenceKill": 1}}"#,
            #"{"scheduler": {"placement": "random"}}"#,
            #"{"scheduler": {"modelLimits": {"opus": 1.5}}}"#,
            #"{"workers": {"a": {"runtimes": ["ghost"]}}}"#,
            #"{"workers": {"a": {"allowCommands": "yes"}}}"#,
            #"{"contextInlineMax": -3}"#,
            #"{"scheduler": {"maxInputBytesPerTask": -1}}"#,
            #"{"scheduler": {"maxInputBytesPerTask": 1.5}}"#,
            #"{"scheduler": {"maxInputBytesPerTask": 1e300}}"#,
        ]
        for text in bad {
            #expect(throws: ConfigError.self, "\(text)") { try ClusterFile.parse(Data(text.utf8)) }
        }
    }

    @Test func httpListenIsReadAndOffByDefault() throws {
        let file = try ClusterFile.parse(Data(#"{"scheduler": {"httpListen": "127.0.0.1:9100"}}"#.utf8))
        #expect(file.scheduler.httpListen == "127.0.0.1:9100")
        #expect(try ClusterFile.parse(Data("{}".utf8)).scheduler.httpListen == nil)
        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(#"{"scheduler": {"httpListen": 9100}}"#.utf8)) }
    }

    @Test func aWorkersHttpListenIsReadCheckedAndApplied() throws {
        let file = try ClusterFile.parse(Data(#"{"workers": {"w1": {"slots": 2, "httpListen": "127.0.0.1:9101"}, "w2": {"slots": 1}}}"#.utf8))
        #expect(file.workers["w1"]?.httpListen == "127.0.0.1:9101")
        #expect(file.workers["w2"]?.httpListen == nil)
        var config = WorkerConfig(name: "w1", slots: 2, dataDir: "/tmp/unused")
        config.apply(file, worker: "w1")
        #expect(config.httpHost == "127.0.0.1" && config.httpPort == 9101)
        var other = WorkerConfig(name: "w2", slots: 1, dataDir: "/tmp/unused")
        other.apply(file, worker: "w2")
        #expect(other.httpHost == nil, "off when absent")
        for bad in [#"{"workers": {"w1": {"httpListen": "nowhere"}}}"#, #"{"workers": {"w1": {"httpListen": 9101}}}"#,
                    #"{"workers": {"w1": {"httpListen": "127.0.0.1:70000"}}}"#] {
            #expect(throws: ConfigError.self, "\(bad)") { try ClusterFile.parse(Data(bad.utf8)) }
        }
    }

    @Test func maxInputBytesPerTaskIsRead() throws {
        let file = try ClusterFile.parse(Data(#"{"scheduler": {"maxInputBytesPerTask": 1048576}}"#.utf8))
        #expect(file.scheduler.maxInputBytesPerTask == 1 << 20)
        #expect(try ClusterFile.parse(Data("{}".utf8)).scheduler.maxInputBytesPerTask == nil)
    }
}
