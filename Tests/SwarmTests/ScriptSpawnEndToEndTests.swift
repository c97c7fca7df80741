import Foundation
import Testing

/// A task whose program is a file without a `#!` line runs it with `/bin/sh` on the worker,
/// as `execvp` would, by path and by a name found in the task's `PATH`: it ends with the
/// script's own exit code, not "cannot start" (2cf9ae1). A file without the execute bit is
/// a clear spawn failure.
@Suite struct ScriptSpawnEndToEndTests {
    typealias E2E = EndToEndTests

    /// `swarm submit --wait --json` of `command` (with `extra` options): the task.
    static func submitAndWait(_ harness: ProcessHarness, _ address: String, _ id: String,
                              _ extra: [String], _ command: [String]) throws -> [String: Any] {
        let arguments: [String] = ["submit", "--scheduler", address, "--id", id, "--wait", "--json"] + extra + ["--"] + command
        let r: ProcessHarness.RunResult = try harness.run(arguments)
        let object: Any? = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(object as? [String: Any], "\(id): \(r.status) \(r.stdout) \(r.stderr)")
    }

    @Test func aScriptWithoutAShebangExitsWithItsOwnCode() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address: String = try E2E.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "solo",
                                     "--data-dir", "\(harness.dir)/solo"])
        _ = try E2E.waitForNodes(harness, address, count: 1)
        let bin: String = "\(harness.dir)/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try writeExecutable("echo ran \"$@\"\nexit 9\n", to: "\(bin)/plain")
        try writeExecutable("exit 9\n", to: "\(bin)/denied", mode: 0o644)

        let byPath: [String: Any] = try Self.submitAndWait(harness, address, "by-path", [], ["\(bin)/plain", "a"])
        #expect(byPath["state"] as? String == "failed", "\(byPath)")
        #expect(byPath["exitCode"] as? Int == 9)
        #expect((byPath["output"] as? String)?.contains("ran a\n") == true, "\(byPath)")

        let env: [String] = ["--env", "PATH=\(bin):/usr/bin:/bin"]
        let byName: [String: Any] = try Self.submitAndWait(harness, address, "by-name", env, ["plain", "b"])
        #expect(byName["state"] as? String == "failed", "\(byName)")
        #expect(byName["exitCode"] as? Int == 9)
        #expect((byName["output"] as? String)?.contains("ran b\n") == true, "\(byName)")

        let denied: [String: Any] = try Self.submitAndWait(harness, address, "denied", [], ["\(bin)/denied"])
        #expect(denied["state"] as? String == "spawn_failed", "\(denied)")
        #expect(denied["exitCode"] == nil || denied["exitCode"] is NSNull)
        let reason: String = denied["reason"] as? String ?? ""
        #expect(reason.hasPrefix("cannot start \(bin)/denied: EACCES"), "\(reason)")
    }
}
