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
        #expect(text.hasPrefix("[swarm: "))
        #expect(!text.contains("line 0\n"))
        // The marker counts exactly the bytes that are gone.
        let all = (0..<100).map { "line \($0)\n" }.joined()
        let kept = String(text[text.index(after: text.firstIndex(of: "\n")!)...])
        #expect(text.hasPrefix(LogStore.marker(logs.droppedBytes(id: "big"))))
        #expect(logs.droppedBytes(id: "big") + kept.utf8.count == all.utf8.count)
        #expect(all.hasSuffix(kept))
    }

    /// Item 12: a trim never cuts a character, also when the kept end has no line start.
    @Test func trimKeepsCharactersWholeWithoutLines() {
        var logs = LogStore(capacityPerTask: 100)
        for _ in 0..<200 { logs.append(id: "euro", attempt: 1, stream: "stdout", data: "€€€") }
        let text = logs.text(id: "euro")
        let body = text[text.index(after: text.firstIndex(of: "\n")!)...]
        #expect(!text.contains("\u{FFFD}"))
        #expect(body.allSatisfy { $0 == "€" })
        #expect(logs.droppedBytes(id: "euro") + body.utf8.count == 200 * 9)
    }

    /// Item 4: many logs share `totalCapacity`, each trimmed to its share (not below the minimum).
    @Test func manyLogsShareTheTotalCapacity() {
        var logs = LogStore(capacityPerTask: 1 << 20, totalCapacity: 64 * 1024)
        let line = String(repeating: "x", count: 99) + "\n"
        for _ in 0..<400 {
            for task in 0..<8 { logs.append(id: "t\(task)", attempt: 1, stream: "stdout", data: line) }
        }
        for task in 0..<8 {
            // The share is 64 KiB / 8 = 8 KiB, below the minimum: 16 KiB each, trimmed at twice that.
            #expect(logs.text(id: "t\(task)").utf8.count <= 2 * LogStore.minimumCapacity + 200)
            #expect(logs.droppedBytes(id: "t\(task)") > 0)
        }
    }
}

/// The queue heap's removal from the middle (cancels) keeps the order of the rest.
@Suite struct TaskQueueRemovalTests {
    @Test func removingAnyEntryKeepsTheRestInOrder() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var queue = TaskQueue()
            var entries: [(id: String, priority: Int, sequence: UInt64)] = []
            for i in 0..<200 {
                let e = (id: "t\(i)", priority: Int.random(in: 0...3, using: &rng), sequence: UInt64(i))
                entries.append(e)
                queue.push(id: e.id, priority: e.priority, sequence: e.sequence)
            }
            let gone = Set(entries.shuffled(using: &rng).prefix(70).map(\.id))
            for id in gone { queue.remove(id: id) }
            queue.remove(id: "not-there")
            let expected = entries.filter { !gone.contains($0.id) }
                .sorted { $0.priority != $1.priority ? $0.priority > $1.priority : $0.sequence < $1.sequence }.map(\.id)
            #expect(queue.count == expected.count)
            #expect(queue.orderedIds == expected)
        }
    }
}
