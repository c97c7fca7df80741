import Foundation
@testable import SwarmUV

/// Runs `loop` on this thread until `done()` or `timeoutMs` passes; returns `done()`.
/// Bounded in time so a broken test fails instead of hanging.
@discardableResult
func runLoop(_ loop: EventLoop, timeoutMs: UInt64 = 5_000, until done: () -> Bool) -> Bool {
    let guardTimer = try! UVTimer(loop: loop)
    var expired = false
    guardTimer.start(afterMs: timeoutMs) { expired = true }
    while !done() && !expired {
        loop.runOnce()
    }
    guardTimer.close()
    return done()
}

/// Lets pending close callbacks run, then closes the loop: throws if any handle leaked.
func closeLoopCheckingLeaks(_ loop: EventLoop) throws {
    for _ in 0..<10 { loop.runNoWait() }
    try loop.close()
}
