import SwarmProtocol

/// How placement ranks the nodes a task fits on. Raw values are a contract (`cluster.json`).
public enum PlacementPolicy: String, Codable, Sendable, CaseIterable {
    /// Most free slots first: load spreads evenly over the workers. The default.
    case spread
    /// Fewest free slots that still fit: workers fill up one by one, the others stay whole.
    case binpack

    /// Whether a node with `aFree` free slots named `aName` ranks before one with `bFree` named
    /// `bName`. Ties go to the smaller name, so the same snapshot always gives the same answer.
    /// (`Name` is a `String`, or a rank that orders like the names.)
    @inline(__always)
    func prefers<Name: Comparable>(_ aFree: Int, _ aName: Name, over bFree: Int, _ bName: Name) -> Bool {
        if aFree != bFree { return self == .spread ? aFree > bFree : aFree < bFree }
        return aName < bName
    }
}

/// What placement needs to know of one task. The scheduler builds it from the task's spec.
public struct PlacementRequest: Hashable, Sendable {
    /// The agent runtime the task runs under (e.g. `claude`), or nil for a plain command.
    public var runtime: String?
    /// The model the task uses, for per-model concurrency limits; nil counts against none.
    public var model: String?
    /// Labels the node must have, each with exactly this value.
    public var constraints: [String: String]
    /// Higher goes first; FIFO within a priority.
    public var priority: Int

    public init(runtime: String? = nil, model: String? = nil, constraints: [String: String] = [:], priority: Int = 0) {
        self.runtime = runtime
        self.model = model
        self.constraints = constraints
        self.priority = priority
    }

    /// The node has every label the task asks for.
    func matches(labels: [String: String]) -> Bool {
        constraints.allSatisfy { labels[$0.key] == $0.value }
    }

    /// The node has the runtime (healthy or not), or accepts plain commands if there is none.
    func isRunnable(runtimes: [String: Bool], allowsCommands: Bool) -> Bool {
        guard let runtime else { return allowsCommands }
        return runtimes[runtime] != nil
    }

    /// The runtime (if any) is healthy on the node.
    func isHealthy(runtimes: [String: Bool]) -> Bool {
        guard let runtime else { return true }
        return runtimes[runtime] == true
    }

    /// All the static filters at once: labels, runtime present and healthy, commands allowed.
    func fits(labels: [String: String], runtimes: [String: Bool], allowsCommands: Bool) -> Bool {
        matches(labels: labels) && isRunnable(runtimes: runtimes, allowsCommands: allowsCommands)
            && isHealthy(runtimes: runtimes)
    }

    /// `a=1, b=2`, sorted by key.
    var constraintList: String {
        constraints.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
    }
}

/// What placement needs to know of one worker.
public struct NodeSnapshot: Equatable, Sendable {
    public var name: String
    public var slots: Int
    /// Slots it can take a task in now (0 while it is held back).
    public var freeSlots: Int
    public var state: NodeState
    public var connected: Bool
    public var labels: [String: String]
    /// Runtimes it has, by name, and whether each is healthy.
    public var runtimes: [String: Bool]
    /// Whether it runs plain commands (tasks without a runtime).
    public var allowsCommands: Bool

    public init(name: String, slots: Int, freeSlots: Int, state: NodeState, connected: Bool,
                labels: [String: String] = [:], runtimes: [String: Bool] = [:], allowsCommands: Bool = true) {
        self.name = name
        self.slots = slots
        self.freeSlots = freeSlots
        self.state = state
        self.connected = connected
        self.labels = labels
        self.runtimes = runtimes
        self.allowsCommands = allowsCommands
    }
}

/// Where a task goes, or why it waits.
public enum PlacementDecision: Equatable, Sendable {
    case place(node: String)
    /// No node can take it now; one may later (slots free up, workers join or recover).
    case wait(reason: String)
    /// No registered worker that is not lost could ever run it, however long it waits (or
    /// its model may never run). It stays queued: a matching worker may still join.
    case unplaceable(reason: String)
}

/// Placement as a pure function of (cluster snapshot, task): feasibility filters first, then
/// ranking by `PlacementPolicy`. This is the reference the scheduler's indexed placement
/// agrees with, and what explains why a task waits.
public enum Placement {
    /// Decides where `request` goes on `nodes`. Filters, in order: the model's limit
    /// (`modelLimits[model]` against `modelRunning[model]`; a limit of 0 is unplaceable),
    /// labels, runtime (or allowing commands), readiness (`ready` and connected), runtime
    /// health, a free slot. A task is unplaceable when there are registered non-lost nodes
    /// but none of them has its labels and runtime (health aside).
    public static func place(_ request: PlacementRequest, on nodes: [NodeSnapshot],
                             policy: PlacementPolicy = .spread, modelLimits: [String: Int] = [:],
                             modelRunning: [String: Int] = [:]) -> PlacementDecision {
        if let model = request.model, let limit = modelLimits[model], limit <= 0 {
            return .unplaceable(reason: "model \(model) has a limit of 0 running tasks")
        }
        if nodes.isEmpty { return .wait(reason: "no workers have registered") }
        if let reason = neverFits(request, on: nodes.filter { $0.state != .lost }) {
            return .unplaceable(reason: reason)
        }
        if let model = request.model, let limit = modelLimits[model], modelRunning[model, default: 0] >= limit {
            return .wait(reason: "model \(model) at its limit of \(limit) running")
        }
        var best: NodeSnapshot?
        var anyEligible = false, anyHealthy = false
        for node in nodes where node.state == .ready && node.connected
            && request.matches(labels: node.labels)
            && request.isRunnable(runtimes: node.runtimes, allowsCommands: node.allowsCommands) {
            anyEligible = true
            guard request.isHealthy(runtimes: node.runtimes) else { continue }
            anyHealthy = true
            guard node.freeSlots > 0 else { continue }
            if let current = best, !policy.prefers(node.freeSlots, node.name, over: current.freeSlots, current.name) {
                continue
            }
            best = node
        }
        if let best { return .place(node: best.name) }
        if !anyEligible { return .wait(reason: notReadyReason(request, on: nodes)) }
        if !anyHealthy, let runtime = request.runtime {
            return .wait(reason: "runtime \(runtime) is unhealthy on every ready worker that has it")
        }
        let unconstrained = request.constraints.isEmpty && request.runtime == nil
        return .wait(reason: unconstrained ? "all slots are busy" : "all slots of matching workers are busy")
    }

    /// Why no ready worker can take `request`, when some non-lost worker could (`neverFits`
    /// said so): names the filter that excludes every ready worker, in placement's order
    /// (labels, then runtime or plain commands), so the message points at what to change.
    static func notReadyReason(_ request: PlacementRequest, on nodes: [NodeSnapshot]) -> String {
        let ready = nodes.filter { $0.state == .ready && $0.connected }
        let absent = "(the workers that do are draining or disconnected)"
        if ready.isEmpty { return "no worker is ready (all lost, draining or disconnected)" }
        let matching = ready.filter { request.matches(labels: $0.labels) }
        if matching.isEmpty {
            let labels = request.constraints.count == 1 ? "label \(request.constraintList)" : "all of the labels \(request.constraintList)"
            return "no ready worker has \(labels) \(absent)"
        }
        let among = request.constraints.isEmpty ? "" : " with labels \(request.constraintList)"
        if let runtime = request.runtime { return "no ready worker\(among) has runtime \(runtime) \(absent)" }
        return "no ready worker\(among) accepts plain commands \(absent)"
    }

    /// Why no node of `nodes` could ever run `request`, or nil if one could (or there are none
    /// to judge by). Health is not considered: it may come back.
    static func neverFits(_ request: PlacementRequest, on nodes: [NodeSnapshot]) -> String? {
        guard !nodes.isEmpty else { return nil }
        let matching = nodes.filter { request.matches(labels: $0.labels) }
        if matching.isEmpty {
            let sorted = request.constraints.sorted { $0.key < $1.key }
            if let single = sorted.first(where: { c in !nodes.contains { $0.labels[c.key] == c.value } }) {
                return "no worker has label \(single.key)=\(single.value)"
            }
            return "no worker has all of the labels \(request.constraintList)"
        }
        if matching.contains(where: { request.isRunnable(runtimes: $0.runtimes, allowsCommands: $0.allowsCommands) }) {
            return nil
        }
        let among = request.constraints.isEmpty ? "" : " with labels \(request.constraintList)"
        if let runtime = request.runtime { return "no worker\(among) has runtime \(runtime)" }
        return "no worker\(among) accepts plain commands"
    }
}

/// Why a queued task is still queued.
public struct WaitReason: Equatable, Sendable {
    /// Cut to `maxCharacters` (escaped like any peer text): it quotes the task's constraints,
    /// which may be megabytes, and rides along in `taskInfo` and in listing pages that are
    /// measured before the reasons are added.
    public var reason: String
    /// No registered worker could ever run it (see `PlacementDecision.unplaceable`).
    public var unplaceable: Bool

    /// The most characters of a reason kept (then a marker says how much was cut).
    public static let maxCharacters = 500

    public init(reason: String, unplaceable: Bool) {
        self.reason = PeerText.safe(reason, limit: Self.maxCharacters)
        self.unplaceable = unplaceable
    }
}
