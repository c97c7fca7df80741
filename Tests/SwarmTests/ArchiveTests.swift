import Foundation
import Testing
@testable import SwarmArchive
import SwarmProtocol

/// Inputs are packed on the submitting machine and unpacked on a worker: the round trip keeps
/// files, modes and inner links; the hash depends only on the tree; and an archive made by
/// anyone else cannot write outside its destination.
@Suite struct ArchiveTests {
    let dir: String
    init() throws {
        dir = NSTemporaryDirectory() + "archive-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
        let full = "\(dir)/\(path)"
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        chmod(full, mode_t(mode))
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: "\(dir)/\(path)", encoding: .utf8) }

    /// A hand-made archive (what a hostile peer could upload).
    func craft(_ entries: [(ArchiveFormat.Header, [UInt8])], end: Bool = true) throws -> String {
        var bytes = ArchiveFormat.magic
        for (header, data) in entries { bytes += header.encoded() + data }
        if end { bytes.append(ArchiveFormat.Kind.end.rawValue) }
        let path = "\(dir)/crafted-\(UUID().uuidString).pk"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aDirectoryRoundTripsWithModesAndInnerLinks() throws {
        try write("src/main.c", "int main(void){return 0;}\n")
        try write("src/build.sh", "#!/bin/sh\nexit 0\n", mode: 0o755)
        try write("src/include/a.h", "#define A 1\n")
        try FileManager.default.createDirectory(atPath: "\(dir)/src/empty", withIntermediateDirectories: true)
        symlink("include/a.h", "\(dir)/src/a-link.h")
        let packed = try Archive.pack(source: "\(dir)/src", to: "\(dir)/src.pk", maxBytes: 1 << 20)
        #expect(packed.size == Int64((try FileManager.default.attributesOfItem(atPath: "\(dir)/src.pk")[.size] as! Int)))
        try FileManager.default.createDirectory(atPath: "\(dir)/task", withIntermediateDirectories: true)
        try Archive.unpack("\(dir)/src.pk", into: "\(dir)/task", dest: "work/code", maxBytes: 1 << 20)
        #expect(read("task/work/code/main.c") == "int main(void){return 0;}\n")
        #expect(read("task/work/code/include/a.h") == "#define A 1\n")
        #expect(read("task/work/code/a-link.h") == "#define A 1\n")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/task/work/code/empty"))
        var st = stat()
        lstat("\(dir)/task/work/code/build.sh", &st)
        #expect(st.st_mode & 0o777 == 0o755)
        lstat("\(dir)/task/work/code/a-link.h", &st)
        #expect(st.st_mode & S_IFMT == S_IFLNK)
        // No staging directory is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/task") == ["work"])
    }

    @Test func aSingleFileRoundTripsUnderItsDestination() throws {
        try write("notes.txt", "hello\n")
        _ = try Archive.pack(source: "\(dir)/notes.txt", to: "\(dir)/n.pk", maxBytes: 1 << 20)
        try FileManager.default.createDirectory(atPath: "\(dir)/task", withIntermediateDirectories: true)
        try Archive.unpack("\(dir)/n.pk", into: "\(dir)/task", dest: "renamed.txt", maxBytes: 1 << 20)
        #expect(read("task/renamed.txt") == "hello\n")
    }

    @Test func theHashDependsOnlyOnTheTree() throws {
        try write("a/x", "1")
        try write("a/y/z", "2")
        let first = try Archive.pack(source: "\(dir)/a", to: "\(dir)/1.pk", maxBytes: 1 << 20)
        // Same content written again in another order, later: same blob.
        try FileManager.default.removeItem(atPath: "\(dir)/a")
        try write("a/y/z", "2")
        try write("a/x", "1")
        let second = try Archive.pack(source: "\(dir)/a", to: "\(dir)/2.pk", maxBytes: 1 << 20)
        #expect(first.sha256 == second.sha256)
        try write("a/x", "3")
        let third = try Archive.pack(source: "\(dir)/a", to: "\(dir)/3.pk", maxBytes: 1 << 20)
        #expect(third.sha256 != first.sha256)
        #expect(BlobHash.problem(with: first.sha256) == nil)
    }

    @Test(arguments: ["/etc", "../outside", "sub/../../outside"])
    func packRefusesALinkPointingOut(_ target: String) throws {
        try write("in/sub/file", "x")
        symlink(target, "\(dir)/in/link")
        #expect(throws: ArchiveError.self) { try Archive.pack(source: "\(dir)/in", to: "\(dir)/o.pk", maxBytes: 1 << 20) }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/o.pk"), "a refused pack leaves no file")
    }

    @Test func packRefusesALinkThroughAnotherLink() throws {
        try write("in/d/file", "x")
        symlink("..", "\(dir)/in/d/up")
        symlink("d/up/..", "\(dir)/in/escape")
        #expect(throws: ArchiveError.self) { try Archive.pack(source: "\(dir)/in", to: "\(dir)/o.pk", maxBytes: 1 << 20) }
    }

    @Test func packRefusesOverTheLimit() throws {
        try write("big", String(repeating: "x", count: 5000))
        #expect(throws: ArchiveError.self) { try Archive.pack(source: "\(dir)/big", to: "\(dir)/o.pk", maxBytes: 4096) }
    }

    @Test(arguments: ["", "/abs", "a/../b", "./a", "a//b", "..", "a/\u{0}b"])
    func destinationsOutsideTheTaskDirectoryAreRefused(_ dest: String) {
        #expect(Archive.destProblem(dest) != nil)
    }

    @Test(arguments: ["a", "a/b/c.txt", "..hidden", "x..y", "with space/and:colon"])
    func ordinaryDestinationsAreAccepted(_ dest: String) {
        #expect(Archive.destProblem(dest) == nil)
    }

    static let hostile: [(String, [(ArchiveFormat.Header, [UInt8])])] = [
        ("climbs out", [(.init(kind: .directory, mode: 0o755, path: "", size: 0), []),
                        (.init(kind: .file, mode: 0o644, path: "../evil", size: 1), [0x41])]),
        ("absolute", [(.init(kind: .directory, mode: 0o755, path: "", size: 0), []),
                      (.init(kind: .file, mode: 0o644, path: "/tmp/evil", size: 1), [0x41])]),
        ("through a link", [(.init(kind: .directory, mode: 0o755, path: "", size: 0), []),
                            (.init(kind: .link, mode: 0o777, path: "l", size: 1), Array(".".utf8)),
                            (.init(kind: .file, mode: 0o644, path: "l/evil", size: 1), [0x41])]),
        ("link out", [(.init(kind: .directory, mode: 0o755, path: "", size: 0), []),
                      (.init(kind: .link, mode: 0o777, path: "l", size: 4), Array("/etc".utf8))]),
        ("twice", [(.init(kind: .directory, mode: 0o755, path: "", size: 0), []),
                   (.init(kind: .file, mode: 0o644, path: "a", size: 1), [0x41]),
                   (.init(kind: .file, mode: 0o644, path: "a", size: 1), [0x42])]),
        ("no parent", [(.init(kind: .directory, mode: 0o755, path: "", size: 0), []),
                       (.init(kind: .file, mode: 0o644, path: "d/a", size: 1), [0x41])]),
        ("root is a link", [(.init(kind: .link, mode: 0o777, path: "", size: 1), Array(".".utf8))]),
        ("over the byte limit", [(.init(kind: .file, mode: 0o644, path: "", size: 1 << 40), [])]),
    ]

    @Test(arguments: 0..<hostile.count)
    func unpackRefusesAHostileArchiveAndLeavesNothing(_ index: Int) throws {
        let archive = try craft(Self.hostile[index].1)
        try FileManager.default.createDirectory(atPath: "\(dir)/task", withIntermediateDirectories: true)
        #expect(throws: ArchiveError.self, "\(Self.hostile[index].0)") {
            try Archive.unpack(archive, into: "\(dir)/task", dest: "in", maxBytes: 1 << 20)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/task").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/evil"))
    }

    @Test func unpackRefusesTruncatedAndTrailingBytes() throws {
        try write("f", "hello")
        _ = try Archive.pack(source: "\(dir)/f", to: "\(dir)/f.pk", maxBytes: 1 << 20)
        let whole = try Array(Data(contentsOf: URL(fileURLWithPath: "\(dir)/f.pk")))
        try FileManager.default.createDirectory(atPath: "\(dir)/task", withIntermediateDirectories: true)
        for variant in [Array(whole.dropLast()), Array(whole.dropLast(3)), whole + [0], Array(whole.prefix(4))] {
            try Data(variant).write(to: URL(fileURLWithPath: "\(dir)/v.pk"))
            #expect(throws: ArchiveError.self) { try Archive.unpack("\(dir)/v.pk", into: "\(dir)/task", dest: "f", maxBytes: 1 << 20) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/task").isEmpty)
    }

    /// Big files are copied by the kernel past the read buffer (`sendfile`): contents
    /// must come out byte for byte, with the entries after them in place, and an archive cut
    /// inside that copy is refused with nothing left.
    @Test func filesLargerThanTheReadBufferRoundTripAndACutOneIsRefused() throws {
        var random = SystemRandomNumberGenerator()
        let big = (0..<(3 << 20) + 17).map { _ in UInt8.random(in: 0...255, using: &random) }
        try FileManager.default.createDirectory(atPath: "\(dir)/src", withIntermediateDirectories: true)
        try Data(big).write(to: URL(fileURLWithPath: "\(dir)/src/a-big.bin"))
        try write("src/b-after.txt", "after\n")
        let packed = try Archive.pack(source: "\(dir)/src", to: "\(dir)/big.pk", maxBytes: 8 << 20)
        try FileManager.default.createDirectory(atPath: "\(dir)/task", withIntermediateDirectories: true)
        try Archive.unpack("\(dir)/big.pk", into: "\(dir)/task", dest: "in", maxBytes: packed.size)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: "\(dir)/task/in/a-big.bin"))) == big)
        #expect(read("task/in/b-after.txt") == "after\n")

        let whole = try Array(Data(contentsOf: URL(fileURLWithPath: "\(dir)/big.pk")))
        try Data(whole.prefix(2 << 20)).write(to: URL(fileURLWithPath: "\(dir)/cut.pk"))
        try FileManager.default.createDirectory(atPath: "\(dir)/task2", withIntermediateDirectories: true)
        #expect(throws: ArchiveError.self) { try Archive.unpack("\(dir)/cut.pk", into: "\(dir)/task2", dest: "in", maxBytes: packed.size) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/task2").isEmpty)
    }

    @Test func unpackNeverFollowsALinkInTheTaskDirectory() throws {
        try write("f", "hello")
        _ = try Archive.pack(source: "\(dir)/f", to: "\(dir)/f.pk", maxBytes: 1 << 20)
        try FileManager.default.createDirectory(atPath: "\(dir)/task", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/outside", withIntermediateDirectories: true)
        // A repository's worktree may hold a link; an input placed "under" it must not land outside.
        symlink("\(dir)/outside", "\(dir)/task/lib")
        #expect(throws: ArchiveError.self) { try Archive.unpack("\(dir)/f.pk", into: "\(dir)/task", dest: "lib/f", maxBytes: 1 << 20) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/outside").isEmpty)
        // An existing destination is not replaced.
        try write("task/existing", "keep")
        #expect(throws: ArchiveError.self) { try Archive.unpack("\(dir)/f.pk", into: "\(dir)/task", dest: "existing", maxBytes: 1 << 20) }
        #expect(read("task/existing") == "keep")
    }
}
