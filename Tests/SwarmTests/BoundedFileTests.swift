import Foundation
import Testing
import SwarmClient
import SwarmCluster
@testable import SwarmNode
import SwarmProtocol

/// Every file someone else names or can replace is read with a bound (`BoundedFile`). Before,
/// `FileManager.contents(atPath:)` read a user's files: a pipe or FIFO came back as "not
/// readable" (`--secret-env K=<(pass show key)`, `--prompt-file /dev/stdin`, `--file <(gen)`
/// were all refused), `/dev/zero` too (a misleading word), and a huge file was read whole before
/// being refused (a 200 MiB secret file: 436 MB resident). A worktree's `.git` that a task
/// replaced by a FIFO or a link to a device is read by the same function, regular files only.
@Suite struct BoundedFileTests {
    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "swarm-bounded-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `GitWorkspace.adminDir(of: dir)` run on a thread, waited for at most `seconds`: `.some`
    /// with its answer, or nil when it did not return (it blocked), so a regression fails the
    /// test instead of hanging the suite.
    static func adminDir(of dir: String, within seconds: Double) -> String?? {
        final class Box: @unchecked Sendable { var answer: String? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        Thread { box.answer = GitWorkspace.adminDir(of: dir); done.signal() }.start()
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return .some(box.answer)
    }

    @Test func aDeviceThatNeverEndsIsRefusedPastTheLimit() {
        #expect(throws: BoundedFile.Failure("it is over 1000 bytes")) {
            _ = try BoundedFile.read("/dev/zero", limit: 1000)
        }
        #expect(throws: BoundedFile.Failure("no such file")) { _ = try BoundedFile.read("/nonexistent/x", limit: 10) }
        #expect(throws: BoundedFile.Failure("it is a directory")) { _ = try BoundedFile.read("/tmp", limit: 10) }
        #expect(throws: BoundedFile.Failure("it is not a regular file")) {
            _ = try BoundedFile.read("/dev/zero", limit: 10, kinds: .regularOnly)
        }
    }

    @Test func aFileAtTheLimitIsReadAndOneByteMoreIsNot() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f"
        try Data(repeating: 0x61, count: 100).write(to: URL(fileURLWithPath: path))
        #expect(try BoundedFile.read(path, limit: 100).count == 100)
        #expect(throws: BoundedFile.Failure("it is over 99 bytes")) { _ = try BoundedFile.read(path, limit: 99) }
        try Data().write(to: URL(fileURLWithPath: path))
        #expect(try BoundedFile.read(path, limit: 0) == [])
    }

    /// `--secret-env K=<(cmd)` is a pipe: it is read (to its end) like a file.
    @Test func aFIFOWithAWriterIsReadToItsEnd() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/p"
        #expect(mkfifo(fifo, 0o600) == 0)
        Thread {
            let fd = open(fifo, O_WRONLY)
            _ = "s3cret\n".withCString { write(fd, $0, 7) }
            close(fd)
        }.start()
        var options = TaskOptions()
        options.command = ["true"]
        options.secretEnvFiles = ["K": fifo]
        #expect(try options.spec().secretEnv == ["K": "s3cret"])
    }

    /// A named FIFO with no writer: `waiting` is called once (the client prints "waiting for a
    /// writer on FIFO ..."), then the read waits and gets what a writer that comes later
    /// writes. An anonymous pipe (`<(cmd)`) has its writer: no call.
    @Test func aFIFOWithoutAWriterSaysSoThenWaitsForOne() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/p"
        #expect(mkfifo(fifo, 0o600) == 0)
        final class Box: @unchecked Sendable { var bytes: [UInt8]?; var waits = 0 }
        let box = Box()
        let waiting = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread {
            box.bytes = try? BoundedFile.read(fifo, limit: 100) { box.waits += 1; waiting.signal() }
            done.signal()
        }.start()
        #expect(waiting.wait(timeout: .now() + 20) == .success, "no waiting call for a FIFO without a writer")
        let fd = open(fifo, O_WRONLY)  // the reader holds it open: does not wait
        #expect(fd >= 0)
        _ = "late\n".withCString { write(fd, $0, 5) }
        close(fd)
        #expect(done.wait(timeout: .now() + 20) == .success)
        #expect(box.bytes == Array("late\n".utf8))
        #expect(box.waits == 1)

        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        _ = "piped".withCString { write(ends[1], $0, 5) }
        close(ends[1])
        defer { close(ends[0]) }
        var waits = 0
        #expect(try BoundedFile.read("/proc/self/fd/\(ends[0])", limit: 100) { waits += 1 } == Array("piped".utf8))
        #expect(waits == 0)
    }

    /// The submit path: each file kind is refused with one line naming the option and file.
    @Test func submitRefusesEndlessFilesWithOneLine() throws {
        var options = TaskOptions()
        options.command = ["true"]
        options.secretEnvFiles = ["K": "/dev/zero"]
        #expect(throws: TaskOptionsError("cannot read --secret-env K '/dev/zero': it is over \(Bounds.secretValueBytes + 2) bytes")) {
            _ = try options.spec()
        }
        options.secretEnvFiles = ["K": "/tmp"]
        #expect(throws: TaskOptionsError("cannot read --secret-env K '/tmp': it is a directory")) { _ = try options.spec() }
        options.secretEnvFiles = nil
        options.task.command = []
        options.runtime = "claude"
        options.promptFile = "/dev/zero"
        #expect(throws: TaskOptionsError("cannot read --prompt-file '/dev/zero': it is over \(TaskSpec.maxPromptBytes) bytes")) {
            _ = try options.spec()
        }
        options.promptFile = nil
        options.prompt = "p"
        options.contextFile = "/dev/zero"
        #expect(throws: TaskOptionsError("cannot read --context-file '/dev/zero': it is over \(FrameBudget.maxSpecBytes) bytes")) {
            _ = try options.spec()
        }
        #expect(throws: TaskFileError(file: "/dev/zero", line: nil, reason: "cannot read it: it is over \(TaskOptions.maxTaskFileBytes) bytes")) {
            _ = try TaskFile.load(path: "/dev/zero")
        }
        do {
            _ = try ClusterFile.load(path: "/dev/zero")
            Issue.record("a cluster file of /dev/zero was read")
        } catch {
            #expect("\(error)" == "cannot read config file '/dev/zero': it is over \(ClusterFile.maxFileBytes) bytes")
        }
    }

    /// A task replaced its worktree's `.git` by a FIFO, or by a link to `/dev/zero`: the
    /// worker reads neither (at its restart it asks every leftover task directory). This held
    /// before too (Foundation refused both); it guards the move to `BoundedFile`.
    @Test func aWorktreeGitFileReplacedByAFIFOOrADeviceLinkIsNotRead() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/.git"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(Self.adminDir(of: dir, within: 20) == .some(nil), "adminDir blocked on a FIFO")
        // Unblock a reader left behind by a failing run, so the thread can end.
        let writer = open(fifo, O_WRONLY | O_NONBLOCK)
        if writer >= 0 { close(writer) }
        try FileManager.default.removeItem(atPath: fifo)
        try FileManager.default.createSymbolicLink(atPath: fifo, withDestinationPath: "/dev/zero")
        #expect(Self.adminDir(of: dir, within: 20) == .some(nil), "adminDir read /dev/zero")
        try FileManager.default.removeItem(atPath: fifo)
        try "gitdir: /somewhere/worktrees/x\n".write(toFile: fifo, atomically: false, encoding: .utf8)
        #expect(GitWorkspace.adminDir(of: dir) == "/somewhere/worktrees/x")
    }
}
