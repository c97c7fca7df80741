import Foundation
import Testing

/// Issue 11 through the real `swarm` binary, without a cluster: inputs are resolved and
/// checked before connecting (a missing SRC costs the scheduler nothing), `swarm fetch`
/// refuses bad flag combinations, and no scratch directory is left behind.
@Suite struct WorkCLITests {
    @Test func aMissingInputIsOneLineBeforeAnyConnection() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let tmp = harness.dir + "/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        // Port 1 on loopback: nothing listens, so reaching the network would be another error.
        let r = try harness.run(["submit", "--scheduler", "127.0.0.1:1", "--input", "gone/src", "--", "true"], environment: ["TMPDIR": tmp])
        CLIValidationTests.expectUsageError(r, "submit --input gone/src", containing: "input 'gone/src' does not exist")
        // A file of three tasks sharing an input, one of them missing another: the line is named.
        try Data("x".utf8).write(to: URL(fileURLWithPath: harness.dir + "/data.txt"))
        let file = harness.dir + "/tasks.jsonl"
        try Data("""
            {"command": ["true"], "inputs": ["data.txt"]}
            {"command": ["true"], "inputs": ["data.txt"]}
            {"command": ["true"], "inputs": ["data.txt", "nope:x"]}
            """.utf8).write(to: URL(fileURLWithPath: file))
        let f = try harness.run(["submit", "--scheduler", "127.0.0.1:1", "--file", file], environment: ["TMPDIR": tmp])
        CLIValidationTests.expectUsageError(f, "submit --file", containing: "tasks.jsonl:3: input 'nope' does not exist")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "scratch left behind")
    }

    @Test func fetchFlagsThatDoNotGoTogether() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let cases: [([String], String)] = [
            (["fetch", "t1", "--git", "-o", "d"], "use --into DIR, not -o"),
            (["fetch", "t1", "--git", "a.txt"], "--git takes no PATH"),
            (["fetch", "t1", "--into", "d"], "--into goes with --git"),
            (["fetch", "../x"], "task id"),
        ]
        for (arguments, text) in cases {
            CLIValidationTests.expectUsageError(try harness.run(arguments), arguments.joined(separator: " "), containing: text)
        }
        let r = try harness.run(["fetch", "--scheduler", "127.0.0.1:1", "t1"])
        #expect(r.status == 2 && r.stderr.hasPrefix("swarm: error: cannot reach scheduler"), "\(r.stderr)")
    }
}
