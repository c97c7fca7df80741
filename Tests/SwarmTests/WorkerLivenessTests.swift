import Testing
import SwarmProtocol
@testable import SwarmNode

/// When the worker gives up a connection the scheduler no longer acknowledges
/// (`WorkerSession.deadConnectionMs`); the multi-host tests show it between hosts.
struct WorkerLivenessTests {
    @Test func aConnectionIsGivenUpOnlyAfterTheSchedulerHasGivenUpTheWorker() {
        // Half as long again as the scheduler waits, at least a second more.
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: 10_000) == 15_000)
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: 1_500) == 2_500)
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: 60_000) == 90_000)
        for lost in [100, 999, 1_500, 2_000, 10_000, 123_456, 3_600_000] {
            #expect(Int(WorkerSession.deadConnectionMs(lostAfterMs: lost)) >= lost + 1_000)
        }
    }

    @Test func beforeTheFirstRegistrationAndForHostileNumbersTheLimitIsBounded() {
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: nil) == 20_000)
        // A peer's number is kept to 0.1 s - 1 h first.
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: 0) == 1_100)
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: -5) == 1_100)
        #expect(WorkerSession.deadConnectionMs(lostAfterMs: Int.max) == 5_400_000)
    }

    @Test func theSchedulerSaysHowLongItWaitsAndOlderOnesSayNothing() throws {
        let text = String(decoding: MessageCodec.encode(.registered(.init(heartbeatMs: 250, lostAfterMs: 1_500))), as: UTF8.self)
        #expect(text.contains("\"lostAfterMs\":1500"))
        let old = try MessageCodec.decode(Array(#"{"type":"registered","heartbeatMs":1000}"#.utf8))
        #expect(old == .registered(.init(heartbeatMs: 1_000, lostAfterMs: nil)))
    }
}
