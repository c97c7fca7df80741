import Testing
@testable import SwarmProtocol
@_spi(PlacementInput) @testable import SwarmScheduler

/// Placement inside `ClusterState`: policies, constraints, runtimes, priorities, model limits
/// and wait reasons, with tasks flowing through `schedule` and `taskFinished`. All pure.
@Suite struct ClusterPlacementTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    static func submit(_ state: inout ClusterState, _ id: String, _ request: PlacementRequest = PlacementRequest(),
                       at now: Int64 = t0) throws {
        _ = try state.submit(TaskSpec(id: id, command: ["run", id]), request: request, at: now)
    }

    static func node(_ state: inout ClusterState, _ name: String, slots: Int, labels: [String: String] = [:],
                     runtimes: [String: Bool] = [:], commands: Bool = true, at now: Int64 = t0) throws {
        _ = try state.register(node: name, slots: slots, labels: labels, running: [], finished: [], address: nil, nowMs: now, at: now)
        if !runtimes.isEmpty || !commands { state.setRuntimes(node: name, runtimes: runtimes, allowsCommands: commands) }
    }

    static func placed(_ directives: [SchedulerDirective]) -> [String] {
        S.assigns(directives).map { "\($0.node):\($0.id)" }
    }

    static func finish(_ state: inout ClusterState, _ id: String, at now: Int64 = t0 + 10) throws {
        let node = try #require(try state.task(id).node)
        _ = state.taskFinished(node: node, result: S.result(id, at: now), at: now)
    }

    // MARK: Policies

    @Test func binpackFillsOneWorkerBeforeTheNext() throws {
        var state = ClusterState(settings: SchedulerSettings(placementPolicy: .binpack))
        try Self.node(&state, "b", slots: 2)
        try Self.node(&state, "a", slots: 3)
        for i in 1...6 { try Self.submit(&state, "t\(i)") }
        // b has fewer free slots: it fills first, then a.
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["b:t1", "b:t2", "a:t3", "a:t4", "a:t5"])
        try Self.finish(&state, "t4")
        try Self.finish(&state, "t1")
        // a has 1 free, b has 1 free: tie to a.
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 20, at: Self.t0 + 20)) == ["a:t6"])
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func spreadIsTheDefault() throws {
        var state = ClusterState()
        try Self.node(&state, "a", slots: 3)
        try Self.node(&state, "b", slots: 3)
        for i in 1...4 { try Self.submit(&state, "t\(i)") }
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["a:t1", "b:t2", "a:t3", "b:t4"])
    }

    // MARK: Constraints and runtimes

    @Test func constrainedTasksGoOnlyToMatchingWorkers() throws {
        var state = ClusterState()
        try Self.node(&state, "cpu", slots: 8)
        try Self.node(&state, "gpu", slots: 1, labels: ["gpu": "h100"])
        try Self.submit(&state, "g1", PlacementRequest(constraints: ["gpu": "h100"]))
        try Self.submit(&state, "g2", PlacementRequest(constraints: ["gpu": "h100"]))
        try Self.submit(&state, "p1")
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["gpu:g1", "cpu:p1"])
        #expect(state.waitReason(for: "g2") == WaitReason(reason: "all slots of matching workers are busy", unplaceable: false))
        #expect(state.waitReason(for: "g1") == nil, "only queued tasks wait")
        try Self.finish(&state, "g1")
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 20, at: Self.t0 + 20)) == ["gpu:g2"])
    }

    @Test func runtimeHealthDecidesAndCanChange() throws {
        var state = ClusterState()
        try Self.node(&state, "a", slots: 4, runtimes: ["claude": false], commands: false)
        try Self.node(&state, "b", slots: 4)
        try Self.submit(&state, "c1", PlacementRequest(runtime: "claude"))
        try Self.submit(&state, "cmd")
        // The plain command goes to b only (a refuses commands); claude is unhealthy on a.
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["b:cmd"])
        #expect(state.waitReason(for: "c1")
                == WaitReason(reason: "runtime claude is unhealthy on every ready worker that has it", unplaceable: false))
        state.setRuntimes(node: "a", runtimes: ["claude": true], allowsCommands: false)
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1)) == ["a:c1"])
        #expect(state.placementInvariantViolations().isEmpty)
    }

    // MARK: Priorities

    @Test func higherPriorityFirstFIFOWithinAcrossClasses() throws {
        var state = ClusterState()
        try Self.node(&state, "a", slots: 1, labels: ["zone": "eu"], runtimes: ["claude": true])
        let eu = ["zone": "eu"]
        try Self.submit(&state, "low1")
        try Self.submit(&state, "high1", PlacementRequest(runtime: "claude", priority: 5))
        try Self.submit(&state, "mid1", PlacementRequest(constraints: eu, priority: 2))
        try Self.submit(&state, "high2", PlacementRequest(priority: 5))
        try Self.submit(&state, "low2", PlacementRequest(model: "opus"))
        try Self.submit(&state, "mid2", PlacementRequest(priority: 2))
        #expect(state.queue.orderedIds == ["high1", "high2", "mid1", "mid2", "low1", "low2"])
        var order: [String] = []
        for step in 0..<6 {
            let now = Self.t0 + Int64(step * 10)
            let ids = S.assigns(state.schedule(nowMs: now, at: now)).map(\.id)
            #expect(ids.count == 1)
            order += ids
            try Self.finish(&state, ids[0], at: now + 5)
        }
        #expect(order == ["high1", "high2", "mid1", "mid2", "low1", "low2"])
    }

    @Test func aRequeuedTaskKeepsItsPlace() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        try Self.node(&state, "a", slots: 1)
        for id in ["t1", "t2", "t3"] { try Self.submit(&state, id) }
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["a:t1"])
        try Self.submit(&state, "t4", PlacementRequest(model: "opus"))
        #expect(state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000) == [.nodeLost(name: "a")])
        #expect(state.queue.orderedIds == ["t1", "t2", "t3", "t4"])
        try Self.node(&state, "b", slots: 1, at: Self.t0 + 2_000)
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 2_001, at: Self.t0 + 2_001)) == ["b:t1"])
    }

    // MARK: Model limits

    @Test func modelLimitBlocksOnlyThatModelAndFreesOnFinish() throws {
        var state = ClusterState(settings: SchedulerSettings(modelLimits: ["opus": 2]))
        try Self.node(&state, "a", slots: 10)
        let opus = PlacementRequest(model: "opus")
        for i in 1...4 { try Self.submit(&state, "o\(i)", opus) }
        try Self.submit(&state, "s1", PlacementRequest(model: "sonnet"))
        try Self.submit(&state, "p1")
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["a:o1", "a:o2", "a:s1", "a:p1"])
        #expect(state.waitReason(for: "o3") == WaitReason(reason: "model opus at its limit of 2 running", unplaceable: false))
        #expect(state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1).isEmpty)
        try Self.submit(&state, "o5", PlacementRequest(model: "opus", priority: 9))
        #expect(state.schedule(nowMs: Self.t0 + 2, at: Self.t0 + 2).isEmpty)
        try Self.finish(&state, "s1")
        #expect(state.schedule(nowMs: Self.t0 + 11, at: Self.t0 + 11).isEmpty, "a sonnet finishing frees no opus place")
        try Self.finish(&state, "o1")
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 12, at: Self.t0 + 12)) == ["a:o5"])
        #expect(state.modelRunning == ["opus": 2])
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func lostRunsGiveTheirModelPlacesBack() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000, modelLimits: ["opus": 1]))
        try Self.node(&state, "a", slots: 2)
        try Self.submit(&state, "o1", PlacementRequest(model: "opus"))
        try Self.submit(&state, "o2", PlacementRequest(model: "opus"))
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["a:o1"])
        _ = state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)
        #expect(state.modelRunning.isEmpty)
        try Self.node(&state, "b", slots: 2, at: Self.t0 + 2_000)
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 2_001, at: Self.t0 + 2_001)) == ["b:o1"])
        #expect(state.placementInvariantViolations().isEmpty)
    }

    // MARK: Unplaceable

    @Test func unplaceableTasksAreExplainedAndDoNotBlockTheQueue() throws {
        var state = ClusterState(settings: SchedulerSettings(modelLimits: ["banned": 0]))
        try Self.node(&state, "a", slots: 4, runtimes: ["claude": true], commands: false)
        try Self.submit(&state, "gpu", PlacementRequest(runtime: "claude", constraints: ["gpu": "h100"], priority: 9))
        try Self.submit(&state, "gemini", PlacementRequest(runtime: "gemini", priority: 9))
        try Self.submit(&state, "cmd", PlacementRequest(priority: 9))
        try Self.submit(&state, "banned", PlacementRequest(runtime: "claude", model: "banned", priority: 9))
        try Self.submit(&state, "ok", PlacementRequest(runtime: "claude"))
        #expect(Self.placed(state.schedule(nowMs: Self.t0, at: Self.t0)) == ["a:ok"])
        let reasons = state.waitReasons(for: ["gpu", "gemini", "cmd", "banned", "ok", "nope"])
        #expect(reasons == [
            "gpu": WaitReason(reason: "no worker has label gpu=h100", unplaceable: true),
            "gemini": WaitReason(reason: "no worker has runtime gemini", unplaceable: true),
            "cmd": WaitReason(reason: "no worker accepts plain commands", unplaceable: true),
            "banned": WaitReason(reason: "model banned has a limit of 0 running tasks", unplaceable: true),
        ])
        #expect(state.queuedCount == 4)
        // A matching worker joins: the task is placed after all.
        try Self.node(&state, "g", slots: 1, labels: ["gpu": "h100"], runtimes: ["claude": true], at: Self.t0 + 5)
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 5, at: Self.t0 + 5)) == ["g:gpu"])
        #expect(state.waitReason(for: "cmd")?.unplaceable == false, "g accepts commands; it is just full")
    }

    @Test func noWorkersYetIsWaitingNotUnplaceable() throws {
        var state = ClusterState()
        try Self.submit(&state, "t", PlacementRequest(runtime: "claude"))
        #expect(state.waitReason(for: "t") == WaitReason(reason: "no workers have registered", unplaceable: false))
        try Self.node(&state, "a", slots: 1)
        #expect(state.waitReason(for: "t")?.unplaceable == true)
        #expect(state.waitReason(for: "nope") == nil)
    }

    @Test func aHeldBackTaskSaysWhy() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000))
        try Self.node(&state, "a", slots: 4)
        try Self.submit(&state, "t")
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.tick(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)
        _ = try state.register(node: "a", slots: 4, labels: [:], running: [RunRef(id: "t", attempt: 1)], finished: [],
                               address: nil, nowMs: Self.t0 + 3_000, at: Self.t0 + 3_000)
        try Self.submit(&state, "u", at: Self.t0 + 3_000)
        #expect(Self.placed(state.schedule(nowMs: Self.t0 + 3_001, at: Self.t0 + 3_001)) == ["a:u"])
        #expect(state.waitReason(for: "t")
                == WaitReason(reason: "an earlier run of it is still ending on worker a", unplaceable: false))
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func emptiedClassesAreReused() throws {
        var state = ClusterState()
        try Self.node(&state, "a", slots: 1)
        for i in 0..<50 {
            let now = Self.t0 + Int64(i * 10)
            try Self.submit(&state, "t\(i)", PlacementRequest(model: "m\(i)"), at: now)
            _ = state.schedule(nowMs: now, at: now)
            try Self.finish(&state, "t\(i)", at: now + 1)
        }
        #expect(state.queue.classes.count <= 2)
        #expect(state.placementInvariantViolations().isEmpty)
    }
}
