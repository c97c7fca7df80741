import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// Artifact patterns (`ArtifactGlob`) at their edges, and `ArtifactCollector` on a real
/// directory: symlinks, limits, what is skipped and why.
@Suite struct ArtifactGlobTests {
    static func matches(_ pattern: String, _ path: String) -> Bool {
        ArtifactGlob(pattern)!.matches(path.split(separator: "/"))
    }

    @Test func wildcardsStayInsideOneSegment() {
        #expect(Self.matches("*.o", "a.o"))
        #expect(!Self.matches("*.o", "dir/a.o"))
        #expect(Self.matches("*/*.o", "dir/a.o"))
        #expect(Self.matches("a?c", "abc"))
        #expect(!Self.matches("a?c", "ac"))
        #expect(!Self.matches("a?c", "a/c"))
        #expect(Self.matches("*", "x"))
        #expect(Self.matches("a*b*c", "aXXbYYc"))
        #expect(!Self.matches("a*b*c", "aXXbYY"))
        #expect(Self.matches("build/app", "build/app"))
        #expect(!Self.matches("build/app", "build/app2"))
        #expect(Self.matches("ü?", "üx"), "? is one character, not one byte")
    }

    @Test func doubleStarSpansAnyNumberOfSegments() {
        #expect(Self.matches("**/*.o", "a.o"), "zero segments")
        #expect(Self.matches("**/*.o", "x/y/z/a.o"))
        #expect(Self.matches("out/**", "out/a"))
        #expect(Self.matches("out/**", "out/a/b/c"))
        #expect(!Self.matches("out/**", "other/a"))
        #expect(Self.matches("a/**/b", "a/b"))
        #expect(Self.matches("a/**/b", "a/x/y/b"))
        #expect(Self.matches("a/**/**/b", "a/x/b"))
        #expect(Self.matches("**", "deep/er/file"))
        #expect(!Self.matches("**a", "x/ya"), "** inside a segment is two stars: one segment")
        #expect(Self.matches("**a", "ya"))
    }

    @Test func dotNamesNeedAnExplicitDot() {
        #expect(!Self.matches("*", ".hidden"))
        #expect(!Self.matches("**/*.o", ".git/a.o"))
        #expect(!Self.matches("**", ".swarm/context/t.json"))
        #expect(Self.matches(".*", ".hidden"))
        #expect(Self.matches(".swarm/**", ".swarm/context/t.json"))
        #expect(Self.matches("*.txt", "a.b.txt"))
    }

    @Test func bracketsAndEscapes() {
        #expect(Self.matches("[abc].o", "b.o"))
        #expect(!Self.matches("[abc].o", "d.o"))
        #expect(Self.matches("[a-c]x", "bx"))
        #expect(!Self.matches("[!a-c]x", "bx"))
        #expect(Self.matches("[^a-c]x", "dx"))
        #expect(Self.matches("[]]", "]"), "a ] first in the set is literal")
        #expect(Self.matches("[a-]", "-"))
        #expect(Self.matches("\\*", "*"))
        #expect(!Self.matches("\\*", "x"))
    }

    @Test func patternsThatCouldReachOutsideAreRefused() {
        #expect(ArtifactGlob.problem("") != nil)
        #expect(ArtifactGlob.problem("/etc/passwd")?.contains("absolute") == true)
        #expect(ArtifactGlob.problem("../x")?.contains("..") == true)
        #expect(ArtifactGlob.problem("a/../../x") != nil)
        #expect(ArtifactGlob.problem("a/./b") != nil)
        #expect(ArtifactGlob.problem("a//b") != nil)
        #expect(ArtifactGlob.problem("a/") != nil)
        #expect(ArtifactGlob.problem("a\0b") != nil)
        #expect(ArtifactGlob.problem("[abc") != nil)
        #expect(ArtifactGlob.problem(String(repeating: "a", count: BlobLimits.maxPathBytes + 1)) != nil)
        #expect(ArtifactGlob.problem(String(repeating: "a", count: BlobLimits.maxPathBytes)) == nil)
        #expect(ArtifactGlob.problem("..a/b..") == nil, "dots inside a name are fine")
        #expect(ArtifactGlob("../x") == nil)
    }

    @Test func theWalkDescendsOnlyWhereAPatternMayMatch() {
        let glob = ArtifactGlob("out/*/bin")!
        #expect(glob.mayMatchBelow(["out"]))
        #expect(glob.mayMatchBelow(["out", "x"]))
        #expect(!glob.mayMatchBelow(["out", "x", "bin"]), "bin is the file itself; nothing below can match")
        #expect(!glob.mayMatchBelow(["src"]))
        #expect(ArtifactGlob("**/*.o")!.mayMatchBelow(["a", "b"]))
        #expect(!ArtifactGlob("**/*.o")!.mayMatchBelow([".git"]))
    }

    /// A task that replaced its own directory by a link to another tree had that tree's files
    /// collected as its artifacts, and the removal of its unpacked inputs went through the link.
    @Test func aTaskDirectoryReplacedByALinkIsNeitherCollectedNorCleanedThrough() throws {
        let base = NSTemporaryDirectory() + "root-link-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/elsewhere/data", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: base + "/elsewhere/secret.txt", contents: Data("s".utf8))
        try FileManager.default.createSymbolicLink(atPath: base + "/task", withDestinationPath: base + "/elsewhere")
        let found = ArtifactCollector.collect(root: base + "/task", patterns: ["**"])
        #expect(found.uploads.isEmpty)
        #expect(found.skipped.map(\.path) == ["*"])
        #expect(WorkerAgent.removeInputCopies(["data"], in: base + "/task") == 0)
        #expect(FileManager.default.fileExists(atPath: base + "/elsewhere/data"))
    }

    /// A file whose name is not UTF-8 cannot be named in a result: it was left out silently.
    /// Now it is listed as skipped (lossy name, reason), and its UTF-8 neighbours are taken.
    @Test func aMatchedNameThatIsNotUTF8IsListedAsSkipped() throws {
        let root = NSTemporaryDirectory() + "bad-name-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/out", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/out/good.txt", contents: Data("g".utf8))
        let bad: [UInt8] = Array((root + "/out/bad-").utf8) + [0xFF, 0xFE] + Array(".txt".utf8) + [0]
        let fd = bad.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { open($0, O_WRONLY | O_CREAT, 0o644) }
        }
        #expect(fd >= 0)
        close(fd)
        let found = ArtifactCollector.collect(root: root, patterns: ["out/*.txt"])
        #expect(found.uploads.map(\.ref.path) == ["out/good.txt"])
        #expect(found.skipped.count == 1)
        #expect(found.skipped.first?.path.hasPrefix("out/bad-") == true)
        #expect(found.skipped.first?.reason.contains("not valid UTF-8") == true)
        #expect(ArtifactCollector.collect(root: root, patterns: ["other/*"]).skipped.isEmpty, "not matched: not listed")
    }

    /// A file a leftover process keeps growing was small when listed: hashing reads at most
    /// one byte past the limit, never to the end of an endless file.
    @Test func hashingStopsOneBytePastTheLimit() throws {
        let path = NSTemporaryDirectory() + "hash-bound-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 3 << 20))
        let bounded = try ArtifactCollector.hashFile(path, maxBytes: 10).get()
        #expect(bounded.size == 11)
        #expect(try ArtifactCollector.hashFile(path, maxBytes: 0).get().size == 1)
        let whole = try ArtifactCollector.hashFile(path).get()
        #expect(whole.size == 3 << 20)
        #expect(whole.sha256 == BlobHash.of([UInt8](repeating: 7, count: 3 << 20)))
        #expect(try ArtifactCollector.hashFile(path, maxBytes: 3 << 20).get() == whole)
    }

    @Test func theCollectorTakesRegularFilesInsideAndListsTheRestWithReasons() throws {
        let root = NSTemporaryDirectory() + "artifacts-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let outside = root + "-outside"
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: outside) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/out/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret.txt"))
        try Data("hello".utf8).write(to: URL(fileURLWithPath: root + "/out/a.txt"))
        try Data(repeating: 7, count: 300).write(to: URL(fileURLWithPath: root + "/out/sub/big.txt"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/out/sub/c.txt"))
        try fm.createSymbolicLink(atPath: root + "/out/link.txt", withDestinationPath: outside + "/secret.txt")
        try fm.createSymbolicLink(atPath: root + "/out/dirlink", withDestinationPath: outside)
        var limits = ArtifactCollector.Limits()
        limits.maxBytes = 100
        let found = ArtifactCollector.collect(root: root, patterns: ["out/**/*.txt", "out/a.txt", "../x"], limits: limits)
        #expect(found.uploads.map(\.ref.path) == ["out/a.txt", "out/sub/c.txt"], "each file once, in path order")
        var mode = stat()
        lstat(root + "/out/a.txt", &mode)
        #expect(found.uploads[0].ref == ArtifactRef(path: "out/a.txt", size: 5, sha256: BlobHash.of(Array("hello".utf8)),
                                                    mode: Int(mode.st_mode & 0o777)))
        #expect(found.uploads[0].file == root + "/out/a.txt")
        let skipped = Dictionary(uniqueKeysWithValues: found.skipped.map { ($0.path, $0.reason) })
        #expect(skipped["../x"]?.contains("climbs out") == true)
        #expect(skipped["out/link.txt"]?.contains("symbolic link") == true)
        #expect(skipped["out/sub/big.txt"]?.contains("over the limit of 100 artifact bytes") == true)
        #expect(!found.skipped.contains { $0.path.contains("secret") }, "a linked directory is not walked")

        limits.maxBytes = 1 << 20
        limits.maxCount = 1
        let one = ArtifactCollector.collect(root: root, patterns: ["out/**/*.txt"], limits: limits)
        #expect(one.uploads.map(\.ref.path) == ["out/a.txt"])
        #expect(one.skipped.filter { $0.reason.contains("over the limit of 1 artifacts") }.count == 2)
    }
}
