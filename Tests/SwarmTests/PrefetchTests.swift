import Testing
@testable import SwarmNode
@testable import SwarmProtocol
@_spi(PlacementInput) @testable import SwarmScheduler

/// Assignment prefetch (issue 17) in the pure cores: `ClusterState` sends a task ahead to a
/// busy worker only when no free slot fits it, keeps it `queued` until the worker reports it
/// started, and withdraws it uncharged when it never started; `PrefetchHold` starts held
/// assignments in order, only into a free slot.
@Suite struct PrefetchTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    static func settings(prefetch: Int = 1, lostAfterMs: Int64 = 10_000) -> SchedulerSettings {
        var settings = SchedulerSettings(lostAfterMs: lostAfterMs)
        settings.prefetch = prefetch
        return settings
    }

    static func node(_ state: inout ClusterState, _ name: String, slots: Int, prefetch: Bool = true,
                     running: [RunRef] = [], at now: Int64 = t0) throws -> [SchedulerDirective] {
        try state.register(node: name, slots: slots, labels: [:], running: running, finished: [], address: nil,
                           nowMs: now, at: now, prefetch: prefetch)
    }

    /// "node:id" for direct assignments, "node:id+" for prefetched ones.
    static func placed(_ directives: [SchedulerDirective]) -> [String] {
        directives.compactMap { if case let .assign(node, a) = $0 { "\(node):\(a.id)\(a.prefetch == true ? "+" : "")" } else { nil } }
    }

    static func round(_ state: inout ClusterState, at now: Int64 = t0) -> [String] {
        placed(state.schedule(nowMs: now, at: now))
    }

    static func running(_ state: ClusterState, _ name: String) -> Int {
        state.listNodes(nowMs: t0).first { $0.name == name }?.running ?? -1
    }

    static func check(_ state: ClusterState) {
        #expect(state.placementInvariantViolations() == [])
        for node in state.listNodes(nowMs: t0) { #expect(node.running <= node.slots, "\(node.name)") }
    }

    @Test func sendsAheadOnlyWhenNoFreeSlotFits() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        _ = try Self.node(&state, "b", slots: 1)
        try S.submit(&state, ["t1", "t2", "t3", "t4", "t5"])
        // Free slots first, then one ahead per worker; t5 stays in the queue.
        #expect(Self.round(&state) == ["a:t1", "b:t2", "a:t3+", "b:t4+"])
        #expect(try state.task("t3").state == .queued)
        #expect(try state.task("t3").node == "a")
        #expect(state.waitReason(for: "t3")?.reason.contains("prefetched to worker a") == true)
        #expect(state.waitReason(for: "t5")?.reason == "all slots are busy")
        #expect(Self.running(state, "a") == 1 && Self.running(state, "b") == 1)
        #expect(state.listNodes(nowMs: Self.t0).map(\.prefetched) == [1, 1], "`swarm nodes` shows what each holds")
        Self.check(state)
        // A worker that joins with free slots takes the next one directly.
        _ = try Self.node(&state, "c", slots: 1)
        #expect(Self.round(&state) == ["c:t5"])
        Self.check(state)
    }

    @Test func startedFlipsToRunningAndTheSlotTurnsOver() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 2)
        try S.submit(&state, ["t1", "t2", "t3", "t4", "t5"])
        #expect(Self.round(&state) == ["a:t1", "a:t2", "a:t3+"])
        // t1 ends; the worker starts t3 from its hold and says so after the result.
        _ = state.taskFinished(node: "a", result: S.result("t1", at: Self.t0 + 10), at: Self.t0 + 10)
        Self.check(state)
        #expect(Self.running(state, "a") == 1)
        state.taskStarted(node: "a", run: RunRef(id: "t3", attempt: 1), startedAt: Self.t0 + 11)
        #expect(try state.task("t3").state == .running)
        #expect(Self.running(state, "a") == 2)
        #expect(state.listNodes(nowMs: Self.t0).first?.prefetched == 0, "started: no longer held")
        Self.check(state)
        // No free slot (t2, t3 run): the next goes ahead again.
        #expect(Self.round(&state, at: Self.t0 + 12) == ["a:t4+"])
        Self.check(state)
        // A prefetched run's result without a start (it failed to spawn) ends it all the same.
        _ = state.taskFinished(node: "a", result: S.result("t4", .spawnFailed, at: Self.t0 + 13), at: Self.t0 + 13)
        #expect(try state.task("t4").state == .spawnFailed)
        Self.check(state)
    }

    @Test func offForWorkersThatDoNotHoldAndWhenZero() throws {
        var old = ClusterState(settings: Self.settings())
        _ = try Self.node(&old, "a", slots: 1, prefetch: false)
        try S.submit(&old, ["t1", "t2"])
        #expect(Self.round(&old) == ["a:t1"])
        var off = ClusterState(settings: Self.settings(prefetch: 0))
        _ = try Self.node(&off, "a", slots: 1)
        try S.submit(&off, ["t1", "t2"])
        #expect(Self.round(&off) == ["a:t1"])
        Self.check(off)
        var deep = ClusterState(settings: Self.settings(prefetch: 2))
        _ = try Self.node(&deep, "a", slots: 1)
        try S.submit(&deep, ["t1", "t2", "t3", "t4"])
        #expect(Self.round(&deep) == ["a:t1", "a:t2+", "a:t3+"])
    }

    @Test func cancelOfAHeldTaskEndsItNowAndTellsItsWorker() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        try S.submit(&state, ["t1", "t2", "t3"])
        #expect(Self.round(&state) == ["a:t1", "a:t2+"])
        let directives = try state.cancel("t2", at: Self.t0 + 5)
        #expect(directives == [.kill(node: "a", run: RunRef(id: "t2", attempt: 1), reason: "cancelled by user"), .taskEnded(id: "t2")])
        #expect(try state.task("t2").state == .cancelled)
        // Its slot stays taken (not running) until the worker says it dropped it.
        #expect(Self.round(&state, at: Self.t0 + 6) == [])
        Self.check(state)
        var result = S.result("t2", .cancelled, at: Self.t0 + 7)
        result.startedAt = nil
        _ = state.taskFinished(node: "a", result: result, at: Self.t0 + 7)
        #expect(try state.task("t2").state == .cancelled)
        #expect(Self.round(&state, at: Self.t0 + 8) == ["a:t3+"])
        Self.check(state)
    }

    @Test func aLostWorkersHeldTasksAreRequeuedUncharged() throws {
        var state = ClusterState(settings: Self.settings(lostAfterMs: 1_000))
        _ = try Self.node(&state, "a", slots: 1)
        try S.submit(&state, ["t1", "t2"])
        _ = Self.round(&state)
        _ = state.tick(nowMs: Self.t0 + 5_000, at: Self.t0 + 5_000)
        let t1 = try state.task("t1"), t2 = try state.task("t2")
        #expect(t1.state == .queued && t2.state == .queued)
        #expect(t2.attempts == 0 && t2.runs?.isEmpty == true && t2.node == nil)
        #expect(state.tasks["t2"]?.retry.losses == 0)
        #expect(state.tasks["t1"]?.retry.losses == 1)
        Self.check(state)
        _ = try Self.node(&state, "b", slots: 2, at: Self.t0 + 5_001)
        #expect(Self.round(&state, at: Self.t0 + 5_001) == ["b:t1", "b:t2"])
        #expect(try state.task("t2").attempts == 1)
    }

    @Test func aWorkerBackWithoutItsHeldTasksGetsThemWithdrawn() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        try S.submit(&state, ["t1", "t2", "t3"])
        #expect(Self.round(&state) == ["a:t1", "a:t2+"])
        _ = state.disconnected(node: "a", at: Self.t0 + 1)
        // It still holds t1 running; the held t2 was dropped with the connection.
        let directives = try Self.node(&state, "a", slots: 1, running: [RunRef(id: "t1", attempt: 1)], at: Self.t0 + 2)
        #expect(directives.isEmpty)
        #expect(try state.task("t2").state == .queued && state.task("t2").attempts == 0)
        #expect(state.tasks["t2"]?.retry.losses == 0)
        Self.check(state)
        // Back in the queue in its place: ahead of t3.
        #expect(Self.round(&state, at: Self.t0 + 3) == ["a:t2+"])
    }

    @Test func leavingWorkersRefusalWithdrawsAndHoldsIt() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        try S.submit(&state, ["t1", "t2"])
        _ = Self.round(&state)
        _ = state.taskRejected(node: "a", run: RunRef(id: "t2", attempt: 1), nowMs: Self.t0 + 1, at: Self.t0 + 1)
        #expect(try state.task("t2").state == .queued && state.task("t2").attempts == 0)
        #expect(Self.round(&state, at: Self.t0 + 2) == [])
        Self.check(state)
    }

    @Test func aRestartKeepsHeldTasksOnTheirWorkerUntilItRegisters() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        try S.submit(&state, ["t1", "t2", "t3"])
        #expect(Self.round(&state) == ["a:t1", "a:t2+"])
        var saved = DurabilityTests.Saved()
        saved.save(&state)
        func restarted() -> ClusterState {
            ClusterState(settings: Self.settings(), restoring: saved.all, nowMs: Self.t0 + 100, at: Self.t0 + 100)
        }
        // The worker started t2 while the scheduler was down (t1 ended, its result held).
        var back = restarted()
        #expect(back.isPrefetched("t2"))
        #expect(back.waitReason(for: "t2")?.reason.contains("prefetched") == true)
        _ = try back.register(node: "a", slots: 1, labels: [:], running: [RunRef(id: "t2", attempt: 1)],
                              finished: [RunRef(id: "t1", attempt: 1)], address: nil, nowMs: Self.t0 + 101, at: Self.t0 + 101,
                              prefetch: true)
        // Running once t1's result is in (until then the scheduler counts t1 in the slot).
        #expect(try back.task("t2").state == .queued)
        Self.check(back)
        _ = back.taskFinished(node: "a", result: S.result("t1", at: Self.t0 + 102), at: Self.t0 + 102)
        #expect(try back.task("t2").state == .running)
        #expect(try back.task("t1").state == .succeeded)
        #expect(Self.round(&back, at: Self.t0 + 102) == ["a:t3+"])
        Self.check(back)
        // Or it had not: t2 goes back to the queue once, attempt given back, nothing charged.
        var again = restarted()
        _ = try again.register(node: "a", slots: 1, labels: [:], running: [RunRef(id: "t1", attempt: 1)], finished: [],
                               address: nil, nowMs: Self.t0 + 101, at: Self.t0 + 101, prefetch: true)
        #expect(try again.task("t2").state == .queued && again.task("t2").attempts == 0)
        #expect(again.tasks["t2"]?.retry.losses == 0)
        #expect(Self.round(&again, at: Self.t0 + 102) == ["a:t2+"])
        Self.check(again)
    }

    @Test func aRetryStillPrefersAnotherWorker() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        _ = try Self.node(&state, "b", slots: 1)
        var spec = TaskSpec(id: "r", command: ["x"])
        spec.retries = 1
        spec.retryBackoff = 1
        _ = try state.submit(spec, at: Self.t0)
        try S.submit(&state, ["t1"])
        #expect(Self.round(&state) == ["a:r", "b:t1"])
        _ = state.taskFinished(node: "a", result: S.result("r", .failed, at: Self.t0 + 1), at: Self.t0 + 1)
        try S.submit(&state, ["t2"], at: Self.t0 + 1)
        // r waits out its backoff; t2 takes a's slot.
        #expect(Self.round(&state, at: Self.t0 + 2) == ["a:t2"])
        // Both busy when the backoff ends: r goes ahead to b, not to a where it failed.
        #expect(Self.round(&state, at: Self.t0 + 600_000) == ["b:r+"])
        Self.check(state)
    }

    // MARK: The worker's hold

    static func assignment(_ id: String, attempt: Int = 1) -> TaskAssignment {
        TaskAssignment(id: id, command: ["true"], env: nil, attempt: attempt)
    }

    @Test func holdStartsInOrderOnlyIntoAFreeSlotWhileRegistered() {
        var hold = PrefetchHold()
        #expect(hold.hold(Self.assignment("a"), nowMs: 0) == nil)
        #expect(hold.hold(Self.assignment("b"), nowMs: 0) == nil)
        #expect(hold.hold(Self.assignment("a"), nowMs: 0) != nil)
        #expect(hold.hold(Self.assignment("b", attempt: 2), nowMs: 0) != nil)
        #expect(hold.count == 2)
        #expect(hold.next(busy: 2, slots: 2, registered: true) == nil)
        #expect(hold.next(busy: 1, slots: 2, registered: false) == nil)
        #expect(hold.next(busy: 1, slots: 2, registered: true)?.id == "a")
        #expect(hold.next(busy: 1, slots: 2, registered: true)?.id == "b")
        #expect(hold.next(busy: 0, slots: 2, registered: true) == nil)
        #expect(hold.isEmpty)
    }

    @Test func holdDropsKilledRunsAndIsBounded() {
        var hold = PrefetchHold()
        for i in 0..<PrefetchHold.maxHeld { #expect(hold.hold(Self.assignment("t\(i)"), nowMs: 0) == nil) }
        #expect(hold.hold(Self.assignment("over"), nowMs: 0) != nil)
        #expect(hold.remove(RunRef(id: "t5", attempt: 2)) == nil)
        #expect(hold.remove(RunRef(id: "t5", attempt: 1))?.id == "t5")
        #expect(hold.run(of: "t5") == nil)
        var started: [String] = []
        for _ in 0..<100 { if let next = hold.next(busy: 0, slots: 1, registered: true) { started.append(next.id) } }
        #expect(started.first == "t0" && !started.contains("t5") && started.count == 100)
        #expect(hold.removeAll().count == PrefetchHold.maxHeld - 101)
        #expect(hold.isEmpty)
    }

    @Test func holdHandsBackWhatWaitedItsLimitOldestFirst() {
        var hold = PrefetchHold(maxHoldMs: 1_000)
        #expect(hold.nextExpiryMs == nil)
        #expect(hold.hold(Self.assignment("a"), nowMs: 5_000) == nil)
        #expect(hold.hold(Self.assignment("b"), nowMs: 5_400) == nil)
        #expect(hold.nextExpiryMs == 6_000)
        // 999 ms: kept; 1,000 ms: handed back. b, held later, is kept.
        #expect(hold.expired(nowMs: 5_999).isEmpty)
        #expect(hold.expired(nowMs: 6_000).map(\.id) == ["a"])
        #expect(hold.count == 1 && hold.nextExpiryMs == 6_400)
        // A clock read earlier than the last hold's does not put an entry before it.
        #expect(hold.hold(Self.assignment("c"), nowMs: 5_100) == nil)
        #expect(hold.expired(nowMs: 6_399).isEmpty)
        #expect(hold.expired(nowMs: 7_000).map(\.id) == ["b", "c"])
        #expect(hold.isEmpty && hold.nextExpiryMs == nil)
        // What started or was killed before its limit is not handed back.
        #expect(hold.hold(Self.assignment("d"), nowMs: 8_000) == nil)
        #expect(hold.next(busy: 0, slots: 1, registered: true)?.id == "d")
        #expect(hold.expired(nowMs: 20_000).isEmpty)
    }

    /// A worker whose slot stays busy hands its held run back: it goes to a free slot elsewhere,
    /// uncharged; nothing more is sent ahead to that worker until one of its runs ends.
    @Test func aHandedBackRunGoesToAFreeSlotAndPausesPrefetchToItsWorker() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        _ = try Self.node(&state, "b", slots: 1)
        try S.submit(&state, ["long", "short", "t3", "t4"])
        #expect(Self.round(&state) == ["a:long", "b:short", "a:t3+", "b:t4+"])
        // b's short run ends; t4 starts there (held), b is busy again; t3 waits on a.
        _ = state.taskFinished(node: "b", result: S.result("short", at: Self.t0 + 1), at: Self.t0 + 1)
        state.taskStarted(node: "b", run: RunRef(id: "t4", attempt: 1), startedAt: Self.t0 + 1)
        #expect(try state.task("t4").state == .running)
        // a hands t3 back: queued again, attempt given back, nothing charged; a gets nothing
        // ahead (it is the only node with room), not even after the old one-second hold.
        let handed = state.taskRejected(node: "a", run: RunRef(id: "t3", attempt: 1), nowMs: Self.t0 + 1_000, at: Self.t0 + 1_000)
        #expect(handed.isEmpty)
        #expect(try state.task("t3").state == .queued && state.task("t3").attempts == 0)
        #expect(state.tasks["t3"]?.retry.losses == 0)
        try S.submit(&state, ["t5"], at: Self.t0 + 1_000)
        #expect(Self.round(&state, at: Self.t0 + 1_001) == ["b:t3+"])
        #expect(Self.round(&state, at: Self.t0 + 5_000) == [])
        Self.check(state)
        // b hands t3 back too: both paused, t3 and t5 queued.
        _ = state.taskRejected(node: "b", run: RunRef(id: "t3", attempt: 1), nowMs: Self.t0 + 5_001, at: Self.t0 + 5_001)
        #expect(Self.round(&state, at: Self.t0 + 5_002) == [])
        // b's run ends: its free slot takes t3 at once (no hold), then t5 goes ahead to b again.
        _ = state.taskFinished(node: "b", result: S.result("t4", at: Self.t0 + 5_003), at: Self.t0 + 5_003)
        #expect(Self.round(&state, at: Self.t0 + 5_003) == ["b:t3", "b:t5+"])
        #expect(try state.task("t3").attempts == 1)
        Self.check(state)
        // a stays paused until its own run ends.
        _ = state.taskFinished(node: "a", result: S.result("long", at: Self.t0 + 6_000), at: Self.t0 + 6_000)
        try S.submit(&state, ["t6", "t7"], at: Self.t0 + 6_000)
        #expect(Self.round(&state, at: Self.t0 + 6_000) == ["a:t6", "a:t7+"])
        Self.check(state)
    }

    /// A cancel crossing the worker's hand-back: the refusal ends the dropped run there.
    @Test func aCancelledRunHandedBackFreesItsSlot() throws {
        var state = ClusterState(settings: Self.settings())
        _ = try Self.node(&state, "a", slots: 1)
        try S.submit(&state, ["t1", "t2"])
        #expect(Self.round(&state) == ["a:t1", "a:t2+"])
        _ = try state.cancel("t2", at: Self.t0 + 1)
        #expect(try state.task("t2").state == .cancelled)
        _ = state.taskRejected(node: "a", run: RunRef(id: "t2", attempt: 1), nowMs: Self.t0 + 2, at: Self.t0 + 2)
        _ = state.taskFinished(node: "a", result: S.result("t1", at: Self.t0 + 3), at: Self.t0 + 3)
        try S.submit(&state, ["t3"], at: Self.t0 + 3)
        #expect(Self.round(&state, at: Self.t0 + 3) == ["a:t3"])
        Self.check(state)
    }
}
