import Foundation
import Testing
@testable import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// `UVProcess` (posix_spawn + pidfd) on a real loop. Every test ends by closing the loop,
/// which fails if any handle was left open.
@Suite struct UVProcessTests {
    /// Runs `options` to its exit, collecting stdout; returns (status, signal, stdout).
    func run(_ loop: EventLoop, _ options: SpawnOptions, stdin: String? = nil) throws -> (Int64, Int32, String) {
        var options = options
        let out = try UVPipe(loop: loop)
        options.stdout = .pipe(out)
        var input: UVPipe?
        if stdin != nil {
            input = try UVPipe(loop: loop)
            options.stdin = .pipe(input!)
        }
        var exit: (Int64, Int32)?
        let process = try UVProcess.spawn(loop: loop, options) { exit = ($0, $1) }
        if let stdin, let input {
            input.stream.write(Array(stdin.utf8)) { _ in input.close() }
        }
        var text = ""
        var eof = false
        try out.stream.startReading {
            if case .data(let b) = $0 { text += String(decoding: Array(b), as: UTF8.self) } else { eof = true }
        }
        #expect(runLoop(loop, timeoutMs: 10_000) { exit != nil && eof })
        out.close(); input?.close(); process.close()
        return (exit?.0 ?? -99, exit?.1 ?? -99, text)
    }

    @Test func missingProgramOrDirectoryThrowsAndLeaksNothing() throws {
        let loop = EventLoop()
        let cases: [(String, String?)] = [
            ("/nonexistent/program-\(getpid())", nil),      // a path
            ("no-such-program-\(getpid())", nil),           // a name searched in PATH
            ("sh", "/nonexistent/dir-\(getpid())"),         // a working directory
        ]
        for (program, cwd) in cases {
            let out = try UVPipe(loop: loop)
            let input = try UVPipe(loop: loop)
            var options = SpawnOptions(executable: program, arguments: [])
            options.workingDirectory = cwd
            options.stdout = .pipe(out)
            options.stdin = .pipe(input)
            var fired = false
            #expect(throws: UVError.notFound) {
                _ = try UVProcess.spawn(loop: loop, options) { _, _ in fired = true }
            }
            out.close(); input.close()
            for _ in 0..<5 { loop.runNoWait() }
            #expect(!fired)
        }
        try closeLoopCheckingLeaks(loop)
    }

    @Test func exitCodeAndSignalAreReported() throws {
        let loop = EventLoop()
        let code = try run(loop, SpawnOptions(executable: "sh", arguments: ["-c", "exit 7"]))
        #expect(code.0 == 7 && code.1 == 0)
        let killed = try run(loop, SpawnOptions(executable: "sh", arguments: ["-c", "kill -TERM $$"]))
        #expect(killed.0 == 0 && killed.1 == SIGTERM)
        try closeLoopCheckingLeaks(loop)
    }

    @Test func workingDirectoryAndEnvironmentAreApplied() throws {
        let loop = EventLoop()
        var options = SpawnOptions(executable: "sh", arguments: ["-c", "pwd; echo \"$FOO\"; echo \"${HOME-unset}\""])
        options.workingDirectory = "/tmp"
        options.environment = ["FOO=bar baz", "PATH=/usr/bin:/bin"]
        let r = try run(loop, options)
        #expect(r.0 == 0)
        #expect(r.2 == "/tmp\nbar baz\nunset\n")
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aNameIsSearchedInTheChildsPath() throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "swarm-path-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = "only-in-child-path-\(getpid())"
        // A link, not a written script: a file just written may still be open for writing in
        // a child that another test is spawning right now (ETXTBSY).
        #expect(symlink("/bin/echo", "\(dir)/\(name)") == 0)
        var options = SpawnOptions(executable: name, arguments: ["x"])
        options.environment = ["PATH=/nonexistent:\(dir):/usr/bin:/bin"]
        let r = try run(loop, options)
        #expect(r.0 == 0 && r.2 == "x\n")
        // Our own PATH does not have it.
        #expect(throws: UVError.notFound) {
            _ = try UVProcess.spawn(loop: loop, SpawnOptions(executable: name, arguments: [])) { _, _ in }
        }
        try closeLoopCheckingLeaks(loop)
    }

    @Test func childLeadsItsOwnSessionWithAResetSignalState() throws {
        let loop = EventLoop()
        // We ignore SIGPIPE; the child must not inherit that, nor a blocked mask.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGUSR1)
        var old = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        // grep itself reads its own state (a shell would block signals while it waits).
        let state = try run(loop, SpawnOptions(executable: "grep", arguments: ["-E", "^Sig(Blk|Ign)", "/proc/self/status"]))
        #expect(state.2 == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")
        var exit: (Int64, Int32)?
        let process = try UVProcess.spawn(loop: loop, SpawnOptions(executable: "sleep", arguments: ["30"])) { exit = ($0, $1) }
        #expect(getsid(process.pid) == process.pid)
        #expect(getpgid(process.pid) == process.pid)
        try process.signal(SIGKILL)
        #expect(runLoop(loop) { exit != nil })
        #expect(exit?.0 == 0 && exit?.1 == SIGKILL)
        #expect(process.exited)
        #expect(throws: UVError.self) { try process.signal(SIGTERM) }
        process.close()
        process.close()  // idempotent
        try closeLoopCheckingLeaks(loop)
    }

    @Test func stdinAndStdoutPipesWork() throws {
        let loop = EventLoop()
        let text = (0..<5_000).map { "line \($0)" }.joined(separator: "\n") + "\n"  // > a pipe buffer
        let r = try run(loop, SpawnOptions(executable: "cat", arguments: []), stdin: text)
        #expect(r.0 == 0 && r.1 == 0)
        #expect(r.2 == text)
        try closeLoopCheckingLeaks(loop)
    }

    @Test func closingBeforeTheExitAbandonsTheChild() throws {
        let loop = EventLoop()
        var fired = false
        let process = try UVProcess.spawn(loop: loop, SpawnOptions(executable: "sleep", arguments: ["0.05"])) { _, _ in fired = true }
        let pid = process.pid
        var closed = false
        process.close { closed = true }
        #expect(runLoop(loop) { closed })
        usleep(150_000)
        for _ in 0..<5 { loop.runNoWait() }
        #expect(!fired)
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)  // left to whoever reaps it
        try closeLoopCheckingLeaks(loop)
    }

    @Test func twoThousandQuickChildrenAt64AtOnceAreEachReportedOnce() throws {
        let loop = EventLoop()
        let total = 2_000, concurrency = 64
        var started = 0, running = 0
        var exits = [Int](repeating: 0, count: total)
        var failures = 0
        var live: [Int: UVProcess] = [:]
        func launch() {
            while running < concurrency && started < total {
                let index = started
                started += 1
                running += 1
                let process = try! UVProcess.spawn(loop: loop, SpawnOptions(executable: "true", arguments: [])) { status, signal in
                    exits[index] += 1
                    if status != 0 || signal != 0 { failures += 1 }
                    running -= 1
                    live.removeValue(forKey: index)?.close()
                    launch()
                }
                live[index] = process
            }
        }
        launch()
        #expect(runLoop(loop, timeoutMs: 60_000) { started == total && running == 0 })
        #expect(exits.allSatisfy { $0 == 1 })
        #expect(failures == 0)
        #expect(live.isEmpty)
        try closeLoopCheckingLeaks(loop)
    }
}
