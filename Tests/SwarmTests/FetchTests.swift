import Foundation
import Testing
@testable import SwarmClient
import SwarmProtocol

/// Issue 11, client items 4 and 5: `swarm fetch` plans (paths checked before anything is
/// written, never outside DIR), downloads through a transport, and `swarm status` shows
/// artifacts, skipped ones and the git outcome.
@Suite struct FetchTests {
    /// A task names its files: `swarm fetch` printed them raw, so a name with an escape
    /// sequence reached the terminal and one with a newline forged a line.
    @Test func fetchedLinesEscapeControlCharactersOfTheTasksNames() {
        let sha = String(repeating: "a", count: 64)
        let item = ArtifactFetch.Item(artifact: ArtifactRef(path: "a\u{1B}]0;PWNED\u{07}b\nfake line", size: 1, sha256: sha), target: "out/a\u{1B}]0;PWNED\u{07}b\nfake line")
        let line = ArtifactFetch.fetchedLine(item)
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(line.hasSuffix("  1 bytes  sha256 aaaaaaaaaaaa"))
        let plain = ArtifactFetch.Item(artifact: ArtifactRef(path: "bin/app", size: 2, sha256: sha), target: "out/bin/app")
        #expect(ArtifactFetch.fetchedLine(plain) == "out/bin/app  2 bytes  sha256 aaaaaaaaaaaa")
    }

    static let h1 = BlobHash.of(Array("one".utf8)), h2 = BlobHash.of(Array("two".utf8))

    static func task(_ artifacts: [ArtifactRef]?, skipped: [SkippedArtifact]? = nil, git: GitOutcome? = nil,
                     state: TaskState = .succeeded) -> TaskInfo {
        var info = TaskInfo(id: "t1", state: state, command: ["true"], submittedAt: 1)
        info.artifacts = artifacts
        info.skippedArtifacts = skipped
        info.git = git
        return info
    }

    static func error(_ body: () throws -> Void) -> FetchError? {
        do { try body(); return nil } catch { return error as? FetchError ?? FetchError("unexpected \(error)", status: -1) }
    }

    @Test func plansEveryArtifactOrTheNamedOnes() throws {
        let info = Self.task([ArtifactRef(path: "out/app", size: 3, sha256: Self.h1), ArtifactRef(path: "log.txt", size: 3, sha256: Self.h2)])
        #expect(try ArtifactFetch.plan(info, paths: [], into: "d").map(\.target) == ["d/out/app", "d/log.txt"])
        #expect(try ArtifactFetch.plan(info, paths: ["log.txt", "log.txt"], into: "/x").map(\.target) == ["/x/log.txt"])
        let unknown = Self.error { _ = try ArtifactFetch.plan(info, paths: ["log.txt", "nope"], into: ".") }
        #expect(unknown == FetchError("task t1 has no artifact 'nope' (see 'swarm status t1')"))
    }

    @Test func refusesEveryPathThatWouldEscapeBeforeWriting() {
        for path in ["../x", "/etc/passwd", "a/../../x", "a/./b", "", "a//b"] {
            let info = Self.task([ArtifactRef(path: "ok", size: 3, sha256: Self.h1), ArtifactRef(path: path, size: 3, sha256: Self.h2)])
            let error = Self.error { _ = try ArtifactFetch.plan(info, paths: [], into: "dir") }
            #expect(error?.description.contains("it would be written outside dir") == true, "\(path): \(String(describing: error))")
            #expect(error?.status == 2)
        }
        let badHash = Self.task([ArtifactRef(path: "ok", size: 3, sha256: "../../x")])
        #expect(Self.error { _ = try ArtifactFetch.plan(badHash, paths: [], into: "d") }?.description.contains("invalid blob hash") == true)
    }

    @Test func nothingToFetchSaysWhyWithStatusOne() {
        #expect(Self.error { _ = try ArtifactFetch.plan(Self.task(nil), paths: [], into: ".") } == FetchError("task t1 has no artifacts", status: 1))
        #expect(Self.error { _ = try ArtifactFetch.plan(Self.task([], state: .running), paths: [], into: ".") }
            == FetchError("task t1 has not ended (running): its artifacts are uploaded when it ends", status: 1))
        let skipped = Self.task(nil, skipped: [SkippedArtifact(path: "big", size: 1 << 30, reason: "over the 256 MiB limit")])
        #expect(Self.error { _ = try ArtifactFetch.plan(skipped, paths: [], into: ".") }?.description
            == "task t1 has no uploaded artifacts: 1 was skipped ('big': over the 256 MiB limit)")
        #expect(Self.error { _ = try ArtifactFetch.plan(skipped, paths: ["big"], into: ".") }
            == FetchError("artifact 'big' of task t1 was not uploaded: over the 256 MiB limit"))
    }

    final class FakeTransport: BlobTransport {
        var blobs: [String: [UInt8]] = [:]
        func uploadBlob(file path: String, sha256: String, size: Int64) throws(ClientError) {}
        func downloadBlob(_ sha256: String, size: Int64, to path: String) throws(ClientError) {
            guard let bytes = blobs[sha256] else { throw .server(.unknownBlob, "unknown blob \(sha256.prefix(8))") }
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
        }
    }

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "swarm-fetch-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func downloadsIntoNewDirectoriesAndRefusesALinkOnTheWay() throws {
        let root = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let transport = FakeTransport()
        transport.blobs = [Self.h1: Array("one".utf8), Self.h2: Array("two".utf8)]
        let info = Self.task([ArtifactRef(path: "out/bin/app", size: 3, sha256: Self.h1), ArtifactRef(path: "top", size: 3, sha256: Self.h2)])
        let dir = root + "/new/dir"
        var done: [String] = []
        try ArtifactFetch.fetch(try ArtifactFetch.plan(info, paths: [], into: dir), into: dir, via: transport) { done.append($0.target) }
        #expect(done == [dir + "/out/bin/app", dir + "/top"])
        #expect(FileManager.default.contents(atPath: dir + "/out/bin/app") == Data("one".utf8))
        // A link planted where a directory of the path goes: refused, nothing written through it.
        let outside = root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let linked = root + "/linked"
        try FileManager.default.createDirectory(atPath: linked, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: linked + "/out", withDestinationPath: outside)
        let error = Self.error {
            try ArtifactFetch.fetch(try ArtifactFetch.plan(info, paths: ["out/bin/app"], into: linked), into: linked, via: transport) { _ in }
        }
        #expect(error?.description.contains("is a symbolic link (it could lead out of") == true, "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        // A blob the scheduler does not have: the artifact is named.
        transport.blobs = [:]
        let missing = Self.error { try ArtifactFetch.fetch(try ArtifactFetch.plan(info, paths: ["top"], into: dir), into: dir, via: transport) { _ in } }
        #expect(missing?.description.hasPrefix("artifact 'top': unknown blob") == true)
    }

    @Test func bundleOrWhyNot() throws {
        let git = GitOutcome(branch: "swarm/t1", base: String(repeating: "b", count: 40), head: String(repeating: "c", count: 40), commits: 2)
        let bundle = ArtifactRef(path: "swarm-t1.bundle", size: 9, sha256: Self.h1, kind: "gitBundle")
        #expect(try ArtifactFetch.bundle(of: Self.task([ArtifactRef(path: "x", size: 1, sha256: Self.h2), bundle], git: git)) == bundle)
        var none = git
        none.commits = 0
        #expect(Self.error { _ = try ArtifactFetch.bundle(of: Self.task(nil, git: none)) }
            == FetchError("task t1 made no commits (swarm/t1 stays at bbbbbbbbbbbb)", status: 1))
        #expect(Self.error { _ = try ArtifactFetch.bundle(of: Self.task(nil)) }?.description.contains("has no git branch") == true)
        #expect(Self.error { _ = try ArtifactFetch.bundle(of: Self.task(nil, state: .queued)) }?.status == 1)
        let skipped = Self.task(nil, skipped: [SkippedArtifact(path: "swarm-t1.bundle", size: nil, reason: "not uploaded")], git: git)
        #expect(Self.error { _ = try ArtifactFetch.bundle(of: skipped) } == FetchError("the git bundle of task t1 was not uploaded: not uploaded"))
    }

    @Test func statusShowsArtifactsSkippedAndGit() {
        let git = GitOutcome(branch: "swarm/t1", base: String(repeating: "b", count: 40), head: String(repeating: "c", count: 40), commits: 1)
        let info = Self.task([ArtifactRef(path: "out/app", size: 1234, sha256: Self.h1),
                              ArtifactRef(path: "swarm-t1.bundle", size: 99, sha256: Self.h2, kind: "gitBundle")],
                             skipped: [SkippedArtifact(path: "huge.bin", size: 300 << 20, reason: "over the per-task limit"),
                                       SkippedArtifact(path: "sock", size: nil, reason: "not a regular file")], git: git)
        let text = Output.taskDetail(info)
        #expect(text.contains("artifacts: 2 (1333 bytes; swarm fetch t1)"))
        #expect(text.contains("\n  out/app  1234 bytes\n"))
        #expect(text.contains("\n  swarm-t1.bundle  99 bytes  (git bundle: swarm fetch t1 --git)"))
        #expect(text.contains("skipped:   2 not uploaded\n  huge.bin  314572800 bytes: over the per-task limit\n  sock: not a regular file"))
        #expect(text.contains("git:       branch swarm/t1, 1 commit (base bbbbbbbbbbbb, head cccccccccccc)"))
        #expect(!Output.taskDetail(Self.task(nil)).contains("artifacts:"))
    }
}
