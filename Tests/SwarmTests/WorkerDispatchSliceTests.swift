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
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-dispatch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = WorkerFinishingTests.SchedulerEnd(dataDir: dir)
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        let ids = (1...24).map { "slice-\($0)" }
        var config = WorkerConfig(name: "w", slots: ids.count, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        config.dispatchSliceMicros = 0
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        let link = try #require(scheduler.connection)
        for id in ids { link.send(.assign(.init(task: TaskAssignment(id: id, command: ["sleep", "600"], env: nil, attempt: 1)))) }
        link.flush()
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
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
        link.close(reason: "test over")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }
}
