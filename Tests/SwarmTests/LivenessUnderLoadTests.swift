import Testing
@testable import SwarmNode
@testable import SwarmProtocol
@testable import SwarmScheduler

/// What keeps a worker with thousands of runs ending together heard (the 10,000 step of
/// `swarm bench scale` lost a worker that way): pure parts, each with a fake clock.
@Suite struct LivenessUnderLoadTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    // MARK: The scheduler's silence measure

    /// `seen` says how long the worker was silent; the loss comes strictly after `lostAfterMs`.
    @Test func seenMeasuresTheSilenceAndTheLossComesAfterTheLimit() throws {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 10_000))
        _ = try S.register(&state, "w", slots: 1)
        #expect(state.lostAfterMs(node: "w") == 10_000)
        #expect(state.lostAfterMs(node: "nobody") == nil)
        #expect(state.seen(node: "w", nowMs: Self.t0 + 6_000) == 6_000)
        #expect(state.seen(node: "w", nowMs: Self.t0 + 6_250) == 250)
        // A clock reading older than the last one: no silence, and the last stays.
        #expect(state.seen(node: "w", nowMs: Self.t0 + 6_000) == 0)
        #expect(state.tick(nowMs: Self.t0 + 16_250, at: Self.t0 + 16_250).isEmpty)
        #expect(state.tick(nowMs: Self.t0 + 16_251, at: Self.t0 + 16_251) == [.nodeLost(name: "w")])
        #expect(state.seen(node: "w", nowMs: Self.t0 + 16_300) == nil)
        #expect(state.seen(node: "nobody", nowMs: Self.t0) == nil)
    }

    // MARK: The worker's stall watch

    @Test func aStallIsAGapOfAtLeastTheThreshold() {
        var watch = LoopStallWatch(periodMs: 100, thresholdMs: 500, nowMs: 1_000)
        #expect(watch.fired(nowMs: 1_100) == nil)
        #expect(watch.fired(nowMs: 1_599) == nil)       // 499 ms
        #expect(watch.fired(nowMs: 2_099) == 500)       // exactly the threshold
        #expect(watch.fired(nowMs: 6_099) == 4_000)
        #expect(watch.longestGapMs == 4_000)
        #expect(watch.fired(nowMs: 6_000) == nil)       // backwards: no gap
        #expect(watch.fired(nowMs: 6_199) == nil)       // measured from the latest reading
    }

    @Test func aThresholdNotAboveThePeriodIsRaised() {
        var watch = LoopStallWatch(periodMs: 100, thresholdMs: 50, nowMs: 0)
        #expect(watch.thresholdMs == 101)
        #expect(watch.fired(nowMs: 100) == nil)         // an on-time firing is never a stall
        #expect(watch.fired(nowMs: 201) == 101)
    }

    // MARK: KeyedQueue

    @Test func keyedQueueKeepsOrderAndRemovesByKey() {
        var queue = KeyedQueue<String, Int>()
        for (index, key) in ["a", "b", "c", "d"].enumerated() { queue.append(key, index) }
        #expect(queue.remove("b") == 1)
        #expect(queue.remove("b") == nil)
        #expect(queue.keys == ["a", "c", "d"])
        queue.append("a", 9)                            // again: the old one goes, the new one is last
        #expect(queue.keys == ["c", "d", "a"])
        #expect(queue["a"] == 9)
        #expect(queue.popFirst()?.key == "c")
        #expect(queue.count == 2)
        #expect(queue.contains("d") && !queue.contains("c"))
        #expect(queue.popFirst()?.value == 3)
        #expect(queue.popFirst()?.value == 9)
        #expect(queue.popFirst() == nil)
        #expect(queue.isEmpty)
    }

    /// Against an array doing the same, through compactions: a fixed pseudo-random sequence.
    @Test func keyedQueueMatchesAnArrayThroughCompactions() {
        var queue = KeyedQueue<Int, Int>()
        var model: [(Int, Int)] = []
        var seed: UInt64 = 42
        func next(_ bound: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(bound))
        }
        for step in 0..<20_000 {
            switch next(10) {
            case 0...4:
                let key = next(500)
                model.removeAll { $0.0 == key }
                model.append((key, step))
                queue.append(key, step)
            case 5...7:
                let key = next(500)
                let expected = model.first { $0.0 == key }?.1
                model.removeAll { $0.0 == key }
                #expect(queue.remove(key) == expected)
            default:
                let first = queue.popFirst()
                #expect(first?.key == model.first?.0 && first?.value == model.first?.1)
                if !model.isEmpty { model.removeFirst() }
            }
            #expect(queue.count == model.count)
        }
        #expect(queue.keys == model.map(\.0))
        #expect(queue.values == model.map(\.1))
    }

    // MARK: The outbox

    /// Acknowledgements in any order remove their runs only; the rest keep finishing order.
    @Test func acksInAnyOrderLeaveTheRestInFinishingOrder() {
        typealias T = WorkerSessionTests
        var s = T.make()
        _ = T.register(&s, at: 100)
        let ids = (0..<3_000).map { "t\($0)" }
        for id in ids { _ = s.handle(.finished(T.result(id))) }
        let acked = Set(ids.indices.filter { $0 % 3 != 1 }.map { ids[$0] })
        for id in ids.reversed() where acked.contains(id) {
            #expect(s.handle(.received(.resultAck(.init(id: id, attempt: 1)))) == [.acknowledged(RunRef(id: id, attempt: 1))])
        }
        #expect(s.outbox.map(\.id) == ids.filter { !acked.contains($0) })
    }
}
