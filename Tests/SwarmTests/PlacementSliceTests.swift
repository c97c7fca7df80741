import Foundation
import Testing
import SwarmClient
import SwarmProtocol
@testable import SwarmScheduler

/// A burst of placements larger than a slice (`SchedulerServer.placementSlice`) is placed a
/// slice per loop iteration, each slice's turn saved and sent on its own: every task of it
/// still reaches the worker, in submission order, though nothing else happens meanwhile (the
/// worker sends nothing, no client asks anything): the next slice is not waiting for a message.
@Suite(.serialized) struct PlacementSliceTests {
    typealias Raw = LogRelayServerTests

    static func burstIsPlacedWhole(durable: Bool) throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = SchedulerConfig()
        config.durable = durable
        config.stateDir = dir
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        let tasks = 5 * SchedulerServer.placementSlice + 3
        let worker = try Raw.connect(scheduler.port, role: .worker, name: "w")
        worker.socket.send(.register(.init(slots: tasks, labels: [:], running: [], finished: [])))
        #expect(worker.until { if case .registered = $0 { true } else { nil } } == true)
        let client = try SwarmClient(address: scheduler.address, token: nil)
        let ids = (0..<tasks).map { "burst-\($0)" }
        _ = try client.submitBatch(ids.map { TaskSpec(id: $0, command: ["true"]) })
        var assigned: [String] = []
        // Bounded: each read waits at most the socket's timeout.
        while assigned.count < tasks, let id = worker.until({ if case .assign(let a) = $0 { a.task.id } else { nil } }) {
            assigned.append(id)
        }
        #expect(assigned == ids)
        let running = scheduler.onLoop { server in ids.filter { (try? server.state.task($0))?.state == .running }.count }
        #expect(running == tasks)
    }

    @Test func aBurstLargerThanASliceIsPlacedWholeDurable() throws {
        try Self.burstIsPlacedWhole(durable: true)
    }

    @Test func aBurstLargerThanASliceIsPlacedWholeInMemory() throws {
        try Self.burstIsPlacedWhole(durable: false)
    }
}
