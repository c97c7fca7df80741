import Foundation
import Testing
@testable import SwarmScheduler
import SwarmProtocol

/// Issue 14 item 1: finished tasks leave the scheduler's memory. The pure core keeps the tasks
/// in flight and the last `inMemoryFinished` finished ones; the rest are answered from the
/// store (here a fake one: every saved snapshot, as `TaskStore` keeps them).
@Suite struct TaskRetentionTests {
    static var context: ClientRequestContext { ClientRequestContext(nowMs: 5_000, at: 1_700_000_000_000) }

    /// The store's stand-in: every task as last saved.
    struct FakeStore {
        var rows: [String: TaskSnapshot] = [:]
        mutating func save(_ state: inout ClusterState) {
            for task in state.takeChanges().tasks { rows[task.info.id] = task }
        }
        var archive: TaskArchive { .of(Array(rows.values)) }
    }

    static func settings(keep: Int?) -> SchedulerSettings {
        var settings = SchedulerSettings()
        settings.inMemoryFinished = keep
        return settings
    }

    /// `batches` turns of `perBatch` tasks each, cancelled while queued (so they finish),
    /// saved at the end of each turn; `open` more stay queued.
    static func run(keep: Int?, batches: Int, perBatch: Int, open: Int = 0) throws -> (ClusterState, FakeStore, maxInMemory: Int) {
        var state = ClusterState(settings: settings(keep: keep))
        var store = FakeStore()
        var most = 0
        for b in 0..<batches {
            for i in 0..<perBatch {
                let id = "t\(b)-\(i)"
                _ = try state.submit(TaskSpec(id: id, command: ["true"]), at: Int64(b * 1000 + i))
                _ = try state.cancel(id, at: Int64(b * 1000 + i))
            }
            store.save(&state)
            most = max(most, state.tasksInMemory)
        }
        for i in 0..<open { _ = try state.submit(TaskSpec(id: "open-\(i)", command: ["true"]), at: 9_999_999) }
        store.save(&state)
        return (state, store, max(most, state.tasksInMemory))
    }

    @Test func theTasksInMemoryStayBoundedWhateverHowManyFinished() throws {
        // 100 in memory at most after each turn, whether 1,000 or 10,000 finished: the count
        // does not grow with history.
        let small = try Self.run(keep: 100, batches: 10, perBatch: 100)
        let large = try Self.run(keep: 100, batches: 100, perBatch: 100)
        #expect(small.maxInMemory == 100 && large.maxInMemory == 100)
        #expect(large.0.order.count <= 2 * 100 + 1_024 + 100, "the submission order is compacted too")
        // In flight tasks are never evicted: 50 queued on top of the 100 finished.
        let withOpen = try Self.run(keep: 100, batches: 5, perBatch: 100, open: 50)
        #expect(withOpen.0.tasksInMemory == 150)
        #expect(withOpen.0.queuedCount == 50)
        // Edges: keep 0 holds no finished task once saved; nil (no store) keeps them all.
        #expect(try Self.run(keep: 0, batches: 3, perBatch: 10).0.tasksInMemory == 0)
        #expect(try Self.run(keep: nil, batches: 3, perBatch: 10).0.tasksInMemory == 30)
        // Exactly at the limit, nothing leaves.
        #expect(try Self.run(keep: 30, batches: 3, perBatch: 10).0.tasksInMemory == 30)
        #expect(try Self.run(keep: 29, batches: 3, perBatch: 10).0.tasksInMemory == 29)
    }

    @Test func aTaskLeavesMemoryOnlyOnceSavedAndTheOldestFirst() throws {
        var state = ClusterState(settings: Self.settings(keep: 1))
        for id in ["a", "b", "c"] {
            _ = try state.submit(TaskSpec(id: id, command: ["true"]), at: 1)
            _ = try state.cancel(id, at: 2)
        }
        // Not saved yet: all three in memory, and all three in the changes.
        #expect(state.tasksInMemory == 3)
        let changes = state.takeChanges()
        #expect(changes.tasks.map(\.info.id) == ["a", "b", "c"])
        #expect(state.tasksInMemory == 1)
        #expect((try? state.task("c"))?.state == .cancelled)
        #expect((try? state.task("a")) == nil)
    }

    @Test func oldTasksAreAnsweredFromTheStore() throws {
        var (state, store, _) = try Self.run(keep: 10, batches: 5, perBatch: 20, open: 3)
        var context = Self.context
        context.archive = store.archive
        // status
        let status = ClientRequests.handle(.status(.init(requestId: 1, id: "t0-0")), identity: .cluster, state: &state, context: context)
        guard case .taskInfo(let reply)? = status.replies.first else { Issue.record("no status: \(status)"); return }
        #expect(reply.task.id == "t0-0" && reply.task.state == .cancelled)
        // wait: an ended task is answered at once, even mixed with recent ones.
        let wait = ClientRequests.handle(.wait(.init(requestId: 2, ids: ["t0-0", "t4-19"])), identity: .cluster, state: &state, context: context)
        guard case .waitResult(let waited)? = wait.replies.first else { Issue.record("no wait reply: \(wait)"); return }
        #expect(waited.tasks.map(\.id) == ["t0-0", "t4-19"])
        // logs: the whole log of an ended task (the shell reads its stored copy).
        let logs = ClientRequests.handle(.logs(.init(requestId: 3, id: "t1-5", follow: true)), identity: .cluster, state: &state, context: context)
        #expect(logs.flow.contains { if case .sendWholeLog(_, let info) = $0 { info.id == "t1-5" } else { false } })
        // cancel of an old task: its final state, no error.
        let cancel = ClientRequests.handle(.cancel(.init(requestId: 4, id: "t0-1")), identity: .cluster, state: &state, context: context)
        #expect(cancel.refusal == nil && cancel.directives.isEmpty)
        // An unknown id is still unknown.
        let unknown = ClientRequests.handle(.status(.init(requestId: 5, id: "nope")), identity: .cluster, state: &state, context: context)
        #expect(unknown.refusal?.code == .unknownTask)
    }

    @Test func idsOfOldTasksAreNeverReusedAndRerunReadsTheOldSpec() throws {
        var (state, store, _) = try Self.run(keep: 5, batches: 2, perBatch: 10)
        let archive = store.archive
        #expect((try? state.task("t0-0")) == nil, "left memory")
        #expect(throws: SchedulerError.duplicateId("t0-0")) { try state.submit(TaskSpec(id: "t0-0", command: ["true"]), at: 5, archive: archive) }
        // A batch line with the same spec is `existing`, another spec a duplicate.
        let same = try state.submitBatch([TaskSpec(id: "t0-1", command: ["true"])], at: 5, archive: archive)
        #expect(same.existing == ["t0-1"])
        #expect(throws: SchedulerError.duplicateId("t0-2")) { try state.submitBatch([TaskSpec(id: "t0-2", command: ["false"])], at: 5, archive: archive) }
        // Rerun of an old task: its spec, and ID.rN past the old tasks that hold the names.
        let rerun = try state.rerunSpec(of: "t0-3", newId: nil, archive: archive)
        #expect(rerun.id == "t0-3.r1" && rerun.command == ["true"])
        #expect(throws: SchedulerError.duplicateId("t0-4")) { try state.rerunSpec(of: "t0-3", newId: "t0-4", archive: archive) }
    }

    @Test func listingsMergeMemoryAndStoreInSubmissionOrderPageByPage() throws {
        let (state, store, _) = try Self.run(keep: 7, batches: 4, perBatch: 10, open: 5)
        let archive = store.archive
        var limits = TaskPageLimits()
        limits.limit = 6
        var seen: [String] = []
        var after: String?
        for _ in 0..<20 {
            let page = try state.listTasks(after: after, limits: limits, size: { _ in 1 }, archive: archive)
            #expect(page.tasks.count <= 6)
            seen += page.tasks.map(\.id)
            guard let next = page.next else { break }
            after = next
        }
        let expected = (0..<4).flatMap { b in (0..<10).map { "t\(b)-\($0)" } } + (0..<5).map { "open-\($0)" }
        #expect(seen == expected)
        // A filter for tasks in flight reads no store (`listingArchive`): only the open ones.
        let open = ClientRequests.listingArchive(TaskFilter(states: [.queued]), archive)
        let page = try state.listTasks(after: nil, limits: TaskPageLimits(), size: { _ in 1 },
                                       include: { $0.state == .queued }, archive: open)
        #expect(page.tasks.map(\.id) == (0..<5).map { "open-\($0)" })
        // A cursor naming a task that left memory still works.
        let fromOld = try state.listTasks(after: "t0-8", limits: limits, size: { _ in 1 }, archive: archive)
        #expect(fromOld.tasks.first?.id == "t0-9")
    }

    @Test func aTaskCredentialSeesItsSubtreeThroughTasksThatLeftMemory() throws {
        var state = ClusterState(settings: Self.settings(keep: 0))
        var store = FakeStore()
        _ = try state.submit(TaskSpec(id: "root", command: ["true"]), at: 1)
        var mid = TaskSpec(id: "mid", command: ["true"]); mid.parent = "root"
        var leaf = TaskSpec(id: "leaf", command: ["true"]); leaf.parent = "mid"
        _ = try state.submit(mid, at: 1)
        _ = try state.submit(leaf, at: 1)
        _ = try state.submit(TaskSpec(id: "other", command: ["true"]), at: 1)
        for id in ["mid", "leaf", "other"] { _ = try state.cancel(id, at: 2) }
        store.save(&state)
        #expect(state.tasksInMemory == 1, "only root, queued, stays")
        var context = Self.context
        context.archive = store.archive
        let mine = ClientRequests.handle(.status(.init(requestId: 1, id: "leaf")), identity: .task("root"), state: &state, context: context)
        #expect(mine.refusal == nil)
        let theirs = ClientRequests.handle(.status(.init(requestId: 2, id: "other")), identity: .task("root"), state: &state, context: context)
        #expect(theirs.refusal?.reason.contains("outside the subtree") == true)
    }

    @Test func aRestartReadsBackOnlyWhatItIsGivenAndNumbersAfterTheStore() throws {
        let (_, store, _) = try Self.run(keep: 3, batches: 2, perBatch: 5)
        let recent = store.rows.values.sorted { $0.sequence < $1.sequence }.suffix(3)
        var state = ClusterState(settings: Self.settings(keep: 3), restoring: Array(recent), lastSequence: 10, nowMs: 0, at: 0)
        #expect(state.tasksInMemory == 3)
        _ = try state.submit(TaskSpec(id: "new", command: ["true"]), at: 1, archive: store.archive)
        let changes = state.takeChanges()
        #expect(changes.tasks.first { $0.info.id == "new" }?.sequence == 11)
    }
}

/// The measurement behind README's retention figures (run with SWARM_RETENTION_RSS=1): the
/// process's resident size after 20,000 and 100,000 finished tasks (2 KiB output tail each)
/// with 5,000 kept in memory, and with every task kept (before issue 14). Prints; asserts only
/// the bounded count (a size is no test).
@Suite struct TaskRetentionMeasurement {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SWARM_RETENTION_RSS"] != nil))
    func residentSizeAfter20kAnd100kFinishedTasks() throws {
        for keep in [5_000, nil] as [Int?] {
            var state = ClusterState(settings: TaskRetentionTests.settings(keep: keep))
            let output = String(repeating: String(repeating: "x", count: 63) + "\n", count: 32)
            var line = "keep \(keep.map(String.init) ?? "all"):"
            for n in 1...100_000 {
                let id = "t\(n)"
                _ = try state.submit(TaskSpec(id: id, command: ["true"]), at: Int64(n))
                _ = try state.cancel(id, at: Int64(n))
                state.tasks[id]?.info.output = output
                if n % 500 == 0 { _ = state.takeChanges() }
                if n == 20_000 || n == 100_000 {
                    line += " after \(n): \(residentKiB() / 1024) MiB RSS, \(state.tasksInMemory) tasks in memory;"
                }
            }
            print(line)
            if keep != nil { #expect(state.tasksInMemory == 5_000) }
        }
    }
}
