import Foundation
import Testing
@testable import SwarmUV

/// `UVFSEvent`: names of a watched directory's entries as they come and go; closed without a
/// leak.
@Suite struct UVFSEventTests {
    @Test func namesACreatedAndARenamedFileThenClosesClean() throws {
        let dir = NSTemporaryDirectory() + "swarm-fsevent-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loop = EventLoop()
        let watcher = try UVFSEvent(loop: loop)
        var seen: [UVFSEvent.Event] = []
        try watcher.start(path: dir) { seen.append($0) }
        FileManager.default.createFile(atPath: dir + "/a.tmp", contents: Data("x".utf8))
        #expect(rename(dir + "/a.tmp", dir + "/a.json") == 0)
        #expect(runLoop(loop) { seen.contains { $0.name == "a.json" && $0.renamed } })
        #expect(seen.contains { $0.name == "a.tmp" } && seen.allSatisfy { $0.error == nil })
        watcher.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aMissingDirectoryIsAnErrorNotACrash() throws {
        let loop = EventLoop()
        let watcher = try UVFSEvent(loop: loop)
        #expect(throws: UVError.self) { try watcher.start(path: "/nonexistent-\(getpid())/requests") { _ in } }
        watcher.close()
        try closeLoopCheckingLeaks(loop)
    }
}
