import Foundation
import Testing
import SwarmClient
@testable import swarm

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

/// `swarm fetch --git`'s git steps on real repositories: a bundle of base..swarm/ID (as a
/// worker makes it) lands as branch swarm/ID where the base is; a directory that is not a
/// repository, or lacks the base, is found before fetching.
@Suite struct FetchGitTests {
    /// Runs `script` with sh in `dir`; returns its stdout without the last newline.
    @discardableResult
    static func sh(_ script: String, in dir: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "set -e; " + script]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in ["GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                       "GIT_CONFIG_NOSYSTEM": "1", "HOME": dir] { env[k] = v }
        process.environment = env
        let output = try CapturedRun.run(process, timeout: 30)
        #expect(output.status == 0 && !output.timedOut, "\(script)")
        return output.stdout.trimmingCharacters(in: .newlines)
    }

    @Test func aBundleLandsAsTheTasksBranchWhereItsBaseIs() throws {
        let root = NSTemporaryDirectory() + "swarm-git-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = try Self.sh("""
            git init -q -b main origin && cd origin && echo 1 > f && git add f && git commit -qm base && git rev-parse HEAD
            """, in: root)
        let head = try Self.sh("""
            cd origin && git checkout -qb swarm/t1 && echo 2 > f && git commit -qam two && echo 3 > g && git add g \
            && git commit -qm three && git bundle create -q ../t1.bundle \(base)..swarm/t1 && git rev-parse HEAD
            """, in: root)
        try Self.sh("git clone -q -b main origin local && git init -q -b main other && cd other && echo x > x && git add x && git commit -qm other && mkdir ../plain", in: root)
        let local = GitCommand(directory: root + "/local")
        #expect(local.isRepository() && local.hasCommit(base))
        try local.fetch(bundle: root + "/t1.bundle", refspec: "swarm/t1:swarm/t1")
        #expect(try Self.sh("git rev-parse swarm/t1", in: root + "/local") == head)
        #expect(try Self.sh("git rev-list --count main..swarm/t1", in: root + "/local") == "2")
        #expect(!GitCommand(directory: root + "/other").hasCommit(base))
        #expect(!GitCommand(directory: root + "/plain").isRepository())
        #expect(!GitCommand(directory: root + "/missing").isRepository())
        // Fetching where the base is missing fails with git's own line, not silently.
        #expect(throws: FetchError.self) { try GitCommand(directory: root + "/other").fetch(bundle: root + "/t1.bundle", refspec: "swarm/t1:swarm/t1") }
    }
}

/// The packed inputs of a submit stopped by a signal are removed by the signal handler.
@Suite struct ScratchSignalTests {
    @Test func sigtermWhileWaitingForTheSchedulerRemovesThePackedInputs() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        // A listener that never answers: the submit waits in its handshake, inputs packed.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let tmp = harness.dir + "/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 1 << 20).write(to: URL(fileURLWithPath: harness.dir + "/input.bin"))
        let submit = try harness.start("submit", ["submit", "--scheduler", "127.0.0.1:\(port)", "--input", "input.bin", "--", "true"],
                                       environment: ["TMPDIR": tmp])
        var packed = false
        for _ in 0..<500 where !packed {
            let dirs = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
            packed = dirs.contains { dir in
                let attributes = try? FileManager.default.attributesOfItem(atPath: "\(tmp)/\(dir)/0")
                return ((attributes?[.size] as? NSNumber)?.intValue ?? 0) > 1 << 20
            }
            if !packed { usleep(20_000) }
        }
        #expect(packed, "the input was not packed")
        kill(submit.pid, SIGTERM)
        submit.process.waitUntilExit()
        #expect(submit.process.terminationReason == .uncaughtSignal && submit.process.terminationStatus == SIGTERM)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "scratch left behind")
    }
}
