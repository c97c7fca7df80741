import Testing
@testable import SwarmScheduler

/// The download bytes of all connections together are bounded, and peers that never read are
/// found (to be closed) so that they cannot keep the room from the others.
@Suite struct DownloadBudgetTests {
    @Test func piecesWaitPastTheBudgetAndGoOnWhenItHasRoom() {
        var b = DownloadBudget<Int>(maxBytes: 10, stallMs: 100)
        b.observe(1, queued: 6, nowMs: 0)
        #expect(b.hasRoom)
        b.observe(2, queued: 4, nowMs: 0)
        #expect(b.total == 10 && !b.hasRoom)
        b.wait(3); b.wait(4); b.wait(3)
        #expect(b.waiting == [3, 4])
        b.observe(1, queued: 0, nowMs: 5)
        #expect(b.hasRoom && b.holders[1] == nil)
        #expect(b.takeWaiting() == [3, 4])
        #expect(b.waiting.isEmpty)
        b.wait(5)
        b.gone(5)
        b.gone(2)
        #expect(b.waiting.isEmpty && b.total == 0)
    }

    @Test func aConnectionReadingNothingIsStalledAndOneReadingIsNot() {
        var b = DownloadBudget<Int>(maxBytes: 100, stallMs: 100)
        b.observe(1, queued: 8, nowMs: 0)
        b.observe(2, queued: 8, nowMs: 0)
        // 1 gets a new piece (more queued: no progress); 2 reads some.
        b.observe(1, queued: 9, nowMs: 60)
        b.observe(2, queued: 5, nowMs: 60)
        #expect(b.stalled(nowMs: 99).isEmpty)
        #expect(b.stalled(nowMs: 100) == [1])
        #expect(b.stalled(nowMs: 160) .sorted() == [1, 2])
        // A clock that went back stalls nobody.
        #expect(DownloadBudget<Int>(maxBytes: 1, stallMs: 1).stalled(nowMs: 0).isEmpty)
    }
}
