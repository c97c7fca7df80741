import Foundation
import Testing
@testable import SwarmNode
import SwarmProtocol

@Suite struct TaskLogTests {
    func withLog(maxLine: Int = 16 * 1024, maxBytes: Int = 1 << 20, _ body: (TaskLog) -> Void) throws -> [String] {
        let path = NSTemporaryDirectory() + "tasklog-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let log = try TaskLog(path: path, maxLine: maxLine, maxBytes: maxBytes)
        body(log)
        log.close()
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    func feed(_ log: TaskLog, _ stream: OutputChannel, _ text: String, at ms: Int64 = 0) {
        Array(text.utf8).withUnsafeBytes { log.output(stream, $0, at: ms) }
    }

    /// A run's log (deferred) is created only by output or a lifecycle line that is not
    /// routine; routine lines held until then are written first, in order. A run with only
    /// routine lines leaves no file.
    @Test func aDeferredLogIsCreatedOnlyByOutputOrAnUnusualLine() throws {
        let base = NSTemporaryDirectory() + "tasklog-deferred-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
        // 1. Only routine lines: no file, before or after the close.
        let quiet = try TaskLog(path: base + "-quiet", deferred: true)
        quiet.lifecycle("started pid 1: true", at: 0, routine: true)
        quiet.lifecycle("exited with code 0", at: 1, routine: true)
        quiet.flush(.stdout, at: 2)
        #expect(read(base + "-quiet") == nil)
        quiet.lifecycle("result: succeeded", at: 3, routine: true)
        quiet.close()
        #expect(read(base + "-quiet") == nil)
        // 2. Output: the file appears with the held lines first, then everything in order.
        let chatty = try TaskLog(path: base + "-chatty", deferred: true)
        defer { unlink(base + "-chatty") }
        chatty.lifecycle("started pid 2: echo hi", at: 0, routine: true)
        #expect(read(base + "-chatty") == nil)
        feed(chatty, .stdout, "hi\n", at: 1)
        chatty.lifecycle("exited with code 0", at: 2, routine: true)
        chatty.lifecycle("result: succeeded", at: 3, routine: true)
        chatty.close()
        #expect(read(base + "-chatty") == [
            "1970-01-01T00:00:00.000Z swarm  started pid 2: echo hi", "1970-01-01T00:00:00.001Z stdout hi",
            "1970-01-01T00:00:00.002Z swarm  exited with code 0", "1970-01-01T00:00:00.003Z swarm  result: succeeded", "",
        ].joined(separator: "\n"))
        // 3. A line that is not routine (a warning, a kill) creates it without output.
        let warned = try TaskLog(path: base + "-warned", deferred: true)
        defer { unlink(base + "-warned") }
        warned.lifecycle("started pid 3: sleep 60", at: 0, routine: true)
        warned.lifecycle("silence warning: no output for 45 s", at: 1)
        warned.close()
        #expect(read(base + "-warned")?.split(separator: "\n").count == 2)
        // 4. Nothing written after the close, routine or not.
        warned.lifecycle("late", at: 4)
        #expect(read(base + "-warned")?.split(separator: "\n").count == 2)
        // The runner's classification: the start and exit lines of their events only.
        #expect(TaskRunner.isRoutine("started pid 4: true", of: .spawned(pid: 4, nowMs: 0)))
        #expect(TaskRunner.isRoutine("exited with code 1", of: .exited(status: 1, signal: 0, nowMs: 0)))
        #expect(!TaskRunner.isRoutine("output still open after exit: killing leftover processes of the group",
                                      of: .exited(status: 0, signal: 0, nowMs: 0)))
        #expect(!TaskRunner.isRoutine("spawn failed: command not found: nope", of: .spawnFailed(reason: "x", nowMs: 0)))
    }

    @Test func linesAreTimestampedAndLabelledPerStreamAcrossChunks() throws {
        let lines = try withLog { log in
            log.lifecycle("started pid 1", at: 1_795_000_000_123)
            feed(log, .stdout, "hel", at: 1_795_000_000_200)
            feed(log, .stderr, "warn\n", at: 1_795_000_000_201)
            feed(log, .stdout, "lo\nwor", at: 1_795_000_000_202)
            log.flush(.stdout, at: 1_795_000_000_300)
        }
        #expect(lines == [
            "2026-11-18T11:06:40.123Z swarm  started pid 1",
            "2026-11-18T11:06:40.201Z stderr warn",
            "2026-11-18T11:06:40.202Z stdout hello",
            "2026-11-18T11:06:40.300Z stdout wor",
            "",
        ])
    }

    /// A lifecycle line carries text from the task's submitter (its command, e.g. a `sh -c`
    /// script or a `python3 -c` program): it stays one line, so its newlines can neither
    /// forge output lines in `swarm logs` nor show the script as the task's output.
    @Test func aLifecycleLineStaysOneLineWhateverItQuotes() throws {
        let forged = "started pid 1: sh -c echo hi\n2026-11-18T11:06:40.999Z stdout FORGED\r\u{1b}[31m"
        let lines = try withLog { log in log.lifecycle(forged, at: 1_795_000_000_123) }
        #expect(lines.count == 2 && lines[1].isEmpty, "\(lines)")
        let parsed = TaskLogLine.parseAll(lines.joined(separator: "\n"))
        #expect(parsed.count == 1 && parsed[0].parsed?.kind == .lifecycle)
        #expect(parsed[0].parsed?.text.contains("\\n2026-11-18T11:06:40.999Z stdout FORGED\\r\\u{1b}[31m") == true)
        // Bounded like an output line.
        let long = try withLog(maxLine: 100) { log in log.lifecycle(String(repeating: "a", count: 1_000), at: 0) }
        #expect(long.count == 2 && long[0].utf8.count < 200)
    }

    @Test func longLinesAreCutAndMemoryStaysBounded() throws {
        let lines = try withLog(maxLine: 4) { log in
            feed(log, .stdout, "abcdefghij\nxy")
            log.flush(.stdout, at: 0)
        }
        #expect(lines.map { String($0.dropFirst(25)) } == ["stdout abcd", "stdout efgh", "stdout ij", "stdout xy", ""])
    }

    @Test func outputBeyondTheCapIsNotLoggedButLifecycleIs() throws {
        let lines = try withLog(maxBytes: 100) { log in
            for _ in 0..<10 { feed(log, .stdout, "0123456789\n") }
            log.lifecycle("exited with code 0", at: 0)
        }
        let output = lines.filter { $0.contains(" stdout ") }
        #expect(output.count == 2)  // 2 lines of 42 bytes fit in 100
        #expect(lines.contains { $0.hasSuffix("log truncated: output beyond 100 bytes is not logged (the result keeps the last 64 KiB)") })
        #expect(lines.contains { $0.hasSuffix("swarm  exited with code 0") })
    }

    @Test func outputTailKeepsTheEndOfLargeStreams() {
        var tail = OutputTail(capacity: 10)
        let big = [UInt8](repeating: 0x41, count: 1_000_000) + Array("0123456789".utf8)
        for chunk in stride(from: 0, to: big.count, by: 65_536) {
            tail.append(Array(big[chunk..<min(big.count, chunk + 65_536)]))
        }
        #expect(tail.text == "0123456789")
        #expect(tail.totalBytes == big.count)
        tail.append(Array("abc".utf8))
        #expect(tail.text == "3456789abc")
    }
}
