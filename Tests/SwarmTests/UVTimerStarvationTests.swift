import Foundation
import Testing
@testable import SwarmUV

/// Work that goes on a slice at a time by re-arming a 0 ms timer (a dependency cascade, 1,000
/// ends a turn) must let the loop poll between slices: libuv 1.44 (Debian 12) runs a timer
/// started for 0 ms from a timer callback in the same pass, before any I/O or other timer.
@Suite struct UVTimerStarvationTests {
    @Test func aTimerRestartedFor0MsFromATimerCallbackLetsTheLoopGoRoundFirst() throws {
        let loop = EventLoop()
        let busy = try UVTimer(loop: loop)
        let other = try UVTimer(loop: loop)
        var slices = 0
        var slicesWhenOtherFired: Int?
        func slice() {
            slices += 1
            usleep(5_000)  // 5 ms of work per slice
            if slices < 40 { busy.start(afterMs: 0, slice) }
        }
        other.start(afterMs: 10) { slicesWhenOtherFired = slices }
        busy.start(afterMs: 0, slice)
        #expect(runLoop(loop) { slices == 40 && slicesWhenOtherFired != nil })
        // The other timer, due 10 ms in, fired between slices, not after all 40 (200 ms).
        #expect((slicesWhenOtherFired ?? 40) < 40)
        busy.close()
        other.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aZeroMsTimerStartedOutsideATimerCallbackStillFiresInTheNextPass() throws {
        let loop = EventLoop()
        let timer = try UVTimer(loop: loop)
        var fired = false
        timer.start(afterMs: 0) { fired = true }
        loop.runNoWait()
        #expect(fired)
        timer.close()
        try closeLoopCheckingLeaks(loop)
    }
}
