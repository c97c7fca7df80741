import Foundation
import Logging
import Testing
@testable import SwarmCluster
import SwarmProtocol

/// Everyday operations (issue 15 item 4): --version, help value names, completions,
/// --log-format json, drain kept across a scheduler restart and undone by undrain, and the
/// systemd units in deploy/.
@Suite struct OperationsCLITests {
    typealias E = EndToEndTests

    @Test func versionHelpValueNamesAndCompletionScripts() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let version = try harness.run(["--version"])
        #expect(version.status == 0 && version.stdout == "swarm \(SwarmVersion.release) (protocol \(protocolVersion))\n")
        let scheduler = try harness.run(["scheduler", "--help"])
        for text in ["--listen <HOST:PORT>", "--lost-after <SECONDS>", "--placement <spread|binpack>", "--log-format <text|json>"] {
            #expect(scheduler.stdout.contains(text), "scheduler --help lacks \(text)")
        }
        let submit = try harness.run(["submit", "--help"])
        for text in ["--complexity <simple|moderate|complex|SCORE>", "--timeout <SECONDS>", "--after <ID,...>", "--env <KEY=VALUE>"] {
            #expect(submit.stdout.contains(text), "submit --help lacks \(text)")
        }
        for shell in ["bash", "zsh", "fish"] {
            let script = try harness.run(["--generate-completion-script", shell])
            #expect(script.status == 0 && script.stdout.contains("undrain") && script.stdout.contains("retry-backoff"), "\(shell) completion")
        }
        let bad = try harness.run(["scheduler", "--log-format", "yaml"])
        #expect(bad.status == 64 && bad.stderr == "swarm: error: unknown log format 'yaml' (text or json) (see 'swarm scheduler --help')\n")
    }

    @Test func jsonLogLinesAreOneObjectEachWithControlCharactersEscaped() throws {
        let time = Date(timeIntervalSince1970: 1_764_712_800.5)
        let line = JSONLogHandler.line(time: time, level: .warning, label: "swarm", message: "a \"b\"\n\u{1B}[31mc\\",
                                       source: "S", metadata: ["message": "shadow", "node": "w1"])
        #expect(line.hasSuffix("}\n") && line.dropLast().contains("\n") == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["message"] == "a \"b\"\n\u{1B}[31mc\\")
        #expect(object["meta.message"] == "shadow" && object["node"] == "w1")
        #expect(object["time"] == "2025-12-02T22:00:00.500Z" && object["level"] == "warning" && object["source"] == "S")
    }

    /// A drain survives a restart of a durable scheduler; undrain puts the worker back to work.
    /// The scheduler logs JSON throughout: every line of its stderr is one object.
    @Test func aDrainOutlivesASchedulerRestartAndUndrainPlacesAgain() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness, extra: ["--log-format", "json"])
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w1", "--data-dir", "\(harness.dir)/w1"])
        _ = try E.waitForNodes(harness, address, count: 1)
        #expect(try harness.run(["drain", "w1", "--scheduler", address]).status == 0)
        let scheduler = try #require(harness.childNamed("scheduler"))
        kill(scheduler.pid, SIGTERM)
        scheduler.process.waitUntilExit()
        try RestartTests.restartScheduler(harness, address, stateDir: "\(harness.dir)/state", extra: ["--log-format", "json"])
        try Self.waitForWorker(harness, address, state: "draining")
        #expect(try harness.run(["submit", "--id", "t1", "--scheduler", address, "--", "true"]).status == 0)
        usleep(300_000)
        #expect(try harness.run(["status", "t1", "--json", "--scheduler", address]).stdout.contains("\"queued\""))
        let undrain = try harness.run(["undrain", "w1", "--scheduler", address])
        #expect(undrain.status == 0 && undrain.stdout.contains("ready"))
        #expect(try harness.run(["wait", "t1", "--timeout", "20", "--scheduler", address]).status == 0)
        let unknown = try harness.run(["undrain", "nope", "--scheduler", address])
        #expect(unknown.status == 2 && unknown.stderr == "swarm: error: no worker named 'nope'\n")
        for name in ["scheduler", "scheduler-restart-1"] {
            let lines = RestartTests.lines("\(harness.dir)/\(name).log")
            #expect(!lines.isEmpty)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["message"] is String && object?["level"] is String, "not a JSON log line: \(line)")
            }
        }
    }

    static func waitForWorker(_ harness: ProcessHarness, _ address: String, state: String) throws {
        for _ in 0..<300 {
            let r = try harness.run(["nodes", "--scheduler", address, "--json"])
            if let nodes = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
               nodes.contains(where: { $0["state"] as? String == state && $0["connected"] as? Bool == true }) { return }
            usleep(50_000)
        }
        Issue.record("no connected worker became \(state)")
    }

    /// The units in deploy/ pass `systemd-analyze verify` (with ExecStart pointed at this
    /// build); skipped with a reason where systemd-analyze is absent.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "systemd-analyze is not installed"))
    func systemdUnitsVerify() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy").path
        for (unit, name) in [("swarm-scheduler.service", "swarm-scheduler.service"), ("swarm-worker@.service", "swarm-worker@b1.service")] {
            let text = try String(contentsOfFile: "\(deploy)/\(unit)", encoding: .utf8)
            #expect(text.contains("ExecStart=/usr/local/bin/swarm "))
            let path = "\(harness.dir)/\(name)"
            try text.replacingOccurrences(of: "/usr/local/bin/swarm", with: ProcessHarness.swarmBinary)
                .write(toFile: path, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
            process.arguments = ["verify", path]
            let out = try CapturedRun.run(process, timeout: 30)
            #expect(out.status == 0 && out.stderr.isEmpty, "\(unit): \(out.stderr)")
        }
    }
}
