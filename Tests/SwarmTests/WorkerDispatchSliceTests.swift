import Foundation
import Logging
import Testing
import SwarmProtocol
import SwarmTransport
@testable import SwarmNode
@testable import SwarmUV

/// The scheduler's messages read at once (a batch of assignments, the kills of a cancelled
/// tree) take at most `dispatchSliceMicros` of the worker's loop per turn, the rest in later
/// turns: 1,000 assignments in one read held a debug worker's loop 14 s at load 20, its
/// heartbeat with it. With a slice of 0 µs, one message per turn (at most two per loop
/// iteration: libuv runs due timers before and after its poll), never all in one.
@Suite(.serialized) struct WorkerDispatchSliceTests {
    @Test func assignmentsAndKillsReadAtOnceAreHandledASlicePerTurn() throws {
        let ids = (1...24).map { "slice-\($0)" }
        let rig = try WorkerFinishingTests.Rig("dispatch", slots: ids.count) { $0.dispatchSliceMicros = 0 }
        let (loop, scheduler, worker, link) = (rig.loop, rig.scheduler, rig.worker, rig.link)
        rig.assign(ids) { _ in ["sleep", "600"] }
        // Runs started after each loop iteration.
        var started: [Int] = []
        #expect(runLoop(loop, timeoutMs: 30_000) {
            started.append(worker.runningCount)
            return worker.runningCount == ids.count
        })
        #expect(zip(started, started.dropFirst()).allSatisfy { $1 - $0 <= 2 }, "\(started)")
        for id in ids { link.send(.kill(.init(id: id, attempt: 1, reason: "test"))) }
        link.flush()
        // Runs whose kill was handled (killing, or gone) after each loop iteration.
        var killed: [Int] = []
        #expect(runLoop(loop, timeoutMs: 30_000) {
            let killing = worker.runners.values.filter { $0.sigkillAtMs != nil }.count
            killed.append(killing + ids.count - worker.runningCount)
            return killed.last == ids.count
        })
        #expect(zip(killed, killed.dropFirst()).allSatisfy { $1 - $0 <= 2 }, "\(killed)")
        #expect(runLoop(loop, timeoutMs: 30_000) { scheduler.results.count == ids.count })
        try rig.finish()
    }
}
