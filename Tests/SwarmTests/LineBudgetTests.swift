import Testing
@testable import SwarmHTTP

/// The HTTPS listener's budget for TLS failure lines (`LineBudget`), on a fake clock: at most
/// `maxLines` in a window of `windowMs` from the first, the rest counted, and one summary with
/// their count once the window is over, never before.
struct LineBudgetTests {
    /// `admit` at each time: which were let through.
    static func admit(_ budget: inout LineBudget, at times: [Int64]) -> [Bool] {
        times.map { budget.admit(nowMs: $0) }
    }

    @Test func atMostTheLinesOfAWindowThenOneSummaryAtItsEnd() {
        var budget = LineBudget(maxLines: 3, windowMs: 60_000)
        let first = Self.admit(&budget, at: [1_000, 1_001, 1_002])
        #expect(first == [true, true, true])
        // The 4th..10th in the same window: counted, not logged.
        let flood = Self.admit(&budget, at: (0..<7).map { 2_000 + Int64($0) })
        #expect(flood == Array(repeating: false, count: 7))
        #expect(budget.suppressed == 7)
        // One millisecond before the window's end: no summary yet.
        let early = budget.closeWindow(nowMs: 60_999)
        #expect(early == nil)
        let late = Self.admit(&budget, at: [60_999])
        #expect(late == [false])
        // At the end (60 s after the first line): the summary, once.
        let summary = budget.closeWindow(nowMs: 61_000)
        let again = budget.closeWindow(nowMs: 61_001)
        #expect(summary == 8 && again == nil)
        // A new window from the next line.
        let next = Self.admit(&budget, at: [70_000, 70_001, 70_002, 70_010])
        #expect(next == [true, true, true, false])
        let beforeEnd = budget.closeWindow(nowMs: 129_999)
        let atEnd = budget.closeWindow(nowMs: 130_000)
        #expect(beforeEnd == nil && atEnd == 1)
    }

    @Test func aWindowWithNothingSuppressedEndsWithoutASummary() {
        var budget = LineBudget(maxLines: 2, windowMs: 1_000)
        let none = budget.closeWindow(nowMs: 0)
        #expect(none == nil)
        let two = Self.admit(&budget, at: [5, 6])
        #expect(two == [true, true])
        let end = budget.closeWindow(nowMs: 1_005)
        #expect(end == nil)
        // The window was closed: two more lines at once, then none.
        let more = Self.admit(&budget, at: [1_006, 1_007, 1_008])
        #expect(more == [true, true, false])
    }

    @Test func aFloodWritesAtMostTheBudgetAndAccountsForEveryEvent() {
        var budget = LineBudget(maxLines: 10, windowMs: 60_000)
        var lines = 0, summaries = 0, counted = 0
        // 100,000 failures over 10 minutes, one every 6 ms.
        for i in 0..<100_000 {
            let now = Int64(i) * 6
            if let n = budget.closeWindow(nowMs: now) { summaries += 1; counted += n }
            if budget.admit(nowMs: now) { lines += 1 }
        }
        if let n = budget.closeWindow(nowMs: 10_000_000) { summaries += 1; counted += n }
        #expect(lines == 100)
        #expect(summaries == 10)
        #expect(lines + counted == 100_000)
    }
}
