import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// `Placement.place` on snapshots: policies, ties, constraints, runtimes and their health,
/// plain commands, model limits and unplaceable reasons. All pure.
@Suite struct PlacementTests {
    static func n(_ name: String, free: Int, slots: Int = 8, state: NodeState = .ready, connected: Bool = true,
                  labels: [String: String] = [:], runtimes: [String: Bool] = [:], commands: Bool = true) -> NodeSnapshot {
        NodeSnapshot(name: name, slots: slots, freeSlots: free, state: state, connected: connected,
                     labels: labels, runtimes: runtimes, allowsCommands: commands)
    }

    static let plain = PlacementRequest()

    // MARK: Policies

    @Test func spreadTakesTheMostFreeBinpackTheFewestThatFit() {
        let nodes = [Self.n("a", free: 1), Self.n("b", free: 5), Self.n("c", free: 0), Self.n("d", free: 3)]
        #expect(Placement.place(Self.plain, on: nodes, policy: .spread) == .place(node: "b"))
        #expect(Placement.place(Self.plain, on: nodes, policy: .binpack) == .place(node: "a"))
        #expect(Placement.place(Self.plain, on: nodes) == .place(node: "b"), "spread is the default")
    }

    @Test func tiesGoToTheSmallerNameUnderBothPolicies() {
        let nodes = [Self.n("m", free: 2), Self.n("k", free: 2), Self.n("z", free: 2), Self.n("q", free: 4)]
        #expect(Placement.place(Self.plain, on: nodes, policy: .binpack) == .place(node: "k"))
        #expect(Placement.place(Self.plain, on: nodes + [Self.n("c", free: 4)], policy: .spread) == .place(node: "c"))
    }

    @Test func policyRawValuesAreAContract() {
        #expect(PlacementPolicy.allCases.map(\.rawValue) == ["spread", "binpack"])
        #expect(PlacementPolicy(rawValue: "binpack") == .binpack)
    }

    // MARK: Constraints

    @Test func constraintsPickOnlyNodesWithEveryLabel() {
        let nodes = [Self.n("a", free: 9, labels: ["gpu": "a100"]),
                     Self.n("b", free: 2, labels: ["gpu": "h100", "zone": "eu"]),
                     Self.n("c", free: 1, labels: ["gpu": "h100", "zone": "us"])]
        #expect(Placement.place(PlacementRequest(constraints: ["gpu": "h100"]), on: nodes) == .place(node: "b"))
        #expect(Placement.place(PlacementRequest(constraints: ["gpu": "h100", "zone": "us"]), on: nodes) == .place(node: "c"))
        #expect(Placement.place(PlacementRequest(constraints: ["gpu": "tpu"]), on: nodes)
                == .unplaceable(reason: "no worker has label gpu=tpu"))
        #expect(Placement.place(PlacementRequest(constraints: ["gpu": "a100", "zone": "eu"]), on: nodes)
                == .unplaceable(reason: "no worker has all of the labels gpu=a100, zone=eu"))
        #expect(Placement.place(PlacementRequest(constraints: ["arch": "arm"]), on: nodes)
                == .unplaceable(reason: "no worker has label arch=arm"))
    }

    @Test func matchingNodesFullWaitsRatherThanGoingElsewhere() {
        let nodes = [Self.n("a", free: 9), Self.n("b", free: 0, labels: ["gpu": "h100"])]
        #expect(Placement.place(PlacementRequest(constraints: ["gpu": "h100"]), on: nodes)
                == .wait(reason: "all slots of matching workers are busy"))
    }

    // MARK: Runtimes

    @Test func runtimeMustBePresentAndHealthy() {
        let claude = PlacementRequest(runtime: "claude")
        let nodes = [Self.n("a", free: 9, runtimes: ["codex": true]),
                     Self.n("b", free: 5, runtimes: ["claude": false]),
                     Self.n("c", free: 1, runtimes: ["claude": true, "codex": true])]
        #expect(Placement.place(claude, on: nodes) == .place(node: "c"))
        #expect(Placement.place(claude, on: Array(nodes.prefix(2)))
                == .wait(reason: "runtime claude is unhealthy on every ready worker that has it"))
        #expect(Placement.place(claude, on: [nodes[0]]) == .unplaceable(reason: "no worker has runtime claude"))
        #expect(Placement.place(PlacementRequest(runtime: "gemini"), on: nodes)
                == .unplaceable(reason: "no worker has runtime gemini"))
        #expect(Placement.place(PlacementRequest(runtime: "claude", constraints: ["zone": "eu"]),
                                on: nodes + [Self.n("d", free: 1, labels: ["zone": "eu"])])
                == .unplaceable(reason: "no worker with labels zone=eu has runtime claude"))
    }

    @Test func plainCommandsNeedANodeThatAllowsThem() {
        let nodes = [Self.n("a", free: 9, runtimes: ["claude": true], commands: false), Self.n("b", free: 1)]
        #expect(Placement.place(Self.plain, on: nodes) == .place(node: "b"))
        #expect(Placement.place(Self.plain, on: [nodes[0]]) == .unplaceable(reason: "no worker accepts plain commands"))
        // A runtime task does not need commands allowed.
        #expect(Placement.place(PlacementRequest(runtime: "claude"), on: nodes) == .place(node: "a"))
    }

    // MARK: Model limits

    @Test func modelLimitsWaitAtTheLimitAndZeroIsUnplaceable() {
        let nodes = [Self.n("a", free: 4)]
        let opus = PlacementRequest(model: "opus")
        #expect(Placement.place(opus, on: nodes, modelLimits: ["opus": 4], modelRunning: ["opus": 3]) == .place(node: "a"))
        #expect(Placement.place(opus, on: nodes, modelLimits: ["opus": 4], modelRunning: ["opus": 4])
                == .wait(reason: "model opus at its limit of 4 running"))
        #expect(Placement.place(opus, on: nodes, modelLimits: ["opus": 0])
                == .unplaceable(reason: "model opus has a limit of 0 running tasks"))
        #expect(Placement.place(opus, on: nodes, modelLimits: ["sonnet": 0], modelRunning: ["opus": 99]) == .place(node: "a"))
        #expect(Placement.place(Self.plain, on: nodes, modelLimits: ["opus": 0]) == .place(node: "a"))
    }

    // MARK: Which nodes count for "ever"

    @Test func unplaceableIsJudgedOnRegisteredNodesThatAreNotLost() {
        let gpu = PlacementRequest(constraints: ["gpu": "h100"])
        // Only a lost node had it: unplaceable.
        #expect(Placement.place(gpu, on: [Self.n("a", free: 1), Self.n("b", free: 4, state: .lost, labels: ["gpu": "h100"])])
                == .unplaceable(reason: "no worker has label gpu=h100"))
        // A disconnected or draining one has it: it may come back, so the task waits.
        #expect(Placement.place(gpu, on: [Self.n("a", free: 1), Self.n("b", free: 4, connected: false, labels: ["gpu": "h100"])])
                == .wait(reason: "no ready worker has label gpu=h100 (the workers that do are draining or disconnected)"))
        #expect(Placement.place(gpu, on: [Self.n("a", free: 1), Self.n("b", free: 4, state: .draining, labels: ["gpu": "h100"])])
                == .wait(reason: "no ready worker has label gpu=h100 (the workers that do are draining or disconnected)"))
        // No workers, or only lost ones: nothing to judge by, so it waits.
        #expect(Placement.place(gpu, on: []) == .wait(reason: "no workers have registered"))
        #expect(Placement.place(gpu, on: [Self.n("b", free: 4, state: .lost)])
                == .wait(reason: "no worker is ready (all lost, draining or disconnected)"))
    }

    /// Issue 10 item 21: each wait reason names the filter that excludes the ready workers.
    @Test func waitReasonNamesWhatExcludesTheReadyWorkers() {
        // The only ready worker refuses plain commands; one that accepts them is draining.
        let plainOnly = [Self.n("agents", free: 4, commands: false), Self.n("builder", free: 4, state: .draining)]
        #expect(Placement.place(Self.plain, on: plainOnly)
                == .wait(reason: "no ready worker accepts plain commands (the workers that do are draining or disconnected)"))
        // Same with a runtime: the ready worker lacks it, a disconnected one has it.
        let claude = PlacementRequest(runtime: "claude")
        let runtimes = [Self.n("a", free: 4), Self.n("b", free: 4, connected: false, runtimes: ["claude": true])]
        #expect(Placement.place(claude, on: runtimes)
                == .wait(reason: "no ready worker has runtime claude (the workers that do are draining or disconnected)"))
        // Labels match on the ready worker, but it refuses plain commands.
        let gpu = PlacementRequest(constraints: ["gpu": "h100"])
        let labelled = [Self.n("a", free: 4, labels: ["gpu": "h100"], commands: false),
                        Self.n("b", free: 4, state: .draining, labels: ["gpu": "h100"])]
        #expect(Placement.place(gpu, on: labelled)
                == .wait(reason: "no ready worker with labels gpu=h100 accepts plain commands (the workers that do are draining or disconnected)"))
        // Nothing ready at all: that is the reason.
        #expect(Placement.place(Self.plain, on: [Self.n("a", free: 4, connected: false)])
                == .wait(reason: "no worker is ready (all lost, draining or disconnected)"))
    }

    @Test func unplaceableComesBeforeTheModelLimit() {
        let request = PlacementRequest(runtime: "gemini", model: "opus")
        #expect(Placement.place(request, on: [Self.n("a", free: 1)], modelLimits: ["opus": 1], modelRunning: ["opus": 1])
                == .unplaceable(reason: "no worker has runtime gemini"))
    }
}
