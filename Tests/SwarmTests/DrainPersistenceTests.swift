import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// `swarm drain` / `swarm undrain` (issue 15 item 4): pure state, the store's saved set, and
/// end to end across a scheduler restart.
@Suite struct DrainPersistenceTests {
    typealias C = EngineSchedulerTests

    @Test func undrainMakesADrainedWorkerReadyAndItsSlotsTakeWorkAgain() throws {
        var state = try C.cluster()
        try state.drain(node: "w1")
        #expect(state.takeChanges().drainedNodes == ["w1"])
        #expect(state.takeChanges().drainedNodes == nil)  // said once
        _ = try state.submit(TaskSpec(id: "t", command: ["true"]), at: 1)
        #expect(C.assigned(state.schedule(nowMs: 2, at: 2)).isEmpty)
        try state.undrain(node: "w1")
        #expect(state.listNodes(nowMs: 3).first?.state == .ready)
        #expect(state.takeChanges().drainedNodes == [])
        #expect(C.assigned(state.schedule(nowMs: 3, at: 3)).map(\.id) == ["t"])
        // Twice in a row: the second undrain changes nothing and saves nothing.
        try state.undrain(node: "w1")
        #expect(state.takeChanges().drainedNodes == nil)
        #expect(state.listNodes(nowMs: 4).first?.state == .ready)
        #expect(throws: SchedulerError.unknownNode("zz")) { try state.undrain(node: "zz") }
    }

    @Test func aStoppingWorkerStaysDrainingWhenUndrained() throws {
        var state = try C.cluster()
        try state.drain(node: "w1")
        state.leaving(node: "w1")
        try state.undrain(node: "w1")
        #expect(state.listNodes(nowMs: 1).first?.state == .draining)
    }

    @Test func aDrainReadBackAfterARestartHoldsWhenItsWorkerRegistersAndCanBeUndoneBefore() throws {
        var state = ClusterState()
        state.restoreDrained(["w1", "w2"])
        _ = try state.register(node: "w1", slots: 2, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: 0)
        #expect(state.listNodes(nowMs: 0).first { $0.name == "w1" }?.state == .draining)
        // w2 has not come back: its drain is undone by name.
        try state.undrain(node: "w2")
        #expect(state.takeChanges().drainedNodes == ["w1"])
        _ = try state.register(node: "w2", slots: 2, labels: [:], running: [], finished: [], address: nil, nowMs: 1, at: 1)
        #expect(state.listNodes(nowMs: 1).first { $0.name == "w2" }?.state == .ready)
    }

    @Test func theStoreKeepsTheDrainedSetAndSkipsHandEditedNonsense() throws {
        let dir = NSTemporaryDirectory() + "drains-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try TaskStore(directory: dir)
            #expect(store.loadDrained() == [])
            try store.save(StateChanges(drainedNodes: ["a", "b"]), at: 1)
            #expect(store.loadDrained() == ["a", "b"])
            try store.save(StateChanges(drainedNodes: []), at: 2)
            #expect(store.loadDrained() == [])
            try store.save(StateChanges(drainedNodes: ["c"]), at: 3)
            store.close()
        }
        let reopened = try TaskStore(directory: dir)
        #expect(reopened.loadDrained() == ["c"])
        reopened.close()
        let db = try SQLiteDatabase(path: dir + "/swarm.db")
        try db.execute(#"UPDATE meta SET value = '["ok", "bad/name", 7]' WHERE key = 'drained_nodes'"#)
        db.close()
        let edited = try TaskStore(directory: dir)
        #expect(edited.loadDrained() == [])  // not an array of strings: none, never fatal
        edited.close()
        let db2 = try SQLiteDatabase(path: dir + "/swarm.db")
        try db2.execute(#"UPDATE meta SET value = '["ok", "bad/name"]' WHERE key = 'drained_nodes'"#)
        db2.close()
        let edited2 = try TaskStore(directory: dir)
        #expect(edited2.loadDrained() == ["ok"])
        edited2.close()
    }
}
