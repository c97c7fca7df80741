import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Task dependencies (issue 13 items 4 and 6), all pure: `ClusterState` driven with plain
/// `Int64` clocks. Release and failure propagation through diamonds and chains, `afterAny`,
/// cancels, a dependency's retries, what submit refuses, and restarts.
@Suite struct DependencyTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    static func spec(_ id: String, after: [String]? = nil, any: [String]? = nil) -> TaskSpec {
        var spec = TaskSpec(id: id, command: ["run", id])
        spec.after = after
        spec.afterAny = any
        return spec
    }

    /// A state with one worker `w` of 10 slots.
    static func cluster() throws -> ClusterState {
        var state = RetryTests.state()
        _ = try S.register(&state, "w", slots: 10)
        return state
    }

    static func placed(_ state: inout ClusterState, at: Int64 = t0) -> [String] {
        S.assigns(state.schedule(nowMs: at, at: at)).map(\.id).sorted()
    }

    static func finish(_ state: inout ClusterState, _ id: String, _ end: TaskState = .succeeded,
                       attempt: Int = 1, at: Int64 = t0) -> [String] {
        RetryTests.ended(state.taskFinished(node: "w", result: S.result(id, end, attempt: attempt, at: at), at: at))
    }

    static func check(_ state: ClusterState) {
        #expect(state.placementInvariantViolations() == [])
    }

    // MARK: Release

    @Test func aDiamondRunsInOrderAndSaysWhatEachWaitsFor() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["a"]),
                                   Self.spec("d", after: ["b", "c"])], at: Self.t0)
        #expect(Self.placed(&state) == ["a"])
        #expect(state.queuedCount == 0)  // held tasks are not in the placement queue
        #expect(state.waitReason(for: "b")?.reason == "waiting for a (running)")
        #expect(state.waitReason(for: "d")?.reason == "waiting for b (queued) and 1 more")
        #expect(try state.taskInfoWithWaitReason("d", nowMs: Self.t0).waitReason == "waiting for b (queued) and 1 more")
        Self.check(state)
        #expect(Self.finish(&state, "a") == ["a"])
        #expect(Self.placed(&state) == ["b", "c"])
        #expect(Self.finish(&state, "b") == ["b"])
        #expect(state.waitReason(for: "d")?.reason == "waiting for c (running)")
        #expect(Self.placed(&state) == [])
        _ = Self.finish(&state, "c")
        #expect(Self.placed(&state) == ["d"])
        _ = Self.finish(&state, "d")
        #expect(try state.task("d").state == .succeeded)
        #expect(try state.task("d").after == ["b", "c"])
        Self.check(state)
    }

    /// Releasing a dependent changes nothing the store keeps (a restart rebuilds the waits):
    /// only the task that ended is written, then each released one when it is placed.
    @Test func releasingDependentsWritesOnlyTheTaskThatEnded() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["a"])], at: Self.t0)
        #expect(Self.placed(&state) == ["a"])
        _ = state.takeChanges()
        #expect(Self.finish(&state, "a") == ["a"])
        #expect(state.takeChanges().tasks.map(\.info.id) == ["a"])
        #expect(Self.placed(&state) == ["b", "c"])
        #expect(state.takeChanges().tasks.map(\.info.id) == ["b", "c"])
        Self.check(state)
    }

    /// A layer released at once can be placed in parts (the shell places a slice a loop
    /// iteration: `SchedulerServer.placementRound`): a round places at most its limit,
    /// in submission order, and the rest stay queued, in order, for the next round.
    @Test func aReleasedLayerIsPlacedAtMostTheLimitARoundInOrder() throws {
        var state = try Self.cluster()
        let layer = (1...6).map { "b\($0)" }
        _ = try state.submitBatch([Self.spec("a")] + layer.map { Self.spec($0, after: ["a"]) }, at: Self.t0)
        #expect(Self.placed(&state) == ["a"])
        _ = Self.finish(&state, "a")
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0, limit: 0)).isEmpty)
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0, limit: 2)).map(\.id) == ["b1", "b2"])
        #expect(try state.task("b3").state == .queued)
        Self.check(state)
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0, limit: 3)).map(\.id) == ["b3", "b4", "b5"])
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.id) == ["b6"])
        Self.check(state)
    }

    @Test func aFailedBranchEndsTheJoinDependencyFailedNamingIt() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["a"]),
                                   Self.spec("d", after: ["b", "c"])], at: Self.t0)
        _ = Self.placed(&state)
        _ = Self.finish(&state, "a")
        _ = Self.placed(&state)
        #expect(Self.finish(&state, "b", .failed) == ["b", "d"])
        let d = try state.task("d")
        #expect(d.state == .dependencyFailed && d.reason == "dependency b failed" && d.attempts == 0 && d.finishedAt == Self.t0)
        // c goes on; its end releases nothing more.
        #expect(Self.finish(&state, "c") == ["c"])
        #expect(Self.placed(&state) == [])
        Self.check(state)
    }

    @Test func afterAnyRunsTheJoinWhateverTheBranchesEndIn() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["a"]),
                                   Self.spec("d", any: ["b", "c"])], at: Self.t0)
        _ = Self.placed(&state)
        _ = Self.finish(&state, "a")
        _ = Self.placed(&state)
        #expect(Self.finish(&state, "b", .timedOut) == ["b"])
        #expect(state.waitReason(for: "d")?.reason == "waiting for c (running)")
        _ = Self.finish(&state, "c", .failed)
        #expect(Self.placed(&state) == ["d"])
        Self.check(state)
    }

    @Test func aFailureRunsDownAChainNamingTheFirstFailure() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["b"]),
                                   Self.spec("d", after: ["c"]), Self.spec("e", any: ["d"])], at: Self.t0)
        _ = Self.placed(&state)
        #expect(Self.finish(&state, "a", .failed) == ["a", "b", "c", "d"])
        #expect(try state.task("b").reason == "dependency a failed")
        #expect(try state.task("c").reason == "dependency b dependency_failed (a failed)")
        #expect(try state.task("d").reason == "dependency c dependency_failed (a failed)")
        // afterAny takes any end, dependency_failed too.
        #expect(Self.placed(&state) == ["e"])
        Self.check(state)
    }

    @Test func aDependencyRetriedAfterAFailureDoesNotFailItsDependents() throws {
        var state = try Self.cluster()
        var a = Self.spec("a")
        a.retries = 1
        a.retryBackoff = 1
        _ = try state.submitBatch([a, Self.spec("b", after: ["a"])], at: Self.t0)
        _ = Self.placed(&state)
        #expect(Self.finish(&state, "a", .failed) == [])
        #expect(try state.task("b").state == .queued)
        #expect(state.waitReason(for: "b")?.reason == "waiting for a (queued)")
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)  // starts the backoff
        #expect(Self.placed(&state, at: Self.t0 + 2_000) == ["a"])
        _ = Self.finish(&state, "a", attempt: 2, at: Self.t0 + 2_000)
        #expect(Self.placed(&state, at: Self.t0 + 2_000) == ["b"])
        Self.check(state)
    }

    // MARK: Cancel

    @Test func cancellingAWaitingDependentEndsItAndFailsWhatWaitsForIt() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["b"]),
                                   Self.spec("d", any: ["b"])], at: Self.t0)
        _ = Self.placed(&state)
        #expect(RetryTests.ended(try state.cancel("b", at: Self.t0)) == ["b", "c"])
        #expect(try state.task("b").state == .cancelled)
        #expect(try state.task("b").reason == "cancelled while waiting for its dependencies")
        #expect(try state.task("c").reason == "dependency b cancelled")
        #expect(Self.placed(&state) == ["d"])
        // a's end finds no one left waiting for it.
        #expect(Self.finish(&state, "a") == ["a"])
        Self.check(state)
    }

    @Test func cancellingAQueuedDependencyFailsAfterAndReleasesAfterAny() throws {
        var state = RetryTests.state()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", any: ["a"])], at: Self.t0)
        #expect(RetryTests.ended(try state.cancel("a", at: Self.t0)) == ["a", "b"])
        #expect(try state.task("b").state == .dependencyFailed)
        #expect(try state.task("c").state == .queued && state.queuedCount == 1)
        Self.check(state)
    }

    // MARK: Submit checks

    @Test func submitRefusesUnknownIdsSelfDependenciesAndCycles() throws {
        var state = RetryTests.state()
        #expect(throws: SchedulerError.invalidTask("dependency 'x' is not a known task (nor one of this batch)")) {
            try state.submit(Self.spec("a", after: ["x"]), at: Self.t0)
        }
        #expect(throws: SchedulerError.invalidTask("afterAny: a task cannot depend on itself ('a')")) {
            try state.submit(Self.spec("a", any: ["a"]), at: Self.t0)
        }
        #expect(throws: SchedulerError.invalidTask("task 2: the dependencies form a cycle: b -> c -> d -> b")) {
            try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["c"]), Self.spec("c", after: ["d", "a"]),
                                   Self.spec("d", any: ["b"])], at: Self.t0)
        }
        #expect(throws: SchedulerError.invalidTask("task 1: dependency 'x' is not a known task (nor one of this batch)")) {
            try state.submitBatch([Self.spec("a", after: ["b", "x"]), Self.spec("b")], at: Self.t0)
        }
        // dependency_failed has no run to retry: --retry-on refuses it.
        #expect(RetryPolicy.problem(retries: 1, retryOn: ["dependency_failed"], retryBackoff: nil)?
            .hasPrefix("retryOn: 'dependency_failed' is not a state a run is retried from") == true)
        #expect(state.listTasks().isEmpty)
        // A task may name one later in its batch.
        _ = try state.submitBatch([Self.spec("a", after: ["b"]), Self.spec("b")], at: Self.t0)
        #expect(try state.task("a").state == .queued && state.queuedCount == 1)
        Self.check(state)
    }

    @Test func aTaskNamesAtMostAThousandDependencies() throws {
        var state = RetryTests.state()
        // The store's answer for tasks no longer in memory (issue 14's seam): all succeeded.
        let ids = (1...1_001).map { "d\($0)" }
        let ended = Dictionary(uniqueKeysWithValues: ids.map { ($0, TaskState.succeeded) })
        _ = try state.submit(Self.spec("ok", after: Array(ids.prefix(600)), any: Array(ids.prefix(1_000).suffix(400))), at: Self.t0, ended: ended)
        #expect(try state.task("ok").state == .queued && state.queuedCount == 1)
        #expect(throws: SchedulerError.invalidTask("a task may name at most 1000 dependencies (after and afterAny together), got 1001")) {
            try state.submit(Self.spec("over", after: Array(ids.prefix(1)), any: Array(ids.prefix(1_000))), at: Self.t0, ended: ended)
        }
        Self.check(state)
    }

    @Test func dependenciesThatEndedOutOfMemoryComeFromTheStore() throws {
        var state = RetryTests.state()
        _ = try state.submit(Self.spec("fine", after: ["old-ok"], any: ["old-bad"]), at: Self.t0,
                             ended: ["old-ok": .succeeded, "old-bad": .failed])
        #expect(state.queuedCount == 1)
        #expect(state.unknownDependencies(of: [Self.spec("x", after: ["fine", "gone", "y"]), Self.spec("y")]) == ["gone"])
        _ = try state.submit(Self.spec("doomed", after: ["old-bad"]), at: Self.t0, ended: ["old-bad": .timedOut])
        #expect(try state.task("doomed").state == .dependencyFailed)
        #expect(try state.task("doomed").reason == "dependency old-bad timed_out")
        // Its end reaches the shell through the next placement round.
        #expect(RetryTests.ended(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["doomed"])
        #expect(RetryTests.ended(state.schedule(nowMs: Self.t0, at: Self.t0)) == [])
        Self.check(state)
    }

    @Test func rerunKeepsDependenciesAndRefusesADependencyFailedTask() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"]), Self.spec("c", after: ["b"])], at: Self.t0)
        _ = Self.placed(&state)
        _ = Self.finish(&state, "a")
        _ = Self.placed(&state)
        _ = Self.finish(&state, "b", .failed)
        #expect(try state.rerunSpec(of: "b", newId: nil).after == ["a"])
        #expect(throws: SchedulerError.self) { try state.rerunSpec(of: "c", newId: nil) }
        _ = try state.submit(state.rerunSpec(of: "b", newId: nil), at: Self.t0)
        #expect(Self.placed(&state) == ["b.r1"])
    }

    // MARK: Restart

    @Test func aRestartRebuildsWaitsAndJudgesDependenciesThatEnded() throws {
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b"), Self.spec("c", after: ["a"]), Self.spec("d", after: ["b"]),
                                   Self.spec("e", any: ["b"]), Self.spec("f", after: ["c", "a"])], at: Self.t0)
        _ = Self.placed(&state)
        _ = Self.finish(&state, "a")
        var saved = state.takeChanges().tasks
        // b ended failed, but its dependents' ends were not saved (a crash in between).
        let b = saved.firstIndex { $0.info.id == "b" }!
        saved[b].info.state = .failed
        var restored = ClusterState(settings: RetryTests.state().settings, restoring: saved, nowMs: 0, at: Self.t0)
        #expect(restored.waitReason(for: "f")?.reason == "waiting for c (queued)")
        _ = try S.register(&restored, "w", slots: 10)
        let first = restored.schedule(nowMs: 0, at: Self.t0)
        #expect(RetryTests.ended(first) == ["d"])
        #expect(S.assigns(first).map(\.id).sorted() == ["c", "e"])
        #expect(try restored.task("d").reason == "dependency b failed")
        Self.check(restored)
    }

    @Test func aRestartFindsDependenciesOnlyTheStoreStillHas() throws {
        var state = RetryTests.state()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b"), Self.spec("c", after: ["a"]), Self.spec("d", after: ["b"])], at: Self.t0)
        let saved = state.takeChanges().tasks.filter { $0.info.id == "c" || $0.info.id == "d" }
        var restored = ClusterState(settings: RetryTests.state().settings, restoring: saved, nowMs: 0, at: Self.t0,
                                    ended: ["a": .succeeded, "b": .lost])
        #expect(restored.queuedCount == 1)
        #expect(RetryTests.ended(restored.schedule(nowMs: 0, at: Self.t0)) == ["d"])
        Self.check(restored)
    }

    // MARK: Store

    @Test func theStoreKeepsEachEdgeOnceAndAnswersEndedStates() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a", "a"], any: ["a"]), Self.spec("c", any: ["a", "b"])], at: Self.t0)
        let store = try TaskStore(directory: dir)
        try store.save(state.takeChanges(), at: Self.t0)
        _ = Self.placed(&state)
        _ = Self.finish(&state, "a", .failed)
        try store.save(state.takeChanges(), at: Self.t0)
        #expect(store.endedState(of: "a") == .failed && store.endedState(of: "b") == .dependencyFailed)
        #expect(store.endedState(of: "c") == nil && store.endedState(of: "nope") == nil)
        store.close()
        let db = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true)
        let rows = try db.prepare("SELECT task_id, dependency_id, any_end FROM dependencies ORDER BY task_id, dependency_id")
        var edges: [String] = []
        while try rows.step() { edges.append("\(rows.string(0)!)<\(rows.string(1)!):\(rows.int64(2)!)") }
        #expect(edges == ["b<a:0", "c<a:1", "c<b:1"])
    }

    /// A task's info row is rewritten at each change (placed, started, ended): its dependency
    /// lists stay in the spec's row, written once, and come back from there, through a
    /// restart and through the archive alike. A row written with them (before) reads the same.
    @Test func theInfoRowLeavesTheDependencyListsToTheSpecAndReadsThemBack() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var state = try Self.cluster()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"], any: ["a"]), Self.spec("c", after: ["b", "a"])], at: Self.t0)
        let store = try TaskStore(directory: dir)
        try store.save(state.takeChanges(), at: Self.t0)
        _ = Self.placed(&state)
        _ = Self.finish(&state, "a")
        _ = Self.placed(&state)
        try store.save(state.takeChanges(), at: Self.t0)
        let db = try SQLiteDatabase(path: dir + "/swarm.db")
        let rows = try db.prepare("SELECT id, json_type(info, '$.after'), json_type(info, '$.afterAny'), json_extract(spec, '$.after') FROM tasks ORDER BY id")
        var stored: [String] = []
        while try rows.step() { stored.append("\(rows.string(0)!):\(rows.string(1) ?? "-"):\(rows.string(2) ?? "-"):\(rows.string(3) ?? "-")") }
        #expect(stored == ["a:null:null:-", "b:null:null:[\"a\"]", "c:null:null:[\"b\",\"a\"]"])
        let restarted = try store.loadRestart(recentFinished: 10).tasks
        let b = try #require(restarted.first { $0.info.id == "b" })
        let c = try #require(restarted.first { $0.info.id == "c" })
        #expect(b.info.state == .running && b.info.after == ["a"] && b.info.afterAny == ["a"])
        #expect(c.info.after == ["b", "a"] && c.info.afterAny == nil)
        #expect(store.archive.task("c")?.info.after == ["b", "a"])
        // A row written before keeps its lists in the info: read as it is.
        try db.execute("UPDATE tasks SET info = json_set(info, '$.after', json('[\"a\"]')), spec = json_remove(spec, '$.after') WHERE id = 'c'")
        db.close()
        #expect(store.archive.task("c")?.info.after == ["a"])
        store.close()
    }

    @Test func aVersionTwoStateDirectoryGetsTheDependenciesTable() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TaskStore(directory: dir).close()
        try SQLiteDatabase(path: dir + "/swarm.db").execute("DROP TABLE dependencies; UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        let store = try TaskStore(directory: dir)
        var state = RetryTests.state()
        _ = try state.submitBatch([Self.spec("a"), Self.spec("b", after: ["a"])], at: Self.t0)
        try store.save(state.takeChanges(), at: Self.t0)
        #expect(try store.loadTasks().map(\.spec.after) == [nil, ["a"]])
        store.close()
        let db = try SQLiteDatabase(path: dir + "/swarm.db", readOnly: true)
        #expect(try db.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == "\(TaskStore.schemaVersion)")
        #expect(try db.scalar("SELECT count(*) FROM dependencies") == "1")
    }

    // MARK: Client requests

    @Test func aTaskCredentialWaitsOnlyForItsSubtreeAndTheStoreIsAskedForTheRest() throws {
        typealias C = ClientRequestsTests
        var state = try C.state()  // r -> c; o outside r's subtree
        let outside = try #require(try C.refusal(.submit(.init(requestId: 1, task: Self.spec("x", after: ["o"]))), as: .task("r")))
        #expect(outside.reason.contains("task 'o' is outside the subtree of task 'r'"))
        let inside = C.handle(.submitBatch(.init(requestId: 2, tasks: [Self.spec("y", after: ["c", "z"]), Self.spec("z")])), as: .task("r"), &state)
        #expect(inside.refusal == nil)
        #expect(try state.task("y").parent == "r")
        // An id the state does not hold is looked up through the shell (issue 14's seam).
        var context = C.context
        var asked: [String] = []
        context.endedTaskState = { id in asked.append(id); return id == "archived" ? .succeeded : nil }
        let found = C.handle(.submit(.init(requestId: 3, task: Self.spec("w", after: ["archived", "o"]))), &state, context)
        #expect(found.refusal == nil && asked == ["archived"])
        let missing = C.handle(.submit(.init(requestId: 4, task: Self.spec("v", any: ["gone"]))), &state, context)
        #expect(missing.refusal?.reason == "invalid task: dependency 'gone' is not a known task (nor one of this batch)")
        // Cancelling a task others wait for asks for a placement round (they may be released).
        let cancel = C.handle(.cancel(.init(requestId: 5, id: "o")), &state)
        #expect(cancel.flow == [.scheduleSoon] && cancel.directives == [.taskEnded(id: "o"), .taskEnded(id: "w")])
    }
}
