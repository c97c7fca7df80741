import Foundation
import Testing
import SwarmCluster
import SwarmProtocol

/// Defects found after issue 10's fixes: what a worker dials and is called, duplicate `K=V`
/// keys, fields of a runtime that are not templates, config errors naming the file once.
@Suite struct WorkerAddressTests {
    // MARK: swarm worker's scheduler address and name

    /// `$SWARM_SCHEDULER` is what a worker dials when neither `--scheduler` nor a config says:
    /// its port 0 is refused, proving it was read (before, the worker dialled 127.0.0.1:7700
    /// and retried forever).
    @Test func aWorkerDialsSwarmSchedulerAndNeverPortZero() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let fromEnvironment = try harness.run(["worker", "--slots", "1", "--name", "w"], timeout: 10,
                                              environment: ["SWARM_SCHEDULER": "127.0.0.1:0"])
        CLIValidationTests.expectUsageError(fromEnvironment, "SWARM_SCHEDULER=127.0.0.1:0", containing: "127.0.0.1:0")
        let fromFlag = try harness.run(["worker", "--scheduler", "127.0.0.1:0", "--slots", "1", "--name", "w"], timeout: 10)
        CLIValidationTests.expectUsageError(fromFlag, "--scheduler 127.0.0.1:0", containing: "port from 1 to 65535")
    }

    @Test func aWorkerNameIsWhatATaskIdMayBe() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        for name in ["a/b", "..", "", String(repeating: "n", count: 129), "a b"] {
            let r = try harness.run(["worker", "--scheduler", "127.0.0.1:1", "--slots", "1", "--name", name], timeout: 10)
            CLIValidationTests.expectUsageError(r, "--name '\(name)'", containing: "worker name")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(harness.dir)/.swarm/worker-a"))
        #expect(WorkerName.problem(with: "build-1.lan_2") == nil)
        #expect(WorkerName.problem(with: String(repeating: "n", count: 128)) == nil)
        do {
            _ = try ClusterFile.parse(Data(#"{"workers": {"a/b": {"slots": 1}}}"#.utf8), name: "cfg.json")
            Issue.record("a worker key with a slash must be refused")
        } catch {
            #expect("\(error)".hasPrefix("cfg.json: ") && "\(error)".contains("worker name"), "\(error)")
        }
    }

    // MARK: K=V options

    @Test func aKeyGivenTwiceIsAUsageError() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let r = try harness.run(["scheduler", "--listen", "127.0.0.1:0", "--in-memory",
                                 "--model-limit", "opus=1", "--model-limit", "opus=2"], timeout: 10)
        CLIValidationTests.expectUsageError(r, "--model-limit opus twice", containing: "'opus' twice")
        let labels = try harness.run(["worker", "--scheduler", "127.0.0.1:1", "--slots", "1", "--name", "w",
                                      "--label", "zone=a", "--label", "zone=b"], timeout: 10)
        CLIValidationTests.expectUsageError(labels, "--label zone twice", containing: "'zone' twice")
    }

    // MARK: config

    @Test func noFieldButARuntimesCommandMayHoldAPlaceholder() throws {
        let bad: [(String, String)] = [
            (#"{"runtimes": {"c": {"command": ["c"], "health": {"command": ["c", "--model", "{modle}"]}}}}"#, "runtimes.c.health.command has {modle}"),
            (#"{"runtimes": {"c": {"command": ["c"], "health": {"command": ["c", "{model}"]}}}}"#, "runtimes.c.health.command has {model}"),
            (#"{"runtimes": {"c": {"command": ["c"], "env": {"M": "{modle}"}}}}"#, "runtimes.c.env.M has {modle}"),
        ]
        for (text, message) in bad {
            do {
                _ = try ClusterFile.parse(Data(text.utf8), name: "cfg.json")
                Issue.record("\(text) must be refused")
            } catch {
                #expect("\(error)".contains(message) && "\(error)".contains("only runtimes.c.command is a template"), "\(error)")
            }
        }
        // Literal braces and the shell's ${NAME} stay allowed, everywhere.
        let fine = #"{"runtimes": {"c": {"command": ["sh", "-c", "echo ${HOME} {} {\"a\": 1} {model}"], "env": {"J": "{\"k\": 1}"}, "health": {"command": ["sh", "-c", "test -n ${PATH}"]}}}}"#
        #expect(throws: Never.self) { try ClusterFile.parse(Data(fine.utf8)) }
    }

    @Test func aConfigErrorNamesItsFileOnce() throws {
        let text = #"{"scheduler": {"heartbeatSeconds": 10, "lostAfterSeconds": 10}}"#
        do {
            _ = try ClusterFile.parse(Data(text.utf8), name: "cfg.json")
            Issue.record("heartbeat equal to lost-after must be refused")
        } catch {
            #expect("\(error)" == "cfg.json: scheduler.heartbeatSeconds (10 s) must be shorter than scheduler.lostAfterSeconds (10 s)")
        }
    }
}
