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
