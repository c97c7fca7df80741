import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Placement, the task queue and `ClusterState`, all pure: times are plain `Int64`s.
@Suite struct SchedulerStateTests {
    // MARK: Placement

    static func n(_ name: String, free: Int, slots: Int = 4, state: NodeState = .ready, connected: Bool = true) -> NodeSnapshot {
        NodeSnapshot(name: name, slots: slots, freeSlots: free, state: state, connected: connected)
    }

    static let spec = PlacementRequest()

    /// A worker name is what a task id may be: the scheduler enforces it for any peer, not
    /// only for workers that went through `swarm worker`'s own check.
    @Test func aWorkerNameOutsideTheRuleIsRefusedAtRegistration() throws {
        var state = ClusterState()
        for bad in ["a/b", "..", "w\nworker w2 lost", String(repeating: "x", count: 129), "w 1"] {
            #expect(throws: SchedulerError.self) { _ = try Self.register(&state, bad, slots: 1) }
        }
        #expect(state.listNodes(nowMs: Self.t0).isEmpty)
        _ = try Self.register(&state, "build-1.lan_2", slots: 1)
        #expect(state.listNodes(nowMs: Self.t0).map(\.name) == ["build-1.lan_2"])
    }

    @Test func mostFreeSlotsWins() {
        #expect(Placement.place(Self.spec, on: [Self.n("a", free: 1), Self.n("b", free: 3), Self.n("c", free: 2)]) == .place(node: "b"))
    }

    @Test func tieGoesToSmallerName() {
        #expect(Placement.place(Self.spec, on: [Self.n("zeta", free: 2), Self.n("alpha", free: 2), Self.n("mid", free: 2)]) == .place(node: "alpha"))
        #expect(Placement.place(Self.spec, on: [Self.n("b", free: 2), Self.n("a", free: 1)]) == .place(node: "b"))
    }

    @Test func lostDrainingAndDisconnectedNodesAreSkipped() {
        let nodes = [Self.n("a", free: 9, state: .lost), Self.n("b", free: 8, state: .draining),
                     Self.n("c", free: 7, connected: false), Self.n("d", free: 1)]
        #expect(Placement.place(Self.spec, on: nodes) == .place(node: "d"))
        guard case .wait(let reason) = Placement.place(Self.spec, on: Array(nodes.prefix(3))) else {
            Issue.record("must wait"); return
        }
        #expect(reason.contains("no worker is ready"))
    }

    @Test func noNodesWaits() {
        #expect(Placement.place(Self.spec, on: []) == .wait(reason: "no workers have registered"))
    }

    @Test func allFullWaits() {
        #expect(Placement.place(Self.spec, on: [Self.n("a", free: 0), Self.n("b", free: 0)]) == .wait(reason: "all slots are busy"))
    }

    // MARK: TaskQueue

    @Test func queueIsFIFOBySequence() {
        var q = TaskQueue()
        for (i, id) in ["e", "b", "d", "a", "c"].enumerated() { q.push(id: id, sequence: UInt64(i + 1)) }
        #expect(q.count == 5)
        #expect(q.orderedIds == ["e", "b", "d", "a", "c"])
        var popped: [String] = []
        while let id = q.popFirst() { popped.append(id) }
        #expect(popped == ["e", "b", "d", "a", "c"])
        #expect(q.isEmpty)
        #expect(q.popFirst() == nil)
    }

    @Test func queueHonoursPriorityThenSequence() {
        var q = TaskQueue()
        q.push(id: "low1", priority: 0, sequence: 1)
        q.push(id: "high1", priority: 5, sequence: 2)
        q.push(id: "low2", priority: 0, sequence: 3)
        q.push(id: "mid", priority: 2, sequence: 4)
        q.push(id: "high2", priority: 5, sequence: 5)
        #expect(q.first == "high1")
        #expect(q.orderedIds == ["high1", "high2", "mid", "low1", "low2"])
    }

    @Test func requeueWithOldSequenceGoesBackToItsPlace() {
        var q = TaskQueue()
        for (i, id) in ["a", "b", "c", "d"].enumerated() { q.push(id: id, sequence: UInt64(i + 1)) }
        #expect(q.popFirst() == "a")
        #expect(q.popFirst() == "b")
        q.push(id: "e", sequence: 5)
        q.push(id: "b", sequence: 2)
        #expect(q.orderedIds == ["b", "c", "d", "e"])
    }

    @Test func removeById() {
        var q = TaskQueue()
        for (i, id) in ["a", "b", "c", "d", "e"].enumerated() { q.push(id: id, sequence: UInt64(i + 1)) }
        q.remove(id: "c")
        q.remove(id: "a")
        q.remove(id: "nope")
        #expect(q.count == 3)
        #expect(q.orderedIds == ["b", "d", "e"])
    }

    @Test func largeShuffledQueuePopsInOrder() {
        var q = TaskQueue()
        var seqs = Array(1...200).map(UInt64.init)
        var rng = SchedulerTestRNG(seed: 7)
        seqs.shuffle(using: &rng)
        for s in seqs { q.push(id: "t\(s)", sequence: s) }
        #expect(q.orderedIds == (1...200).map { "t\($0)" })
    }

    // MARK: ClusterState helpers

    static let t0: Int64 = 1_000_000

    static func submit(_ state: inout ClusterState, _ ids: [String], at now: Int64 = t0) throws {
        for id in ids { _ = try state.submit(TaskSpec(id: id, command: ["run", id]), at: now) }
    }

    static func register(_ state: inout ClusterState, _ name: String, slots: Int, running: [String] = [],
                         finished: [String] = [], at now: Int64 = t0) throws -> [SchedulerDirective] {
        try state.register(node: name, slots: slots, labels: [:], running: running.map { RunRef(id: $0, attempt: 1) },
                           finished: finished.map { RunRef(id: $0, attempt: 1) }, address: "10.0.0.1:1", nowMs: now, at: now)
    }

    static func assigns(_ directives: [SchedulerDirective]) -> [(node: String, id: String, attempt: Int)] {
        directives.compactMap { if case let .assign(node, a) = $0 { (node, a.id, a.attempt) } else { nil } }
    }

    static func result(_ id: String, _ state: TaskState = .succeeded, attempt: Int = 1, at now: Int64) -> TaskResult {
        TaskResult(id: id, state: state, exitCode: state == .succeeded ? 0 : 1, signal: nil, reason: nil,
                   output: "out \(id)", pid: 100, attempt: attempt, startedAt: now - 5, finishedAt: now)
    }

    // MARK: ClusterState

    @Test func submitAcceptsRejectsInvalidAndDuplicates() throws {
        var state = ClusterState()
        let id = try state.submit(TaskSpec(id: "job-1", command: ["echo"]), at: 42)
        #expect(id == "job-1")
        let info = try state.task("job-1")
        #expect(info.state == .queued)
        #expect(info.submittedAt == 42)
        #expect(info.command == ["echo"])
        #expect(state.queuedCount == 1)
        #expect(throws: SchedulerError.duplicateId("job-1")) { try state.submit(TaskSpec(id: "job-1", command: ["x"]), at: 43) }
        #expect(throws: SchedulerError.self) { try state.submit(TaskSpec(id: "bad id", command: ["x"]), at: 43) }
        do {
            _ = try state.submit(TaskSpec(id: "..", command: ["x"]), at: 43)
            Issue.record("'..' accepted")
        } catch {
            guard case .invalidTask(let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("reserved"))
            #expect(error.code == .invalidTask)
        }
        #expect(throws: SchedulerError.invalidTask("a task needs a command, or a runtime with a prompt")) { try state.submit(TaskSpec(command: []), at: 1) }
        #expect(state.queuedCount == 1)
        let generated = try state.submit(TaskSpec(command: ["ls"]), at: 77)
        #expect(generated.hasPrefix("task-77-"))
        #expect(state.listTasks().map(\.id) == ["job-1", generated])
        #expect(throws: SchedulerError.unknownTask("nope")) { try state.task("nope") }
    }

    @Test func neverMoreAssignsThanSlots() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 2)
        try Self.submit(&state, ["t1", "t2", "t3", "t4", "t5"])
        let first = Self.assigns(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1))
        #expect(first.map(\.node) == ["w1", "w1"])
        #expect(first.map(\.id) == ["t1", "t2"])
        #expect(first.map(\.attempt) == [1, 1])
        #expect(state.queuedCount == 3)
        #expect(state.schedule(nowMs: Self.t0 + 2, at: Self.t0 + 2).isEmpty)
        let t1 = try state.task("t1")
        #expect(t1.state == .running)
        #expect(t1.node == "w1")
        #expect(t1.placedAt == Self.t0 + 1)
        #expect(t1.attempts == 1)
        #expect(state.listNodes(nowMs: Self.t0 + 2).first?.freeSlots == 0)
        #expect(state.listNodes(nowMs: Self.t0 + 2).first?.running == 2)
    }

    @Test func finishingAcksEndsAndFreesASlot() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 2)
        try Self.submit(&state, ["t1", "t2", "t3", "t4", "t5"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        state.taskStarted(node: "w1", run: RunRef(id: "t1", attempt: 1), startedAt: Self.t0 + 3)
        #expect(try state.task("t1").startedAt == Self.t0 + 3)
        let directives = state.taskFinished(node: "w1", result: Self.result("t1", at: Self.t0 + 10), at: Self.t0 + 11)
        #expect(directives == [.ackResult(node: "w1", run: RunRef(id: "t1", attempt: 1)), .taskEnded(id: "t1")])
        let t1 = try state.task("t1")
        #expect(t1.state == .succeeded)
        #expect(t1.exitCode == 0)
        #expect(t1.finishedAt == Self.t0 + 10)
        #expect(t1.output == "out t1")
        #expect(state.listTasks().first?.output == nil)
        let next = Self.assigns(state.schedule(nowMs: Self.t0 + 12, at: Self.t0 + 12))
        #expect(next.map(\.id) == ["t3"])
        #expect(next.map(\.node) == ["w1"])
        #expect(state.listNodes(nowMs: Self.t0 + 12).first?.completed == 1)
    }

    @Test func resultFromTheWrongNodeIsAckedButIgnored() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 1)
        _ = try Self.register(&state, "w2", slots: 1)
        try Self.submit(&state, ["t1"])
        #expect(Self.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.node) == ["w1"])
        let directives = state.taskFinished(node: "w2", result: Self.result("t1", .failed, at: Self.t0 + 1), at: Self.t0 + 1)
        #expect(directives == [.ackResult(node: "w2", run: RunRef(id: "t1", attempt: 1))])
        #expect(try state.task("t1").state == .running)
        #expect(state.taskFinished(node: "w1", result: Self.result("ghost", at: 5), at: 5) == [.ackResult(node: "w1", run: RunRef(id: "ghost", attempt: 1))])
        // A second copy of a counted result is acked and ignored too.
        _ = state.taskFinished(node: "w1", result: Self.result("t1", at: Self.t0 + 2), at: Self.t0 + 2)
        let dup = state.taskFinished(node: "w1", result: Self.result("t1", .failed, at: Self.t0 + 3), at: Self.t0 + 3)
        #expect(dup == [.ackResult(node: "w1", run: RunRef(id: "t1", attempt: 1))])
        #expect(try state.task("t1").state == .succeeded)
    }

    @Test func silentNodeIsLostAndItsTasksRequeuedUntilAttemptsRunOut() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000, maxAttempts: 2))
        _ = try Self.register(&state, "a", slots: 1)
        try Self.submit(&state, ["t1"])
        #expect(Self.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.node) == ["a"])
        // Exactly at the limit is not yet lost.
        #expect(state.tick(nowMs: Self.t0 + 1_000, at: Self.t0 + 1_000).isEmpty)
        let lost = state.tick(nowMs: Self.t0 + 1_001, at: Self.t0 + 1_001)
        #expect(lost == [.nodeLost(name: "a")])
        let t1 = try state.task("t1")
        #expect(t1.state == .queued)
        #expect(t1.node == nil)
        #expect(t1.attempts == 1)
        #expect(t1.reason == "worker a was lost")
        #expect(state.listNodes(nowMs: Self.t0 + 1_001).first?.state == .lost)
        #expect(state.tick(nowMs: Self.t0 + 5_000, at: Self.t0 + 5_000).isEmpty)
        // Second run on another node, lost too: attempts used up.
        _ = try Self.register(&state, "b", slots: 1, at: Self.t0 + 2_000)
        #expect(Self.assigns(state.schedule(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)).map { "\($0.node):\($0.attempt)" } == ["b:2"])
        #expect(state.tick(nowMs: Self.t0 + 3_001, at: Self.t0 + 3_001) == [.nodeLost(name: "b"), .taskEnded(id: "t1")])
        let gone = try state.task("t1")
        #expect(gone.state == .lost)
        #expect(gone.attempts == 2)
        #expect(gone.reason?.contains("gave up after 2 attempts") == true)
        #expect(state.queuedCount == 0)
        #expect(state.schedule(nowMs: Self.t0 + 4_000, at: Self.t0 + 4_000).isEmpty)
    }

    @Test func heartbeatsKeepANodeAlive() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try Self.register(&state, "a", slots: 1)
        state.seen(node: "a", nowMs: Self.t0 + 900)
        #expect(state.tick(nowMs: Self.t0 + 1_500, at: Self.t0 + 1_500).isEmpty)
        #expect(state.tick(nowMs: Self.t0 + 1_901, at: Self.t0 + 1_901) == [.nodeLost(name: "a")])
    }

    @Test func nameAlreadyConnectedIsRefused() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 2)
        #expect(throws: SchedulerError.workerNameInUse("w1")) { try Self.register(&state, "w1", slots: 2) }
        #expect(throws: SchedulerError.self) { try Self.register(&state, "w2", slots: 0) }
        _ = state.disconnected(node: "w1", at: Self.t0)
        #expect(try Self.register(&state, "w1", slots: 2).isEmpty)
    }

    @Test
    func lostNodeCanRegisterAgain() throws {
        // The server's nodeLost handler closes the session after clearing `workers[name]`, so
        // `disconnected(node:)` is never called for it: tick() alone must allow the re-register.
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        _ = try Self.register(&state, "w1", slots: 1)
        #expect(state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000) == [.nodeLost(name: "w1")])
        #expect(state.listNodes(nowMs: Self.t0 + 2_000).first?.connected == false)
        #expect(try Self.register(&state, "w1", slots: 1, at: Self.t0 + 3_000).isEmpty)
        #expect(state.listNodes(nowMs: Self.t0 + 3_000).first?.state == .ready)
    }

    @Test func disconnectedNodeGetsNoPlacements() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "a", slots: 5)
        _ = try Self.register(&state, "b", slots: 1)
        _ = state.disconnected(node: "a", at: Self.t0)
        try Self.submit(&state, ["t1", "t2"])
        #expect(Self.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map { "\($0.node):\($0.id)" } == ["b:t1"])
        #expect(state.queuedCount == 1)
        #expect(state.listNodes(nowMs: Self.t0).map(\.connected) == [false, true])
    }

    @Test func reRegisterWithForeignRunningTaskGetsKill() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 2)
        try Self.submit(&state, ["t1"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.disconnected(node: "w1", at: Self.t0)
        let directives = try Self.register(&state, "w1", slots: 2, running: ["t1", "stray"], at: Self.t0 + 10)
        #expect(directives == [.kill(node: "w1", run: RunRef(id: "stray", attempt: 1), reason: "this run of the task is no longer current")])
        #expect(try state.task("t1").state == .running)
        #expect(try state.task("t1").node == "w1")
    }

    @Test func reRegisterMissingAnAssignedTaskRequeuesIt() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 3)
        try Self.submit(&state, ["t1", "t2", "t3"])
        #expect(Self.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).count == 3)
        _ = state.disconnected(node: "w1", at: Self.t0)
        // t1 still runs, t2's result is held, t3 is unknown to the restarted worker.
        let directives = try Self.register(&state, "w1", slots: 3, running: ["t1"], finished: ["t2"], at: Self.t0 + 10)
        #expect(directives.isEmpty)
        let t3 = try state.task("t3")
        #expect(t3.state == .queued)
        #expect(t3.node == nil)
        #expect(t3.reason == "its worker restarted without it")
        #expect(try state.task("t1").state == .running)
        #expect(try state.task("t2").state == .running)
        #expect(state.queuedCount == 1)
        let again = Self.assigns(state.schedule(nowMs: Self.t0 + 20, at: Self.t0 + 20))
        #expect(again.map { "\($0.node):\($0.id):\($0.attempt)" } == ["w1:t3:2"])
        // The held result still counts.
        #expect(state.taskFinished(node: "w1", result: Self.result("t2", at: Self.t0 + 30), at: Self.t0 + 30)
                == [.ackResult(node: "w1", run: RunRef(id: "t2", attempt: 1)), .taskEnded(id: "t2")])
    }

    @Test func rejectedTaskIsRequeuedWithoutUsingAnAttempt() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "w1", slots: 1)
        try Self.submit(&state, ["t1", "t2"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        state.taskRejected(node: "w1", run: RunRef(id: "t1", attempt: 1), nowMs: Self.t0, at: Self.t0)
        #expect(try state.task("t1").state == .queued)
        #expect(try state.task("t1").attempts == 0)
        // The refusing node is held back for a second: no hot assign/reject loop.
        #expect(state.schedule(nowMs: Self.t0 + 500, at: Self.t0 + 500).isEmpty)
        let next = Self.assigns(state.schedule(nowMs: Self.t0 + 1_001, at: Self.t0 + 1_001))
        #expect(next.map { "\($0.id):\($0.attempt)" } == ["t1:1"])
    }

    @Test func fifoAcrossSeveralNodes() throws {
        var state = ClusterState()
        _ = try Self.register(&state, "b", slots: 1)
        _ = try Self.register(&state, "a", slots: 1)
        let ids = (1...6).map { "t\($0)" }
        try Self.submit(&state, ids)
        #expect(Self.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map { "\($0.node):\($0.id)" } == ["a:t1", "b:t2"])
        #expect(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1).isEmpty)
        // Whichever node frees a slot, the oldest queued task goes next.
        _ = state.taskFinished(node: "b", result: Self.result("t2", at: Self.t0 + 1), at: Self.t0 + 1)
        #expect(Self.assigns(state.schedule(nowMs: Self.t0 + 2, at: Self.t0 + 2)).map { "\($0.node):\($0.id)" } == ["b:t3"])
        _ = state.taskFinished(node: "a", result: Self.result("t1", at: Self.t0 + 3), at: Self.t0 + 3)
        #expect(Self.assigns(state.schedule(nowMs: Self.t0 + 4, at: Self.t0 + 4)).map { "\($0.node):\($0.id)" } == ["a:t4"])
        #expect(state.listTasks().filter { $0.state == .queued }.map(\.id) == ["t5", "t6"])
    }

    @Test func spreadAcrossThreeNodesIsDeterministic() throws {
        for _ in 0..<5 {
            var state = ClusterState()
            _ = try Self.register(&state, "c", slots: 2)
            _ = try Self.register(&state, "a", slots: 2)
            _ = try Self.register(&state, "b", slots: 3)
            try Self.submit(&state, (1...8).map { "t\($0)" })
            let placed = Self.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map { "\($0.node):\($0.id)" }
            // b starts with 3 free; then ties go to the smaller name.
            #expect(placed == ["b:t1", "a:t2", "b:t3", "c:t4", "a:t5", "b:t6", "c:t7"])
            #expect(state.queuedCount == 1)
        }
    }
}

/// A small seeded generator so shuffles are reproducible.
private struct SchedulerTestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
