import Foundation
import Testing

/// Issue 11 end to end through real processes: a task gets an input directory from the
/// submitting machine, leaves artifacts, and `swarm fetch` brings them back, hashes checked;
/// tasks of one `--file` sharing an input store it once.
@Suite(.serialized) struct WorkEndToEndTests {
    static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every blob file the scheduler holds (`STATE/blobs/<aa>/<sha256>`).
    static func heldBlobs(_ stateDir: String) -> [String] {
        let root = stateDir + "/blobs"
        let shards = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return shards.filter { $0.count == 2 }.flatMap { shard in
            ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + shard)) ?? []).filter { $0.count == 64 }
        }
    }

    @Test func anInputDirectoryGoesInAndArtifactsComeBackWithFetch() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w1", "--data-dir", "\(harness.dir)/w1"])
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1)
        // The submitting side: a project directory (relative SRC, from the current directory).
        try Self.write("alpha\n", to: "\(harness.dir)/project/a.txt")
        try Self.write("beta\n", to: "\(harness.dir)/project/sub/b.txt")
        let script = "mkdir -p out/deep && cat src/a.txt src/sub/b.txt > out/joined.txt && echo hi > out/deep/hi.txt && echo kept > notes.txt"
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "io-1", "--input", "project:src",
                                      "--artifact", "out/**", "--artifact", "notes.txt", "--", "sh", "-c", script])
        #expect(submit.status == 0, "submit: \(submit.stderr)")
        let task = try EndToEndTests.waitSucceeded(harness, address, "io-1")
        let artifacts = try #require(task["artifacts"] as? [[String: Any]], "\(task)")
        #expect(Set(artifacts.compactMap { $0["path"] as? String }) == ["out/joined.txt", "out/deep/hi.txt", "notes.txt"])

        // All of them, into a new directory.
        let fetch = try harness.run(["fetch", "--scheduler", address, "io-1", "-o", "got"])
        #expect(fetch.status == 0, "fetch: \(fetch.stderr)")
        #expect(fetch.stdout.split(separator: "\n").count == 3, "\(fetch.stdout)")
        #expect(Self.read("\(harness.dir)/got/out/joined.txt") == "alpha\nbeta\n")
        #expect(Self.read("\(harness.dir)/got/out/deep/hi.txt") == "hi\n")
        #expect(Self.read("\(harness.dir)/got/notes.txt") == "kept\n")
        // One, by its path, into the current directory.
        let one = try harness.run(["fetch", "--scheduler", address, "io-1", "out/deep/hi.txt"])
        #expect(one.status == 0 && one.stdout.split(separator: "\n").count == 1, "\(one.stdout) \(one.stderr)")
        #expect(Self.read("\(harness.dir)/out/deep/hi.txt") == "hi\n")
        // An unknown path: exit 2, one line naming it; nothing written.
        let unknown = try harness.run(["fetch", "--scheduler", address, "io-1", "out/nope", "-o", "none"])
        #expect(unknown.status == 2 && unknown.stderr == "swarm: error: task io-1 has no artifact 'out/nope' (see 'swarm status io-1')\n", "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(harness.dir)/none"))
        // status shows them.
        let status = try harness.run(["status", "--scheduler", address, "io-1"])
        #expect(status.stdout.contains("artifacts: 3 ("), "\(status.stdout)")
        #expect(status.stdout.contains("  out/joined.txt  11 bytes"), "\(status.stdout)")

        // A task without artifacts: fetch says so, exit 1.
        #expect(try harness.run(["submit", "--scheduler", address, "--id", "plain", "--", "true"]).status == 0)
        _ = try EndToEndTests.waitSucceeded(harness, address, "plain")
        let none = try harness.run(["fetch", "--scheduler", address, "plain"])
        #expect(none.status == 1 && none.stderr == "swarm: task plain has no artifacts\n", "\(none.stderr)")
    }

    @Test func tasksOfOneFileSharingAnInputUploadItOnce() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "3", "--name", "w1", "--data-dir", "\(harness.dir)/w1"])
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1)
        try Self.write(String(repeating: "data line\n", count: 1000), to: "\(harness.dir)/shared/data.txt")
        let lines = (1...3).map { #"{"id": "s\#($0)", "command": ["sh", "-c", "test $(wc -l < in/data.txt) = 1000"], "inputs": ["shared/data.txt:in/data.txt"]}"# }
        try Self.write(lines.joined(separator: "\n"), to: "\(harness.dir)/tasks.jsonl")
        let tmp = "\(harness.dir)/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let submit = try harness.run(["submit", "--scheduler", address, "--file", "tasks.jsonl", "--wait"], timeout: 90,
                                     environment: ["TMPDIR": tmp])
        #expect(submit.status == 0, "submit: \(submit.stdout) \(submit.stderr)")
        #expect(Self.heldBlobs("\(harness.dir)/state").count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "scratch left behind")
    }
}
