import Foundation
import Testing
import SwarmClient
import SwarmProtocol
@testable import SwarmScheduler

/// Issue 14 items 1 and 2 through a real scheduler and client: with 2 finished tasks kept in
/// memory, `status`, `wait`, `logs`, `cancel`, `rerun` and `tasks` of older ones are answered
/// from swarm.db; `swarm gc --older-than 0` then deletes every finished task.
@Suite struct RetentionEndToEndTests {
    @Test func oldTasksAreReadFromTheDatabaseAndGcDeletesThem() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = SchedulerConfig()
        config.durable = true
        config.stateDir = dir
        config.retention.inMemoryFinished = 2
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        let client = try SwarmClient(address: scheduler.address, token: nil)
        // No worker: each task is cancelled while queued, so it finishes at once.
        let ids = (1...6).map { "old-\($0)" }
        for id in ids {
            _ = try client.submit(TaskSpec(id: id, command: ["true"]))
            _ = try client.cancel(id)
        }
        _ = try client.submit(TaskSpec(id: "open", command: ["true"]))
        let inMemory = scheduler.onLoop { $0.state.tasksInMemory }
        #expect(inMemory == 3, "2 finished + 1 queued")
        #expect(try client.status("old-1").state == .cancelled)
        #expect(try client.wait(["old-1", "old-2"]).map(\.state) == [.cancelled, .cancelled])
        #expect(try client.cancel("old-1").state == .cancelled)
        var text = ""
        #expect(try client.logs("old-1", follow: false) { text += $0 } == .cancelled)
        #expect(try client.listTasks().map(\.id) == ids + ["open"])
        #expect(try client.listTasks(filter: TaskFilter(states: [.queued])).tasks.map(\.id) == ["open"])
        let page = try client.listTasksPage(after: "old-2", limit: 2)
        #expect(page.tasks.map(\.id) == ["old-3", "old-4"])
        #expect(try client.rerun("old-1") == "old-1.r1")
        #expect(throws: ClientError.self) { try client.submit(TaskSpec(id: "old-3", command: ["true"])) }

        let result = try client.gc(olderThanSeconds: 0)
        #expect(result.tasks == 6)
        #expect(result.dbBytesBefore > 0 && result.dbBytesAfter > 0)
        #expect(throws: ClientError.self) { try client.status("old-1") }
        #expect(try client.listTasks().map(\.id) == ["open", "old-1.r1"])
        // A task's credential may not gc.
        let reader = try LogRelayServerTests.connect(scheduler.port, role: .client, name: ClusterToken.taskNamePrefix + "open")
        reader.socket.send(.gc(.init(requestId: 9)))
        let refused = reader.until { if case .error(let e) = $0 { e.reason } else { nil } }
        #expect(refused?.contains("may not delete") == true)
    }

    /// Dependencies and trees over tasks that left memory, then a restart that reads back only
    /// the tasks in flight: a dependency on a cancelled task out of memory fails its dependent,
    /// one on any ended task releases it, and `cancel --recursive` of a finished root out of
    /// memory still reaches its queued descendants, before and after the restart.
    @Test func dependenciesAndTreesReachTasksThatLeftMemoryAcrossARestart() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = SchedulerConfig()
        config.durable = true
        config.stateDir = dir
        config.retention.inMemoryFinished = 1
        var scheduler = InProcessScheduler(config)
        var client = try SwarmClient(address: scheduler.address, token: nil)
        _ = try client.submit(TaskSpec(id: "root", command: ["true"]))
        for (id, parent) in [("child", "root"), ("grand", "child")] {
            var spec = TaskSpec(id: id, command: ["true"])
            spec.parent = parent
            _ = try client.submit(spec)
        }
        _ = try client.cancel("root")
        for id in ["f1", "f2", "f3"] {
            _ = try client.submit(TaskSpec(id: id, command: ["true"]))
            _ = try client.cancel(id)
        }
        #expect(scheduler.onLoop { $0.state.tasksInMemory } == 3, "child, grand and f3")
        var failing = TaskSpec(id: "after-root", command: ["true"])
        failing.after = ["root"]
        _ = try client.submit(failing)
        var released = TaskSpec(id: "any-f1", command: ["true"])
        released.afterAny = ["f1"]
        _ = try client.submit(released)
        #expect(try client.wait(["after-root"]).first?.state == .dependencyFailed)
        #expect(try client.status("any-f1").waitReason?.contains("waiting for") != true)
        #expect(try client.tree(id: "root").entries.count >= 1)
        #expect(scheduler.stop() == nil)

        scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        client = try SwarmClient(address: scheduler.address, token: nil)
        let cancelled = try client.cancelTree("root")
        #expect(cancelled.total == 3)
        #expect(cancelled.cancelled == 2)
        #expect(try client.status("grand").state == .cancelled)
    }

    /// Issue 14: a finished task named by an open `wait` is kept by retention until that wait
    /// is answered, so the answer has every task it named; once answered, it may go.
    @Test func aFinishedTaskNamedByAnOpenWaitIsKeptUntilTheWaitIsAnswered() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = SchedulerConfig()
        config.durable = true
        config.stateDir = dir
        config.retention.inMemoryFinished = 0
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        let client = try SwarmClient(address: scheduler.address, token: nil)
        // No worker: a cancel ends a queued task at once.
        for id in ["done", "other"] {
            _ = try client.submit(TaskSpec(id: id, command: ["true"]))
            _ = try client.cancel(id)
        }
        _ = try client.submit(TaskSpec(id: "open", command: ["true"]))
        let waiter = try LogRelayServerTests.connect(scheduler.port, role: .client, name: "waiter")
        waiter.socket.send(.wait(.init(requestId: 7, ids: ["done", "open"])))
        // The wait is registered once the scheduler names its tasks (bounded: 5 s).
        for _ in 0..<3_000 where scheduler.onLoop({ $0.waiters.isNamed("done") }) != true { usleep(10_000) }
        #expect(scheduler.onLoop { $0.waiters.isNamed("done") && $0.waiters.isNamed("open") && !$0.waiters.isNamed("other") } == true)
        let first = try client.gc(olderThanSeconds: 0)
        #expect(first.tasks == 1, "only 'other': 'done' is named by the open wait")
        #expect(first.kept == 1)
        _ = try client.cancel("open")
        let answer = waiter.until { if case .waitResult(let r) = $0 { r.tasks.map(\.id) } else { nil } }
        #expect(answer == ["done", "open"])
        #expect(scheduler.onLoop { $0.waiters.namedCount } == 0)
        let second = try client.gc(olderThanSeconds: 0)
        #expect(second.tasks == 2 && second.kept == 0)
    }
}
