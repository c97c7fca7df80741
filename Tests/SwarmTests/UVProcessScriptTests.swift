import Foundation
import Testing
@testable import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Files that are not programs, run by `UVProcess.spawn`: a file without a `#!` line runs
/// with `/bin/sh` (as `execvp` does; glibc's `posix_spawn` fails it ENOEXEC), by path and by
/// name; a file without the execute bit and a directory are a clear spawn error. Every test
/// ends by closing the loop, which fails if any handle was left open.
@Suite struct UVProcessScriptTests {
    /// A fresh directory for one test's files.
    static func makeDirectory() throws -> String {
        let dir: String = NSTemporaryDirectory() + "swarm-script-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `options` to its exit: (status, signal, stdout).
    func run(_ loop: EventLoop, _ options: SpawnOptions) throws -> (Int64, Int32, String) {
        try UVProcessTests().run(loop, options)
    }

    /// Spawning `options` throws `expected`, and leaves no child behind.
    func expectSpawnFails(_ loop: EventLoop, _ options: SpawnOptions, _ expected: UVError) {
        var fired = false
        #expect(throws: expected, "\(options.executable)") {
            _ = try UVProcess.spawn(loop: loop, options) { _, _ in fired = true }
        }
        for _ in 0..<5 { loop.runNoWait() }
        #expect(!fired)
    }

    @Test func aScriptWithoutAShebangRunsWithShByPathAndByName() throws {
        let loop = EventLoop()
        let dir: String = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name: String = "plain-\(getpid())"
        try writeExecutable("printf '%s|' \"$@\"\nexit 9\n", to: "\(dir)/\(name)")

        let byPath: (Int64, Int32, String) = try run(loop, SpawnOptions(executable: "\(dir)/\(name)", arguments: ["a b", "c"]))
        #expect(byPath.0 == 9, "not 'cannot start': the file ran")
        #expect(byPath.1 == 0)
        #expect(byPath.2 == "a b|c|")

        var options = SpawnOptions(executable: name, arguments: ["x"])
        options.environment = ["PATH=/nonexistent:\(dir):/usr/bin:/bin"]
        // Twice: the second spawn takes the path from the lookup cache (kept 1 s).
        for _ in 0..<2 {
            let byName: (Int64, Int32, String) = try run(loop, options)
            #expect(byName.0 == 9)
            #expect(byName.1 == 0)
            #expect(byName.2 == "x|")
        }
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aFileWithoutTheExecuteBitOrADirectoryIsASpawnError() throws {
        let loop = EventLoop()
        let dir: String = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let denied = UVError(-EACCES)
        // Even for root: exec needs an execute bit.
        let name: String = "not-executable-\(getpid())"
        try writeExecutable("exit 9\n", to: "\(dir)/\(name)", mode: 0o644)
        expectSpawnFails(loop, SpawnOptions(executable: "\(dir)/\(name)", arguments: []), denied)
        var byName = SpawnOptions(executable: name, arguments: [])
        byName.environment = ["PATH=\(dir)"]
        expectSpawnFails(loop, byName, denied)

        let sub: String = "a-directory-\(getpid())"
        try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        expectSpawnFails(loop, SpawnOptions(executable: "\(dir)/\(sub)", arguments: []), denied)
        // A search skips directories, as execvp's does.
        var dirByName = SpawnOptions(executable: sub, arguments: [])
        dirByName.environment = ["PATH=\(dir)"]
        expectSpawnFails(loop, dirByName, UVError.notFound)
        try closeLoopCheckingLeaks(loop)
    }

    @Test func anEmptyFileExitsZeroAndGarbageGetsAnExitFromSh() throws {
        let loop = EventLoop()
        let dir: String = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeExecutable([], to: "\(dir)/empty")
        let empty: (Int64, Int32, String) = try run(loop, SpawnOptions(executable: "\(dir)/empty", arguments: []))
        #expect(empty.0 == 0)
        #expect(empty.1 == 0)

        // Not an ELF, no `#!`: sh reads it and fails in its own way (dash: 127, not found;
        // bash: 126). Bytes no shell takes for an operator (a `>` among them once made a
        // file in the test's directory), and run in `dir` all the same.
        var garbage: [UInt8] = [0x7F, 0x45, 0x4C, 0x00]
        for i in 0..<512 { garbage.append(0x80 | UInt8(truncatingIfNeeded: i &* 131 &+ 7)) }
        try writeExecutable(garbage, to: "\(dir)/garbage")
        var options = SpawnOptions(executable: "\(dir)/garbage", arguments: [])
        options.workingDirectory = dir
        let ran: (Int64, Int32, String) = try run(loop, options)
        #expect(ran.0 >= 1, "sh's exit, not a crash nor a made-up status: \(ran)")
        #expect(ran.0 <= 127)
        #expect(ran.1 == 0)
        try closeLoopCheckingLeaks(loop)
    }
}
