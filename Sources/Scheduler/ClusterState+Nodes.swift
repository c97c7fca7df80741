import SwarmProtocol

/// The nodes as users see and steer them: listing, drain and undrain, cancel kills, stats.
extension ClusterState {
    // MARK: Nodes

    /// Every node; `nowMs` (monotonic) gives their `lastSeenMsAgo`.
    public func listNodes(nowMs: Int64) -> [NodeInfo] {
        nodes.values.sorted { $0.name < $1.name }.map { node in
            NodeInfo(name: node.name, slots: node.slots, freeSlots: node.freeSlots,
                     running: node.running, state: node.state, labels: node.labels,
                     address: node.address, connected: node.connected,
                     lastSeenMsAgo: max(0, nowMs - node.lastSeenMs), completed: node.completed,
                     runtimes: node.runtimeStatus, allowsCommands: node.allowsCommands,
                     prefetched: node.prefetched.count)
        }
    }

    /// Runs of cancelled tasks still going on `node` (told again when it reconnects).
    public func cancelKills(node name: String) -> [SchedulerDirective] {
        guard let node = nodes[name] else { return [] }
        return node.assigned.sorted { $0.key < $1.key }.compactMap { id, attempt in
            tasks[id]?.cancelRequested == true
                ? .kill(node: name, run: RunRef(id: id, attempt: attempt), reason: "cancelled by user") : nil
        }
    }

    /// `swarm drain`: nothing new is placed on the node; what runs there finishes.
    public mutating func drain(node name: String) throws(SchedulerError) {
        guard var node = nodes[name] else { throw .unknownNode(name) }
        node.drained = true
        if node.state != .lost { node.state = .draining }
        nodes[name] = node
        reindex(name)
        if drainedNames.insert(name).inserted { drainsChanged = true }
    }

    /// `swarm undrain`: undoes `drain`. A connected worker that is not stopping is `ready`
    /// again (the caller runs a placement round); a lost or disconnected one comes back
    /// `ready` when it registers. Undraining a worker that is not drained changes nothing.
    /// A name the scheduler only knows as drained (saved before a restart, not registered
    /// since) is accepted too, so a drain can be undone before its worker comes back.
    public mutating func undrain(node name: String) throws(SchedulerError) {
        guard nodes[name] != nil || drainedNames.contains(name) else { throw .unknownNode(name) }
        if drainedNames.remove(name) != nil { drainsChanged = true }
        guard var node = nodes[name], node.drained else { return }
        node.drained = false
        if node.state == .draining && node.connected && !node.leaving { node.state = .ready }
        nodes[name] = node
        reindex(name)
    }

    /// The drained names a restart read from the store (before any worker registers).
    public mutating func restoreDrained(_ names: [String]) {
        drainedNames = Set(names)
        for name in names where nodes[name] != nil {
            nodes[name]?.drained = true
            if nodes[name]?.state != .lost { nodes[name]?.state = .draining }
            reindex(name)
        }
    }

    /// `swarm stats`: per worker and cluster-wide, by model.
    public func statistics() -> (cluster: StatsBlock, workers: [String: StatsBlock]) {
        var running: [String: [String?]] = [:]
        for node in nodes.values {
            running[node.name] = node.assigned.keys.filter { !node.prefetched.contains($0) }.map { tasks[$0]?.info.metrics.model }
        }
        return stats.report(running: running, health: nodes.mapValues(\.runtimeStatus))
    }
}
