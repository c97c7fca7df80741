import Foundation
import Testing
@testable import SwarmClient
import SwarmProtocol

/// Issue 11, client items 1 and 3: where SRC:DEST splits, and a submit's inputs packed once
/// per distinct SRC, refused over the per-task limit before anything is uploaded, scratch
/// files removed.
@Suite struct InputUploadsTests {
    static func parse(_ text: String, existing: Set<String>) throws(TaskOptionsError) -> InputSource {
        try InputSource.parse(text, cwd: "/home/u/proj") { existing.contains($0) }
    }

    static func error(_ text: String, existing: Set<String>) -> String? {
        do { _ = try parse(text, existing: existing); return nil } catch { return error.description }
    }

    @Test func destDefaultsToTheBaseName() throws {
        let e: Set<String> = ["/home/u/proj/src", "/data/set", "/home/u/proj", "/home/u/proj/a.txt"]
        #expect(try Self.parse("src", existing: e) == InputSource(source: "src", absolute: "/home/u/proj/src", dest: "src"))
        #expect(try Self.parse("src/", existing: e).dest == "src")
        #expect(try Self.parse("./src//", existing: e).absolute == "/home/u/proj/src")
        #expect(try Self.parse("/data/set", existing: e).dest == "set")
        #expect(try Self.parse(".", existing: e) == InputSource(source: ".", absolute: "/home/u/proj", dest: "proj"))
        #expect(try Self.parse("../proj/a.txt", existing: e).dest == "a.txt")
        #expect(Self.error("/", existing: ["/"])?.contains("no base name") == true)
    }

    @Test func splitsAtTheLastColonOnlyWhenThatMakesSense() throws {
        // SRC:DEST when SRC exists and DEST is valid.
        #expect(try Self.parse("src:lib/src", existing: ["/home/u/proj/src"]).dest == "lib/src")
        #expect(try Self.parse("src:lib/src", existing: ["/home/u/proj/src"]).source == "src")
        // The last colon: SRC may hold colons.
        let colon = try Self.parse("a:b:c", existing: ["/home/u/proj/a:b"])
        #expect(colon.source == "a:b" && colon.dest == "c")
        // A path with a colon that exists is the whole SRC, even if the split would work too.
        let whole = try Self.parse("a:b", existing: ["/home/u/proj/a:b", "/home/u/proj/a"])
        #expect(whole.source == "a:b" && whole.dest == "a:b")
        // After the colon not a valid DEST: the whole text is SRC.
        #expect(try Self.parse("x:/y", existing: ["/home/u/proj/x:/y"]).dest == "y")
        // A time-stamped name: "log:12" exists as is.
        #expect(try Self.parse("log:12", existing: ["/home/u/proj/log:12"]).dest == "log:12")
    }

    @Test func errorsNameTheInput() {
        #expect(Self.error("gone", existing: []) == "input 'gone' does not exist")
        #expect(Self.error("gone:dest", existing: []) == "input 'gone' does not exist")
        #expect(Self.error("src:/abs", existing: ["/home/u/proj/src"])?.contains("input 'src:/abs': DEST must be a relative path") == true)
        #expect(Self.error("src:../up", existing: ["/home/u/proj/src"])?.contains("DEST must be a relative path") == true)
        #expect(Self.error("src:", existing: ["/home/u/proj/src"])?.contains("DEST must be a relative path inside the task's directory (empty path)") == true)
        #expect(Self.error("", existing: []) == "an input is empty (want SRC[:DEST])")
    }

    /// A packer that records what it packed and writes a small file, like `Archive.pack`.
    final class CountingPacker: @unchecked Sendable {
        var packed: [String] = []
        var sizes: [String: Int64] = [:]
        func pack(_ source: String, _ archive: String, _ maxBytes: Int64) throws -> (sha256: String, size: Int64) {
            packed.append(source)
            let size = sizes[source] ?? 100
            if size > maxBytes { throw TaskOptionsError("input is over the limit of \(maxBytes) bytes") }
            FileManager.default.createFile(atPath: archive, contents: Data(source.utf8))
            return (BlobHash.of(Array(source.utf8)), size)
        }
    }

    final class RecordingTransport: BlobTransport {
        var uploads: [(file: String, sha256: String, size: Int64)] = []
        func uploadBlob(file path: String, sha256: String, size: Int64) throws(ClientError) {
            #expect(FileManager.default.fileExists(atPath: path))
            uploads.append((path, sha256, size))
        }
        func downloadBlob(_ sha256: String, size: Int64, to path: String) throws(ClientError) {
            throw .server(.unknownBlob, "no")
        }
    }

    static func uploads(_ packer: CountingPacker, max: Int64 = BlobLimits.defaultInputBytesPerTask,
                        existing: Set<String>) -> InputUploads {
        InputUploads(maxBytesPerTask: max, cwd: "/p", exists: { existing.contains($0) }, pack: packer.pack)
    }

    @Test func theSameSourceInThreeTasksIsPackedAndUploadedOnce() throws {
        let packer = CountingPacker()
        let uploads = Self.uploads(packer, existing: ["/p/data", "/p/tool"])
        var specs = (0..<3).map { TaskSpec(id: "t\($0)", command: ["true"]) }
        specs[0].inputs = ["data"]
        specs[1].inputs = ["/p/data:in/data", "tool"]
        specs[2].inputs = ["./data/"]
        let prepared = try uploads.prepare(specs)
        #expect(packer.packed == ["/p/data", "/p/tool"])
        let dataHash = BlobHash.of(Array("/p/data".utf8))
        #expect(prepared[0].inputBlobs == [InputRef(dest: "data", sha256: dataHash, size: 100)])
        #expect(prepared[1].inputBlobs?.map(\.dest) == ["in/data", "tool"])
        #expect(prepared[1].inputs == ["/p/data:in/data", "tool"])
        #expect(prepared[2].inputBlobs?.first?.sha256 == dataHash)
        for spec in prepared { #expect(spec.problem() == nil) }
        let transport = RecordingTransport()
        try uploads.upload(via: transport)
        #expect(transport.uploads.map(\.sha256) == [dataHash, BlobHash.of(Array("/p/tool".utf8))])
        let files = uploads.packed.map(\.file)
        let directory = (files[0] as NSString).deletingLastPathComponent
        uploads.remove()
        for file in files { #expect(!FileManager.default.fileExists(atPath: file)) }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func aTaskOverTheLimitIsRefusedBeforeAnyUpload() throws {
        let packer = CountingPacker()
        packer.sizes = ["/p/a": 600, "/p/b": 500]
        let uploads = Self.uploads(packer, max: 1000, existing: ["/p/a", "/p/b"])
        var one = TaskSpec(command: ["true"])
        one.inputs = ["a"]
        var two = one
        two.inputs = ["a", "b"]
        #expect(throws: TaskOptionsError("t.jsonl:2: the inputs pack to 1100 bytes; the limit per task is 1000 (0 MiB, --max-input-mb)")) {
            _ = try uploads.prepare([one, two], label: { "t.jsonl:\($0 + 1)" })
        }
        // At the limit exactly: accepted.
        packer.sizes["/p/b"] = 400
        let fresh = Self.uploads(packer, max: 1000, existing: ["/p/a", "/p/b"])
        #expect(try fresh.prepare([two])[0].inputBlobs?.count == 2)
        // One input alone over the limit: the packer stops at the limit.
        packer.sizes["/p/a"] = 1001
        let big = Self.uploads(packer, max: 1000, existing: ["/p/a"])
        #expect(throws: TaskOptionsError("cannot pack input 'a': input is over the limit of 1000 bytes")) { _ = try big.prepare([one]) }
    }

    @Test func aMissingSourceOrCollidingDestsAreOneLine() throws {
        let packer = CountingPacker()
        let uploads = Self.uploads(packer, existing: ["/p/a", "/p/b/a"])
        var spec = TaskSpec(command: ["true"])
        spec.inputs = ["gone"]
        #expect(throws: TaskOptionsError("input 'gone' does not exist")) { _ = try uploads.prepare([spec]) }
        spec.inputs = ["a", "b/a"]
        #expect(throws: TaskOptionsError("two inputs have the destination 'a'")) { _ = try uploads.prepare([spec]) }
        #expect(packer.packed == ["/p/a", "/p/b/a"])
    }

    @Test func realPackingOfOneDirectoryForManyTasks() throws {
        let root = NSTemporaryDirectory() + "swarm-inputs-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root + "/src", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        FileManager.default.createFile(atPath: root + "/src/main.c", contents: Data("int main(){return 0;}\n".utf8))
        var calls = 0
        let uploads = InputUploads(cwd: root, pack: { source, archive, max in
            calls += 1
            return try InputUploads.archivePack(source, archive, max)
        })
        let specs = (0..<1000).map { i -> TaskSpec in
            var s = TaskSpec(id: "t\(i)", command: ["true"])
            s.inputs = ["src"]
            return s
        }
        let prepared = try uploads.prepare(specs)
        #expect(calls == 1)
        #expect(Set(prepared.compactMap { $0.inputBlobs?.first?.sha256 }).count == 1)
        uploads.remove()
    }
}

/// A relative `--repo` path means this machine's directory: it goes out absolute, since a
/// worker would read it against its own working directory. URLs and scp-like remotes stay.
@Suite struct RepoPathTests {
    @Test func aRelativeLocalRepoBecomesAbsoluteAndRemotesStayAsGiven() throws {
        let base = NSTemporaryDirectory() + "repo-path-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/projects/app.git", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let cwd = base + "/projects"
        #expect(InputUploads.absoluteLocalRepo("app.git", cwd: cwd) == base + "/projects/app.git")
        #expect(InputUploads.absoluteLocalRepo("./app.git", cwd: cwd) == base + "/projects/app.git")
        #expect(InputUploads.absoluteLocalRepo("../projects/app.git", cwd: cwd) == base + "/projects/app.git")
        for remote in ["https://example.org/app.git", "git@example.org:app.git", "/srv/app.git", "missing.git", "file:///srv/app.git"] {
            #expect(InputUploads.absoluteLocalRepo(remote, cwd: cwd) == nil, "\(remote)")
        }
        var spec = TaskSpec(command: ["true"])
        spec.repo = "app.git"
        let uploads = InputUploads(cwd: cwd, pack: { _, _, _ in throw CancellationError() })
        #expect(try uploads.prepare([spec])[0].repo == base + "/projects/app.git")
    }
}
