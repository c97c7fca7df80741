import Testing
@testable import SwarmProtocol
@_spi(PlacementInput) @testable import SwarmScheduler

/// A long random run of a small cluster (workers joining, leaving, going silent, coming back
/// with old runs, changing runtime health; tasks finishing, lost, refused): every `schedule`
/// round must place exactly what the pure `Placement.place` gives when applied task by task in
/// queue order, no model ever exceeds its limit, and the placement bookkeeping stays exact.
@Suite struct PlacementSimulationTests {
    static let limits = ["opus": 3, "sonnet": 5, "banned": 0]

    struct Sim {
        var state: ClusterState
        var rng: SimRNG
        var now: Int64 = 1_000_000
        var nextTask = 0
        var model: [String: String] = [:]
        /// Runs each worker process really has (assigned and not yet reported ended).
        var onNode: [String: Set<RunRef>] = [:]
        /// Runs the scheduler told a worker to kill: gone at its next heartbeat.
        var killed: [String: Set<RunRef>] = [:]
        var connected: Set<String> = []
        var placements = 0
        /// Most tasks of each model seen running at once.
        var peak: [String: Int] = [:]

        init(policy: PlacementPolicy, seed: UInt64) {
            state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000, placementPolicy: policy,
                                                             modelLimits: PlacementSimulationTests.limits))
            rng = SimRNG(seed: seed)
        }

        mutating func chance(_ percent: Int) -> Bool { Int(rng.next() % 100) < percent }
        mutating func choose<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        /// Sets iterate in a per-process order: choose from them sorted, so runs repeat.
        mutating func someConnected() -> String? { connected.isEmpty ? nil : choose(connected.sorted()) }
        mutating func someRun(on name: String) -> RunRef? {
            guard let runs = onNode[name], !runs.isEmpty else { return nil }
            return choose(runs.sorted { ($0.id, $0.attempt) < ($1.id, $1.attempt) })
        }

        mutating func carryOut(_ directives: [SchedulerDirective]) {
            for d in directives {
                switch d {
                case let .assign(node, a): onNode[node, default: []].insert(RunRef(id: a.id, attempt: a.attempt)); placements += 1
                case let .kill(node, run, _): killed[node, default: []].insert(run)
                default: break
                }
            }
        }

        mutating func register(_ name: String) throws {
            let slots = 1 + Int(rng.next() % 4)
            var labels: [String: String] = ["zone": choose(["eu", "us"])]
            if chance(30) { labels["gpu"] = "yes" }
            let running = Array(onNode[name] ?? []).sorted { $0.id < $1.id }
            carryOut(try state.register(node: name, slots: slots, labels: labels, running: running, finished: [],
                                        address: nil, nowMs: now, at: now))
            connected.insert(name)
            setRuntimes(name)
        }

        mutating func setRuntimes(_ name: String) {
            var runtimes: [String: Bool] = [:]
            if chance(70) { runtimes["claude"] = chance(80) }
            if chance(50) { runtimes["codex"] = chance(80) }
            state.setRuntimes(node: name, runtimes: runtimes, allowsCommands: chance(80))
        }

        mutating func submit() throws {
            nextTask += 1
            let id = "t\(nextTask)"
            var request = PlacementRequest(priority: Int(rng.next() % 4))
            request.runtime = choose([nil, nil, "claude", "codex", "claude", chance(10) ? "gemini" : nil])
            request.model = choose([nil, "opus", "opus", "sonnet", chance(5) ? "banned" : nil])
            request.constraints = choose([[:], [:], ["zone": "eu"], ["gpu": "yes"], chance(10) ? ["zone": "mars"] : [:]])
            if let m = request.model { model[id] = m }
            _ = try state.submit(TaskSpec(id: id, command: ["x"]), request: request, at: now)
        }

        /// What one round must place: each queued task in order, decided by the reference.
        func expectedRound() -> [String] {
            var snapshot = state.nodes.values.sorted { $0.name < $1.name }.map {
                NodeSnapshot(name: $0.name, slots: $0.slots, freeSlots: $0.holdUntilMs > now ? 0 : $0.freeSlots,
                             state: $0.state, connected: $0.connected, labels: $0.labels,
                             runtimes: $0.runtimes, allowsCommands: $0.allowsCommands)
            }
            var running: [String: Int] = [:]
            for node in state.nodes.values {
                for id in node.assigned.keys { if let m = model[id] { running[m, default: 0] += 1 } }
            }
            var placed: [String] = []
            for id in state.queue.orderedIds {
                let record = state.tasks[id]!
                var nodes = snapshot
                for i in nodes.indices {
                    let node = state.nodes[nodes[i].name]!
                    if node.dying[id] != nil || node.stale[id] != nil { nodes[i].freeSlots = 0 }
                }
                guard case .place(let name) = Placement.place(record.request, on: nodes, policy: state.settings.placementPolicy,
                                                              modelLimits: limits, modelRunning: running) else { continue }
                placed.append("\(name):\(id)")
                snapshot[snapshot.firstIndex { $0.name == name }!].freeSlots -= 1
                if let m = record.request.model { running[m, default: 0] += 1 }
            }
            return placed
        }

        mutating func step() throws {
            now += 7
            let names = (0..<10).map { "w\($0)" }
            switch rng.next() % 100 {
            case 0..<30:
                // A bounded queue keeps the reference (O(queued x nodes) per round) cheap.
                if state.queuedCount < 120 { for _ in 0...(rng.next() % 3) { try submit() } }
            case 30..<50:
                let expected = expectedRound()
                let directives = state.schedule(nowMs: now, at: now)
                #expect(ClusterPlacementTests.placed(directives) == expected)
                carryOut(directives)
            case 50..<70:
                // Workers report runs ended (succeeded, failed or lost under a shutdown).
                for _ in 0..<3 {
                    guard let name = someConnected(), let run = someRun(on: name) else { break }
                    onNode[name]?.remove(run)
                    let result = TaskResult(id: run.id, state: choose([.succeeded, .failed, .lost]), exitCode: 0, signal: nil,
                                            reason: nil, output: "", pid: 1, attempt: run.attempt, startedAt: now, finishedAt: now)
                    _ = state.taskFinished(node: name, result: result, at: now)
                }
            case 70..<74:
                guard let name = someConnected(), let run = someRun(on: name) else { break }
                onNode[name]?.remove(run)
                state.taskRejected(node: name, run: run, nowMs: now, at: now)
            case 74..<80:
                // Heartbeats from every connected worker: killed runs are gone.
                for name in connected.sorted() {
                    onNode[name]?.subtract(killed[name] ?? [])
                    killed[name] = nil
                    state.seen(node: name, nowMs: now)
                    state.heartbeat(node: name, running: (onNode[name] ?? []).sorted { $0.id < $1.id })
                }
            case 80..<86:
                let name = choose(names)
                if !connected.contains(name) { try register(name) }
            case 86..<90:
                guard let name = someConnected() else { break }
                if chance(50) { state.leaving(node: name) }
                carryOut(state.disconnected(node: name, at: now))
                connected.remove(name)
            case 90..<94:
                // Time passes; one connected worker stays silent and is lost.
                let silent = someConnected()
                now += 1_001
                for name in connected where name != silent { state.seen(node: name, nowMs: now) }
                for d in state.tick(nowMs: now, at: now) {
                    if case .nodeLost(let name) = d { connected.remove(name) }
                }
            default:
                if let name = someConnected() { setRuntimes(name) }
            }
            #expect(state.placementInvariantViolations() == [])
            // The tasks of a model that run, read from the records (not `listTasks()`, which
            // builds a copy of every task in memory at every step: 34 s of the suite).
            var running: [String: Int] = [:]
            for (id, m) in model where state.tasks[id]?.info.state == .running { running[m, default: 0] += 1 }
            for (m, count) in running {
                #expect(count <= Self.limitsOf(m))
                peak[m] = max(peak[m] ?? 0, count)
            }
        }

        static func limitsOf(_ model: String) -> Int { PlacementSimulationTests.limits[model] ?? .max }
    }

    @Test(arguments: [(PlacementPolicy.spread, UInt64(1)), (.binpack, 2), (.spread, 3), (.binpack, 4)])
    func longRandomRunAgreesWithTheReference(policy: PlacementPolicy, seed: UInt64) throws {
        var sim = Sim(policy: policy, seed: seed)
        for _ in 0..<3_000 { try sim.step() }
        // The run did exercise placement, limits and waiting.
        #expect(sim.placements > 300)
        #expect(sim.state.queuedCount > 0)
        #expect(sim.peak["opus"] == 3, "the opus limit was reached")
        #expect(sim.peak["banned"] == nil)
    }
}

/// A small seeded generator so runs are reproducible.
struct SimRNG: RandomNumberGenerator {
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
