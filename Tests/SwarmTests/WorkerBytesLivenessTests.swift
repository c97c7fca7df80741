import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Bytes still arriving from a worker are a sign of life even before they make a whole
/// message (a large frame, the heartbeat queued behind it), while a worker that sends nothing
/// (stopped: SIGSTOP, or its loop held) is still lost after `--lost-after`.
@Suite(.serialized) struct WorkerBytesLivenessTests {
    @Test func aFrameStillArrivingKeepsItsWorkerAndSilenceLosesOne() throws {
        var config = SchedulerConfig()
        config.settings.lostAfterMs = 1_500
        config.settings.heartbeatMs = 200
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        func worker(_ name: String) throws -> RawSocket {
            let socket = try HostileNumbersTests.peer(scheduler.port, role: .worker, name: name)
            socket.send(.register(.init(slots: 1, labels: [:], running: [], finished: [])))
            #expect(HostileNumbersTests.next(socket, skipping: { !HostileNumbersTests.isRegistered($0) }) != nil)
            return socket
        }
        let dripping = try worker("dripping")
        let silent = try worker("silent")
        // One heartbeat, a byte at a time over about 3.5 s: more than twice `lostAfterMs`
        // without a whole message, never 1.5 s without a byte.
        let frame = MessageCodec.frame(.heartbeat(.init(freeSlots: 1, running: [], usage: nil)))
        let gapMicros = UInt32(3_500_000 / frame.count)
        for byte in frame {
            dripping.send([byte])
            usleep(gapMicros)
        }
        let lines = { scheduler.log.lines.withLock { $0 } }
        // The silent one is lost (bounded wait: a stall of the scheduler forgives it once).
        for _ in 0..<300 where !lines().contains(where: { $0.contains("worker silent lost") }) { usleep(100_000) }
        #expect(lines().contains { $0.contains("worker silent lost") })
        #expect(!lines().contains { $0.contains("worker dripping lost") })
        _ = silent
    }
}
