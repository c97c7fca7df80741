import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler
@testable import SwarmNode

/// Issue 10, items 1 and 2, pure: every number a peer sends is range-checked where it arrives,
/// and the arithmetic behind the edge cannot overflow.
@Suite struct NumberBoundsTests {
    static let extremes: [Int] = [.min, .min + 1, -1, .max - 1, .max]

    // MARK: Item 1: submits

    @Test func priorityAtTheEdgesOfIntIsRefusedNotATrap() throws {
        for priority in [Int.min, .min + 1, .max - 1, .max, -1_000_000_001, 1_000_000_001] {
            var spec = TaskSpec(command: ["true"])
            spec.priority = priority
            #expect(spec.problem()?.contains("priority") == true, "\(priority)")
            var state = ClusterState()
            #expect(throws: SchedulerError.self) { try state.submit(spec, at: 1) }
            #expect(state.listTasks().isEmpty)
        }
        for priority in [-1_000_000_000, 0, 1_000_000_000] {
            var spec = TaskSpec(command: ["true"])
            spec.priority = priority
            #expect(spec.problem() == nil)
        }
    }

    @Test func everyNumberOfASpecIsBounded() {
        let durations: [WritableKeyPath<TaskSpec, Double?>] = [\.timeout, \.maxTimeout, \.extendBy, \.extendWithin,
                                                               \.activityWindow, \.burstGap, \.silenceWarn, \.silenceKill, \.killGrace]
        for path in durations {
            for value in [Double.nan, .infinity, -.infinity, -1, 1e300, -0.000001, TaskSpec.maxDurationSeconds + 1] {
                var spec = TaskSpec(command: ["true"])
                spec[keyPath: path] = value
                #expect(spec.problem() != nil, "\(path) = \(value)")
            }
        }
        for value in Self.extremes + [1_000_001] {
            var spec = TaskSpec(command: ["true"])
            spec.minBursts = value
            #expect(spec.problem() != nil, "minBursts \(value)")
        }
    }

    @Test func timeoutPolicyConvertsAnySecondsWithoutTrapping() {
        var layer = TimeoutPolicy.Overrides()
        layer.timeout = .infinity
        layer.maxTimeout = .nan
        layer.extendBy = -1e300
        let policy = TimeoutPolicy().applying(layer)
        #expect(policy.initialOverrideMs == .max && policy.maxMs == 0 && policy.extendByMs == .min)
        #expect(Bounds.int64(1e19) == .max && Bounds.int64(-1e19) == .min && Bounds.int64(2.5) == 3)
    }

    // MARK: Item 2: what workers send

    static func registered() throws -> ClusterState {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: 1, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: 0)
        return state
    }

    static func place(_ state: inout ClusterState, _ id: String) throws -> TaskAssignment {
        _ = try state.submit(TaskSpec(id: id, command: ["true"]), at: 1)
        let directives = state.schedule(nowMs: 2, at: 2)
        return try #require(directives.compactMap { if case .assign(_, let a) = $0 { a } else { nil } }.first)
    }

    @Test func resultWithImpossibleTimesEndsTheRunFailedWithoutTrapping() throws {
        var state = try Self.registered()
        let a = try Self.place(&state, "t1")
        let result = TaskResult(id: "t1", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                                pid: 1, attempt: a.attempt, startedAt: -1, finishedAt: .max)
        #expect(result.problem() != nil)
        let directives = state.taskFinished(node: "w1", result: result, at: 50)
        #expect(directives.contains { if case .ackResult = $0 { true } else { false } })
        let info = try state.task("t1")
        #expect(info.state == .failed && info.finishedAt == 50)
        #expect(info.reason?.contains("invalid result") == true && info.reason?.contains("startedAt") == true)
        _ = state.statistics()
    }

    /// A result must be an end: `queued` or `running` from a worker ends the run `failed`
    /// with the reason, and is never a statistics' failure reason ("queued=1" was shown).
    @Test func resultWithAStateThatIsNoEndEndsTheRunFailed() throws {
        var state = try Self.registered()
        for (id, sent) in [("q", TaskState.queued), ("r", TaskState.running)] {
            let a = try Self.place(&state, id)
            let result = TaskResult(id: id, state: sent, exitCode: 0, signal: nil, reason: nil, output: "",
                                    pid: 1, attempt: a.attempt, startedAt: 10, finishedAt: 20)
            #expect(result.problem() != nil)
            let directives = state.taskFinished(node: "w1", result: result, at: 30)
            #expect(directives.contains { if case .ackResult = $0 { true } else { false } })
            let info = try state.task(id)
            #expect(info.state == .failed)
            #expect(info.reason?.contains("invalid result") == true, "\(info.reason ?? "nil")")
        }
        let reasons = state.statistics().cluster.totals.failedByReason
        #expect(reasons["queued"] == nil && reasons["running"] == nil, "\(reasons)")
    }

    @Test func extensionsOfIntMaxInTwoResultsDoNotOverflowTheStatistics() throws {
        // Through the state: refused at the edge, so not counted.
        var state = try Self.registered()
        for id in ["a", "b"] {
            let a = try Self.place(&state, id)
            var result = TaskResult(id: id, state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                                    pid: 1, attempt: a.attempt, startedAt: 10, finishedAt: 20)
            result.metrics.extensions = .max
            _ = state.taskFinished(node: "w1", result: result, at: 30)
        }
        #expect(state.statistics().cluster.totals.extensions == 0)
        // The ledger itself saturates, for whatever reaches it.
        var ledger = StatsLedger()
        var result = TaskResult(id: "x", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                                pid: 1, attempt: 1, startedAt: .min, finishedAt: .max)
        result.metrics.extensions = .max
        result.metrics.silenceWarnings = .max
        ledger.runEnded(node: "w1", model: nil, result: result, requeued: false)
        ledger.runEnded(node: "w1", model: nil, result: result, requeued: false)
        ledger.runEnded(node: "w2", model: nil, result: result, requeued: false)
        let report = ledger.report(running: [:], health: [:])
        #expect(report.cluster.totals.extensions == .max)
        #expect(report.cluster.totals.totalRunMs == .max)
    }

    @Test func runtimeCountsOfIntMaxNeitherGetInNorOverflowTheStatistics() throws {
        var state = try Self.registered()
        let huge = RuntimeStatus(name: "claude", healthy: true, latencyMs: .max, passed: .max, failed: .max, totalLatencyMs: .max)
        state.setHealth(node: "w1", runtimes: [huge])
        #expect(state.listNodes(nowMs: 0).first?.runtimes.isEmpty == true)
        _ = state.statistics()
        // The ledger's sums saturate when given them anyway (two workers, one runtime).
        let report = StatsLedger().report(running: [:], health: ["w1": [huge], "w2": [huge]])
        #expect(report.cluster.health["claude"]?.passed == .max)
        let meanish = RuntimeStatus(name: "claude", healthy: true, passed: 1 << 40, failed: 0, totalLatencyMs: 1 << 53)
        let mixed = StatsLedger().report(running: [:], health: ["w1": [meanish], "w2": [meanish]])
        #expect(mixed.cluster.health["claude"]?.meanLatencyMs == (1 << 53) / (1 << 40))
    }

    @Test func everyWorkerMessageHasItsNumbersChecked() {
        let status = RuntimeStatus(name: "r", healthy: true)
        let run = RunRef(id: "t", attempt: 1)
        func result(_ tweak: (inout TaskResult) -> Void) -> Message {
            var r = TaskResult(id: "t", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                               pid: 1, attempt: 1, startedAt: 1, finishedAt: 2)
            tweak(&r)
            return .taskFinished(.init(result: r))
        }
        let good: [Message] = [
            .register(.init(slots: 1, labels: [:], running: [run], finished: [run], runtimes: [status], probing: 0)),
            .heartbeat(.init(freeSlots: 1, running: [run], usage: ProcessUsage(pid: 1, cpuUserMs: 1, cpuSystemMs: 1, maxRssKiB: 1, at: 1))),
            .taskStarted(.init(id: "t", attempt: 1, pid: 1, startedAt: 1)),
            result { _ in },
            .health(.init(runtimes: [status], probing: 0)),
            .taskEvent(.init(id: "t", attempt: 1, kind: "extended", at: 1, detail: "")),
            .taskOutput(.init(id: "t", attempt: 1, stream: "stdout", data: "", at: 1)),
            .reject(.init(id: "t", attempt: 1, reason: "")),
        ]
        for message in good { #expect(message.workerProblem() == nil, "\(message.type)") }
        let bad: [Message] = [
            .register(.init(slots: .max, labels: [:], running: [], finished: [])),
            .register(.init(slots: 1, labels: [:], running: [RunRef(id: "t", attempt: .min)], finished: [])),
            .register(.init(slots: 1, labels: [:], running: [], finished: [], probing: .min)),
            .register(.init(slots: 1, labels: [:], running: [], finished: [],
                            runtimes: [RuntimeStatus(name: "r", healthy: true, checkedAt: .max)])),
            .register(.init(slots: 1, labels: [:], running: [], finished: [],
                            runtimes: [RuntimeStatus(name: "r", healthy: true, totalLatencyMs: -1)])),
            .heartbeat(.init(freeSlots: -1, running: [])),
            .heartbeat(.init(freeSlots: 1, running: [], usage: ProcessUsage(pid: 1, cpuUserMs: .max, cpuSystemMs: 1, maxRssKiB: 1, at: 1))),
            .heartbeat(.init(freeSlots: 1, running: [], usage: ProcessUsage(pid: 1, cpuUserMs: 1, cpuSystemMs: 1, maxRssKiB: 1, at: -5))),
            .taskStarted(.init(id: "t", attempt: 1, pid: .min, startedAt: 1)),
            .taskStarted(.init(id: "t", attempt: 1, pid: 1, startedAt: .max)),
            .taskStarted(.init(id: "t", attempt: -1, pid: 1, startedAt: 1)),
            result { $0.finishedAt = .max },
            result { $0.startedAt = -1 },
            result { $0.attempt = .max },
            result { $0.exitCode = .max },
            result { $0.signal = -1 },
            result { $0.metrics.extensions = .max },
            result { $0.metrics.outputBytes = -1 },
            result { $0.metrics.timeToFirstOutputMs = .min },
            result { $0.metrics.exitedAtUs = .max },
            result { $0.metrics.runMs = -1 },
            .health(.init(runtimes: [RuntimeStatus(name: "r", healthy: true, passed: .max)])),
            .health(.init(runtimes: [status], probing: .max)),
            .taskEvent(.init(id: "t", attempt: 1, kind: "extended", at: .min, detail: "")),
            .taskOutput(.init(id: "t", attempt: .max, stream: "stdout", data: "", at: 1)),
            .reject(.init(id: "t", attempt: .min, reason: "")),
        ]
        for message in bad { #expect(message.workerProblem() != nil, "\(message)") }
    }

    @Test func eachRangeHoldsItsEdgesAndRefusesOnePast() {
        func result(_ tweak: (inout TaskResult) -> Void) -> TaskResult {
            var r = TaskResult(id: "t", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                               pid: 0, attempt: 0, startedAt: 0, finishedAt: 0)
            tweak(&r)
            return r
        }
        #expect(result { _ in }.problem() == nil)
        let lastMs = Bounds.timestampMs.upperBound, lastUs = Bounds.timestampUs.upperBound
        #expect(result { $0.finishedAt = lastMs; $0.metrics.exitedAtUs = lastUs }.problem() == nil)
        #expect(result { $0.finishedAt = lastMs + 1 }.problem() != nil)
        #expect(result { $0.metrics.exitedAtUs = lastUs + 1 }.problem() != nil)
        #expect(result { $0.metrics.extensions = 1 << 40; $0.metrics.outputBytes = 1 << 50 }.problem() == nil)
        #expect(result { $0.metrics.extensions = (1 << 40) + 1 }.problem() != nil)
        #expect(result { $0.metrics.outputBytes = (1 << 50) + 1 }.problem() != nil)
        #expect(result { $0.attempt = 1_000_000; $0.signal = 255 }.problem() == nil)
        #expect(result { $0.attempt = 1_000_001 }.problem() != nil)
        #expect(result { $0.signal = 256 }.problem() != nil)
        #expect(result { $0.metrics.finalTimeoutMs = Bounds.durationMs.upperBound }.problem() == nil)
        #expect(result { $0.metrics.finalTimeoutMs = Bounds.durationMs.upperBound + 1 }.problem() != nil)
        #expect(Message.register(.init(slots: 100_000, labels: [:], running: [], finished: [])).workerProblem() == nil)
        #expect(Message.register(.init(slots: 100_001, labels: [:], running: [], finished: [])).workerProblem() != nil)
        let many = Array(repeating: RunRef(id: "t", attempt: 1), count: Bounds.runs + 1)
        #expect(Message.heartbeat(.init(freeSlots: 0, running: many)).workerProblem() != nil)
    }

    @Test func workersCheckTheAssignmentsTheySee() {
        var spec = TaskSpec(command: ["true"])
        #expect(TaskAssignment(id: "t", attempt: 1, spec: spec, submittedAt: 1, placedAt: 2).problem() == nil)
        #expect(TaskAssignment(id: "t", attempt: .max, spec: spec).problem() != nil)
        #expect(TaskAssignment(id: "t", attempt: 1, spec: spec, submittedAt: .min).problem() != nil)
        spec.priority = .min
        #expect(TaskAssignment(id: "t", attempt: 1, spec: spec).problem() != nil)
    }
}
