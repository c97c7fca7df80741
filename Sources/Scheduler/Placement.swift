import SwarmProtocol

/// What placement needs to know of one worker.
public struct NodeSnapshot: Equatable, Sendable {
    public var name: String
    public var slots: Int
    public var freeSlots: Int
    public var state: NodeState
    public var connected: Bool

    public init(name: String, slots: Int, freeSlots: Int, state: NodeState, connected: Bool) {
        self.name = name
        self.slots = slots
        self.freeSlots = freeSlots
        self.state = state
        self.connected = connected
    }
}

/// Where a task goes, or why it waits.
public enum PlacementDecision: Equatable, Sendable {
    case place(node: String)
    /// No node can take it now; one may later (slots free up, workers join).
    case wait(reason: String)
}

/// Placement as a pure function of (cluster snapshot, task): feasibility filters first, then
/// ranking. Spread: the node with the most free slots wins; ties go to the smaller name, so the
/// same snapshot always gives the same answer.
public enum Placement {
    public static func place(_ task: TaskSpec, on nodes: [NodeSnapshot]) -> PlacementDecision {
        var best: NodeSnapshot?
        var anyReady = false
        for node in nodes where node.state == .ready && node.connected {
            anyReady = true
            guard node.freeSlots > 0 else { continue }
            if let current = best {
                if node.freeSlots > current.freeSlots
                    || (node.freeSlots == current.freeSlots && node.name < current.name) {
                    best = node
                }
            } else {
                best = node
            }
        }
        if let best { return .place(node: best.name) }
        if nodes.isEmpty { return .wait(reason: "no workers have registered") }
        if !anyReady { return .wait(reason: "no worker is ready (all lost, draining or disconnected)") }
        return .wait(reason: "all slots are busy")
    }
}
