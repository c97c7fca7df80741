import Foundation
import Logging
import Testing
import SwarmClient
import SwarmCluster
import SwarmProtocol

/// `swarm up`'s engine: scheduler and workers in one process, on their own loop threads.
@Suite(.serialized) struct LocalClusterTests {
    @Test func runsABatchAndStopsWithoutLeakingHandles() throws {
        var options = LocalCluster.Options()
        options.workers = 2
        options.slots = 3
        options.dataDir = NSTemporaryDirectory() + "swarm-local-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cluster = try LocalCluster(options, logger: Logger(label: "test"))
        var leaks: [String] = ["not stopped"]
        defer {
            if leaks == ["not stopped"] { cluster.stop() }
            try? FileManager.default.removeItem(atPath: options.dataDir)
        }

        let report = try Demo.run(address: cluster.address, token: nil, visibleTasks: 0, batch: 50) { _ in }
        #expect(report.batch == 50)
        #expect(report.succeeded == 50)
        #expect(report.ranMoreThanOnce == 0)
        #expect(Set(report.perNode.keys) == ["worker-1", "worker-2"])

        // A task still running at stop is killed with its group, and nothing leaks.
        let client = try SwarmClient(address: cluster.address, token: nil)
        let marker = "local-cluster-sleeper-\(getpid())"
        let id = try client.submit(TaskSpec(command: ["sh", "-c", "sleep 60 & sleep 60", marker], env: ["SLEEPER": marker]))
        for _ in 0..<3_000 where try client.status(id).startedAt == nil { usleep(10_000) }
        #expect(ProcessHarness.processes(containing: marker).count >= 1)
        leaks = cluster.stop()
        #expect(leaks.isEmpty)
        #expect(ProcessHarness.processes(containing: marker).isEmpty)
    }

    @Test func clusterFileIsStrictAboutKeysAndTypes() throws {
        let text = try String(contentsOfFile: #filePath.replacingOccurrences(of: "Tests/SwarmTests/LocalClusterTests.swift", with: "cluster.example.json"), encoding: .utf8)
        let file = try ClusterFile.parse(Data(text.utf8))
        #expect(file.scheduler.listen == "0.0.0.0:7700")
        #expect(file.scheduler.lostAfterSeconds == 10)
        #expect(file.workers["build-1"]?.slots == 8)
        #expect(file.workers["build-1"]?.labels == ["arch": "x86_64", "disk": "ssd"])
        #expect(file.workers["build-2"]?.slots == 4)

        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(#"{"workers":{"a":{"slotz":1}}}"#.utf8)) }
        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(#"{"workers":{"a":{"slots":true}}}"#.utf8)) }
        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(#"{"workers":{"a":{"slots":1.5}}}"#.utf8)) }
        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(#"{"scheduler":{"listen":7}}"#.utf8)) }
        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data("[1]".utf8)) }
        #expect(throws: ConfigError.self) { try ClusterFile.parse(Data("{".utf8)) }
    }
}
