import Foundation
import Testing
import SwarmProtocol

/// What the work-in/work-out end-to-end tests share: git repositories made by the test,
/// file hashes, and checks of the blob stores on disk.
enum WorkspaceFixtures {
    /// An identity for every commit the tests and their fake agents make (CI machines may
    /// have no global git config).
    static let gitIdentity = [
        "GIT_AUTHOR_NAME": "test agent", "GIT_AUTHOR_EMAIL": "agent@example.invalid",
        "GIT_COMMITTER_NAME": "test agent", "GIT_COMMITTER_EMAIL": "agent@example.invalid",
    ]

    /// Whether every tool is on PATH; else the missing ones.
    static func missingTools(_ tools: [String]) -> [String] {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return tools.filter { tool in
            !path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
        }
    }

    struct GitResult {
        var status: Int32
        var stdout: String
        var stderr: String
        var line: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// `git ARGS` in `dir` (bounded: killed after 30 s).
    @discardableResult
    static func git(_ arguments: [String], in dir: String) throws -> GitResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in gitIdentity { env[key] = value }
        process.environment = env
        let output = try CapturedRun.run(process, timeout: 30)
        if output.timedOut { Issue.record("git \(arguments.joined(separator: " ")) did not finish within 30 s") }
        return GitResult(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    /// A bare repository at `bare` (branch `main`, two files, one commit), made through a
    /// scratch clone beside it. Returns the commit.
    static func makeBareRepository(at bare: String) throws -> String {
        let seed = bare + ".seed"
        try FileManager.default.createDirectory(atPath: seed, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: seed) }
        #expect(try git(["init", "--quiet", "--bare", "-b", "main", bare], in: seed).status == 0)
        #expect(try git(["init", "--quiet", "-b", "main", "."], in: seed).status == 0)
        try "# demo\n".write(toFile: "\(seed)/README.md", atomically: true, encoding: .utf8)
        try "int answer(void) { return 42; }\n".write(toFile: "\(seed)/lib.c", atomically: true, encoding: .utf8)
        #expect(try git(["add", "."], in: seed).status == 0)
        #expect(try git(["commit", "--quiet", "-m", "initial"], in: seed).status == 0)
        let push = try git(["push", "--quiet", bare, "main"], in: seed)
        #expect(push.status == 0, "push: \(push.stderr)")
        return try git(["rev-parse", "HEAD"], in: seed).line
    }

    /// The lowercase hex SHA-256 of a file's bytes (read in 4 MiB pieces), or nil if unreadable.
    static func sha256(ofFile path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = BlobHash.Hasher()
        while true {
            guard let data = try? handle.read(upToCount: 4 << 20), !data.isEmpty else { break }
            data.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }

    static func isBlobName(_ name: String) -> Bool { BlobHash.problem(with: name) == nil }

    /// Every regular file under `root`, relative to it.
    static func files(under root: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(relative)", isDirectory: &isDirectory), !isDirectory.boolValue {
                found.append(relative)
            }
        }
        return found.sorted()
    }

    /// A transfer in progress under a blob store `root`: a file not named by its hash (a
    /// scheduler upload in `tmp/`, a worker download's `.part`) with bytes in it.
    static func transferInProgress(under root: String) -> (path: String, size: Int64)? {
        for relative in files(under: root) where !isBlobName((relative as NSString).lastPathComponent) {
            let path = "\(root)/\(relative)"
            let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
            if size > 0 { return (path, size) }
        }
        return nil
    }

    /// What is wrong with a blob store at rest (nothing in transfer): every file must be
    /// `<aa>/<sha256>` whose bytes hash to its name, so no partial blob is held.
    static func blobStoreProblems(_ root: String) -> [String] {
        files(under: root).compactMap { relative in
            let parts = relative.split(separator: "/").map(String.init)
            guard parts.count == 2, isBlobName(parts[1]), parts[0] == String(parts[1].prefix(2)) else {
                return "\(relative): not a whole blob (a partial transfer or stray file)"
            }
            let actual = sha256(ofFile: "\(root)/\(relative)")
            return actual == parts[1] ? nil : "\(relative): its bytes hash to \(actual ?? "(unreadable)")"
        }
    }

    /// `swarm status ID --json`, parsed.
    static func status(_ harness: ProcessHarness, _ address: String, _ id: String,
                       launcher: [String] = [], extra: [String] = []) throws -> [String: Any] {
        let r = try harness.run(["status", "--scheduler", address, "--json", id] + extra, launcher: launcher)
        #expect(r.status == 0, "status \(id): \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    /// One `--file` line.
    static func jsonLine(_ task: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: task, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Writes a big file of random bytes (from the kernel) and returns its hash.
    static func randomFile(_ path: String, bytes: Int) throws -> String {
        let source = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? source.close() }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let sink = try #require(FileHandle(forWritingAtPath: path))
        defer { try? sink.close() }
        var left = bytes
        var hasher = BlobHash.Hasher()
        while left > 0 {
            let data = try #require(try source.read(upToCount: min(left, 4 << 20)))
            data.withUnsafeBytes { hasher.update($0) }
            try sink.write(contentsOf: data)
            left -= data.count
        }
        return hasher.finalize()
    }
}
