import Testing
@testable import SwarmScheduler

/// `BackoffTimers`: the next due time is always a live backoff's (never a removed one's), and
/// the heap stays bounded by the live backoffs however many come and go.
@Suite struct BackoffTimersTests {
    @Test func nextDueIsAlwaysALiveBackoffs() {
        var timers = BackoffTimers()
        timers.add("a", delayMs: 100)
        timers.add("b", delayMs: 300)
        timers.arm(nowMs: 1_000)
        #expect(timers.nextDueMs == 1_100)
        timers.remove("a")
        #expect(timers.nextDueMs == 1_300)
        timers.add("b", delayMs: 50)  // replaced: its armed entry is stale
        #expect(timers.nextDueMs == nil && !timers.isEmpty)
        timers.arm(nowMs: 2_000)
        #expect(timers.nextDueMs == 2_050)
        #expect(timers.popDue(nowMs: 2_049).isEmpty)
        #expect(timers.popDue(nowMs: 2_050) == ["b"])
        #expect(timers.nextDueMs == nil && timers.isEmpty && timers.heapCount == 0)
        for round in 0..<2 {  // twice: a removed backoff leaves nothing behind
            timers.add("c", delayMs: 10)
            timers.arm(nowMs: Int64(round) * 100)
            timers.remove("c")
            #expect(timers.nextDueMs == nil && timers.isEmpty && timers.heapCount == 0)
        }
    }

    @Test func churnKeepsTheHeapBoundedByTheLiveBackoffs() {
        var timers = BackoffTimers()
        timers.add("keep", delayMs: 1_000_000)
        for i in 0..<10_000 {
            timers.add("t\(i % 50)", delayMs: Int64(500 + i))
            timers.arm(nowMs: Int64(i))
            if i % 3 == 0 { timers.remove("t\((i + 7) % 50)") }
        }
        #expect(timers.heapCount <= 2 * timers.count + 64)
        #expect(timers.nextDueMs != nil)
    }
}
