import Testing
@testable import SwarmScheduler

/// The scheduler's store of streamed task output.
@Suite struct LogStoreTests {
    @Test func labelsStderrLinesAndKeepsTheLatestRun() {
        var logs = LogStore(capacityPerTask: 1_000)
        #expect(logs.append(id: "t", attempt: 1, stream: "stdout", data: "out 1\n") == "out 1\n")
        #expect(logs.append(id: "t", attempt: 1, stream: "stderr", data: "e1\ne2\n") == "[stderr] e1\n[stderr] e2\n")
        #expect(logs.text(id: "t") == "out 1\n[stderr] e1\n[stderr] e2\n")
        // A later run replaces the text; an earlier one's late output is dropped.
        #expect(logs.append(id: "t", attempt: 2, stream: "stdout", data: "again\n") == "again\n")
        #expect(logs.append(id: "t", attempt: 1, stream: "stdout", data: "late\n") == nil)
        #expect(logs.text(id: "t") == "again\n")
    }

    @Test func keepsTheEndWithinTwiceTheCapacityCutAtALine() {
        var logs = LogStore(capacityPerTask: 100)
        for i in 0..<100 { logs.append(id: "big", attempt: 1, stream: "stdout", data: "line \(i)\n") }
        let text = logs.text(id: "big")
        #expect(text.utf8.count <= 2 * 100 + 40)
        #expect(text.hasSuffix("line 99\n"))
        #expect(text.hasPrefix("[... earlier output dropped ...]\nline "))
        #expect(!text.contains("line 0\n"))
    }
}
