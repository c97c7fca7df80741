@testable import SwarmDashboard
import SwarmProtocol
import Testing

/// The dashboard's live log streams (`LogStreams`) against recording sinks, and its ledger of
/// ended tasks (`DashboardLedger`): pure.
struct LogStreamsTests {
    final class FakeSink: EventSink {
        var sent: [UInt8] = []
        var finished = false
        var left = false
        /// What the "socket" has not taken yet (set by the test).
        var queuedBytes = 0
        var isOpen: Bool { !finished && !left }
        /// Writes made: what a stream costs in syscalls.
        var writes = 0
        func send(_ bytes: [UInt8]) { sent += bytes; writes += 1 }
        func finish(last: [UInt8]) {
            sent += last
            writes += 1
            finished = true
        }
        var text: String { String(decoding: sent, as: UTF8.self) }
    }

    @Test func eventsAreFramedAsServerSentEvents() {
        let one = String(decoding: ServerSentEvent.encode(event: "log", data: "a\nb\r\n\nc"), as: UTF8.self)
        #expect(one == "event: log\ndata: a\ndata: b\ndata: \ndata: c\n\n")
        #expect(String(decoding: ServerSentEvent.encode(event: "end", data: "succeeded"), as: UTF8.self) == "event: end\ndata: succeeded\n\n")
        #expect(String(decoding: ServerSentEvent.encode(event: "log", data: "x\n"), as: UTF8.self) == "event: log\ndata: x\ndata: \n\n")
    }

    @Test func aFollowerGetsTheBacklogThenEachPieceThenTheEnd() {
        let streams = LogStreams<FakeSink>()
        let first = String(decoding: streams.firstEvent(backlog: "first\n"), as: UTF8.self)
        #expect(first == "event: log\ndata: first\ndata: \n\n")
        #expect(streams.firstEvent(backlog: "").isEmpty, "no empty event (and no write) for no log")
        let sink = FakeSink()
        streams.add(sink, id: "t1")
        streams.output(id: "t1", data: "second\n")
        streams.output(id: "other", data: "not mine\n")
        #expect(streams.count == 1)
        streams.ended(id: "t1", state: "succeeded")
        #expect(sink.text == "event: log\ndata: second\ndata: \n\nevent: end\ndata: succeeded\n\n")
        #expect(sink.finished && sink.writes == 2, "a piece, then the end with its event: one write each")
        #expect(streams.count == 0)
    }

    @Test func anEndedTaskIsAnsweredAtOnce() {
        let streams = LogStreams<FakeSink>()
        let body = String(decoding: streams.endedBody(backlog: "out", state: "failed"), as: UTF8.self)
        #expect(body == "event: log\ndata: out\n\nevent: end\ndata: failed\n\n")
        #expect(String(decoding: streams.endedBody(backlog: "", state: "lost"), as: UTF8.self) == "event: end\ndata: lost\n\n")
        #expect(streams.count == 0)
    }

    @Test func aReaderPastTheQueuedCapIsDroppedAtTheEdge() {
        var limits = DashboardLimits()
        limits.maxStreamQueuedBytes = 1_000
        let streams = LogStreams<FakeSink>(limits: limits)
        let slow = FakeSink(), fast = FakeSink()
        streams.add(slow, id: "t")
        streams.add(fast, id: "t")
        slow.queuedBytes = 1_000
        streams.output(id: "t", data: "at the cap: still sent")
        #expect(slow.text.contains("at the cap") && !slow.finished)
        slow.queuedBytes = 1_001
        streams.output(id: "t", data: "past it")
        #expect(!slow.text.contains("past it"))
        #expect(slow.text.contains("event: dropped\ndata: this reader fell more than 1000 bytes behind"))
        #expect(slow.finished)
        #expect(fast.text.contains("past it") && !fast.finished)
        #expect(streams.droppedCount == 1 && streams.count == 1)
        streams.output(id: "t", data: "later")
        #expect(!slow.text.contains("later"))
    }

    @Test func streamCountIsCappedAndReadersThatLeftAreForgotten() {
        var limits = DashboardLimits()
        limits.maxStreams = 2
        let streams = LogStreams<FakeSink>(limits: limits)
        let a = FakeSink(), b = FakeSink()
        #expect(streams.hasRoom)
        streams.add(a, id: "t1")
        #expect(streams.hasRoom)
        streams.add(b, id: "t2")
        #expect(!streams.hasRoom, "at the cap: the next gets 503")
        b.left = true
        #expect(streams.hasRoom && streams.count == 1)
        #expect(streams.followedIds == ["t1"])
        streams.finishAll()
        #expect(a.finished && streams.count == 0)
    }

    @Test func theBacklogIsItsEndFromALineStart() {
        var limits = DashboardLimits()
        limits.maxStreamQueuedBytes = 20
        let streams = LogStreams<FakeSink>(limits: limits)
        #expect(streams.backlogBytes == 10)
        let cut = String(decoding: streams.firstEvent(backlog: "0123456789\nabc\ndefgh\n"), as: UTF8.self)
        #expect(cut == "event: log\ndata: [swarm: 15 earlier bytes not shown here; swarm logs ID prints them]\ndata: defgh\ndata: \n\n")
        let short = String(decoding: streams.firstEvent(backlog: "short\n"), as: UTF8.self)
        #expect(short == "event: log\ndata: short\ndata: \n\n")
    }

    @Test func aBacklogWithNoLineStartIsCutAtACharacterStart() {
        // 12 bytes of 2-byte characters: the last 5 begin inside one, so 8 are left out.
        #expect(LogStreams<FakeSink>.tail("éééééé", bytes: 5) == "[swarm: 8 earlier bytes not shown here; swarm logs ID prints them]\néé")
        // A newline as the very last byte is no line start: the cut stays a character start.
        #expect(LogStreams<FakeSink>.tail("ééé\n", bytes: 3) == "[swarm: 4 earlier bytes not shown here; swarm logs ID prints them]\né\n")
        #expect(LogStreams<FakeSink>.tail("abc", bytes: 3) == "abc")
    }

    @Test func theLedgerKeepsTheLastOutcomesNewestFirst() {
        var limits = DashboardLimits()
        limits.recentOutcomes = 3
        var ledger = DashboardLedger(limits: limits)
        #expect(ledger.recent.isEmpty)
        for i in 1...2 { ledger.ended(id: "t\(i)", state: .succeeded, at: Int64(i)) }
        #expect(ledger.recent.map(\.id) == ["t2", "t1"])
        for i in 3...5 { ledger.ended(id: "t\(i)", state: i == 4 ? .failed : .succeeded, at: Int64(i)) }
        #expect(ledger.recent.map(\.id) == ["t5", "t4", "t3"])
        #expect(ledger.recent[1].state == .failed)
    }

    @Test func throughputCountsEndsPerMinuteWithinTheWindow() {
        var limits = DashboardLimits()
        limits.throughputMinutes = 3
        var ledger = DashboardLedger(limits: limits)
        let base: Int64 = 1_800_000_000_000 // a whole minute
        ledger.ended(id: "a", state: .succeeded, at: base + 1_000)
        ledger.ended(id: "b", state: .failed, at: base + 59_999)
        ledger.ended(id: "c", state: .succeeded, at: base + 120_000)
        #expect(ledger.throughput(now: base + 130_000).map(\.ended) == [2, 0, 1])
        #expect(ledger.throughput(now: base + 130_000).first?.minute == base)
        // A minute later the first falls out of the window.
        ledger.ended(id: "d", state: .succeeded, at: base + 180_000)
        #expect(ledger.throughput(now: base + 180_000).map(\.ended) == [0, 1, 1])
        // The wall clock stepped back into a kept minute: counted there.
        ledger.ended(id: "e", state: .succeeded, at: base + 125_000)
        #expect(ledger.throughput(now: base + 180_000).map(\.ended) == [0, 2, 1])
    }
}
