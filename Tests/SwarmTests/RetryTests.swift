import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Retries (issue 13 items 1 and 2), all pure: the backoff's timing with a seeded jitter, and
/// `ClusterState` driven with a fake clock (plain `Int64`s).
@Suite struct RetryTests {
    typealias S = SchedulerStateTests
    static let t0 = SchedulerStateTests.t0

    // MARK: Timing

    @Test func backoffDoublesPerRetryAndIsCappedAtTenMinutes() {
        let policy = RetryPolicy(retries: 20, backoffMs: 10_000)
        // unit 0.5: no jitter.
        #expect((1...6).map { policy.backoffMs(retry: $0, unit: 0.5) } == [10_000, 20_000, 40_000, 80_000, 160_000, 320_000])
        #expect(policy.backoffMs(retry: 7, unit: 0.5) == 600_000)
        #expect(policy.backoffMs(retry: 1_000, unit: 0.99) == 600_000)
        #expect(RetryPolicy(retries: 3, backoffMs: 0).backoffMs(retry: 3, unit: 0.9) == 0)
    }

    @Test func jitterIsPlusMinusTwentyPercentAndSeeded() {
        let policy = RetryPolicy(retries: 5, backoffMs: 10_000)
        #expect(policy.backoffMs(retry: 1, unit: 0) == 8_000)
        #expect(policy.backoffMs(retry: 1, unit: 0.999999) == 12_000)
        #expect(policy.backoffMs(retry: 2, unit: 0.25) == 18_000)
        var a = RetryJitter(seed: 42), b = RetryJitter(seed: 42)
        let first = (0..<100).map { _ in a.unit() }
        #expect(first == (0..<100).map { _ in b.unit() })
        #expect(first.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(Set(first).count == 100)
        // Spread over the whole range, not stuck at one end.
        let delays = first.map { policy.backoffMs(retry: 1, unit: $0) }
        #expect(delays.min()! < 8_500 && delays.max()! > 11_500)
    }

    @Test func aSpecsRetryFieldsAreBoundedWithOneLineReasons() {
        func problem(_ retries: Int? = nil, _ on: [String]? = nil, _ backoff: Double? = nil) -> String? {
            var spec = TaskSpec(id: "t", command: ["x"])
            spec.retries = retries
            spec.retryOn = on
            spec.retryBackoff = backoff
            return spec.problem()
        }
        #expect(problem(0, ["failed"], 0) == nil)
        #expect(problem(100, RetryPolicy.retryableStates.map(\.rawValue), 600) == nil)
        #expect(problem(-1) == "retries must be 0 to 100, got -1")
        #expect(problem(101) == "retries must be 0 to 100, got 101")
        #expect(problem(nil, nil, -1)?.hasPrefix("retryBackoff must be a number of seconds from 0 to 600") == true)
        #expect(problem(nil, nil, 601) != nil && problem(nil, nil, .nan) != nil && problem(nil, nil, .infinity) != nil)
        #expect(problem(nil, []) == "retryOn names no state (give at least one of failed, timed_out, silence_killed, spawn_failed, lost, health_failed)")
        #expect(problem(nil, ["succeeded"])?.contains("'succeeded' is not a state a run is retried from") == true)
        #expect(problem(nil, ["cancelled"]) != nil && problem(nil, ["bogus"]) != nil && problem(nil, ["failed "]) != nil)
        #expect(problem(nil, Array(repeating: "failed", count: 17)) != nil)
        for reason in [problem(-1), problem(nil, nil, 601), problem(nil, ["x\ny"])] { #expect(reason?.contains("\n") == false) }
    }

    @Test func aPolicyReadsTheSpecWithItsDefaults() {
        let plain = RetryPolicy(TaskSpec(id: "t", command: ["x"]))
        #expect(plain.retries == 0 && plain.backoffMs == 10_000 && plain.retryOn == Set(RetryPolicy.defaultRetryOn))
        #expect(!plain.retries(.failed, used: 0))
        var spec = TaskSpec(id: "t", command: ["x"])
        spec.retries = 2
        spec.retryOn = ["timed_out"]
        spec.retryBackoff = 1.5
        let policy = RetryPolicy(spec)
        #expect(policy.backoffMs == 1_500 && policy.retryOn == [.timedOut])
        #expect(policy.retries(.timedOut, used: 1) && !policy.retries(.timedOut, used: 2) && !policy.retries(.failed, used: 0))
    }

    // MARK: ClusterState

    static func state(seed: UInt64 = 1, maxAttempts: Int = 3) -> ClusterState {
        var settings = SchedulerSettings(lostAfterMs: 1_000, maxAttempts: maxAttempts)
        settings.retrySeed = seed
        return ClusterState(settings: settings)
    }

    static func submit(_ state: inout ClusterState, _ id: String, retries: Int, on: [String]? = nil, backoff: Double = 10) throws {
        var spec = TaskSpec(id: id, command: ["run", id])
        spec.retries = retries
        spec.retryOn = on
        spec.retryBackoff = backoff
        _ = try state.submit(spec, at: t0)
    }

    /// The delays a state seeded with `seed` gives retries 1, 2, ... of `policy`.
    static func delays(_ policy: RetryPolicy, seed: UInt64 = 1, count: Int) -> [Int64] {
        var rng = RetryJitter(seed: seed)
        return (1...count).map { policy.backoffMs(retry: $0, unit: rng.unit()) }
    }

    static func ended(_ directives: [SchedulerDirective]) -> [String] {
        directives.compactMap { if case .taskEnded(let id) = $0 { id } else { nil } }
    }

    @Test func aFailedRunWaitsItsBackoffQueuedThenRunsOnAnotherNode() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        _ = try S.register(&state, "b", slots: 1)
        try Self.submit(&state, "t", retries: 2)
        let expected = Self.delays(RetryPolicy(retries: 2, backoffMs: 10_000), count: 2)
        #expect(S.assigns(state.schedule(nowMs: Self.t0, at: Self.t0)).map(\.node) == ["a"])

        // Attempt 1 fails on a: not ended, queued, waiting out its backoff.
        let first = state.taskFinished(node: "a", result: S.result("t", .failed, attempt: 1, at: Self.t0 + 100), at: Self.t0 + 100)
        #expect(Self.ended(first).isEmpty)
        var info = try state.task("t")
        #expect(info.state == .queued && info.attempts == 1 && info.node == nil && info.exitCode == nil)
        #expect(info.reason == "retry 1 of 2: attempt 1 ended failed on a")
        #expect(state.placementInvariantViolations().isEmpty)
        // Armed by the next round (the same turn in the shell), counted from its nowMs.
        #expect(state.schedule(nowMs: Self.t0 + 100, at: Self.t0 + 100).isEmpty)
        #expect(state.nextBackoffDueMs == Self.t0 + 100 + expected[0])
        let left = expected[0] - 1_000
        #expect(state.waitReason(for: "t", nowMs: Self.t0 + 1_100)?.reason == "retrying in \(ClusterState.seconds(left)) after failed on a")
        #expect(state.schedule(nowMs: Self.t0 + 99 + expected[0], at: Self.t0 + 99 + expected[0]).isEmpty)

        // Due: placed, on b (a is free too, but it failed there).
        let due = Self.t0 + 100 + expected[0]
        #expect(S.assigns(state.schedule(nowMs: due, at: due)).map { "\($0.node):\($0.attempt)" } == ["b:2"])
        info = try state.task("t")
        #expect(info.state == .running && info.attempts == 2)
        #expect(info.runs?.map { "\($0.attempt):\($0.node ?? "-"):\($0.state.rawValue):\($0.exitCode.map(String.init) ?? "-")" }
                == ["1:a:failed:1", "2:b:running:-"])
        #expect(state.placementInvariantViolations().isEmpty)

        // Attempt 2 fails on b: the second backoff, from a seeded jitter of twice the base.
        _ = state.taskFinished(node: "b", result: S.result("t", .failed, attempt: 2, at: due + 50), at: due + 50)
        _ = state.schedule(nowMs: due + 50, at: due + 50)
        #expect(state.nextBackoffDueMs == due + 50 + expected[1])
        #expect(expected[1] >= 16_000 && expected[1] <= 24_000)
        let again = due + 50 + expected[1]
        #expect(S.assigns(state.schedule(nowMs: again, at: again)).map { "\($0.node):\($0.attempt)" } == ["a:3"])

        // Attempt 3 fails: no retries left, it ends failed, its state the last run's.
        let last = state.taskFinished(node: "a", result: S.result("t", .failed, attempt: 3, at: again + 10), at: again + 10)
        #expect(Self.ended(last) == ["t"])
        info = try state.task("t")
        #expect(info.state == .failed && info.attempts == 3 && info.exitCode == 1 && info.node == "a")
        #expect(info.runs?.map(\.state) == [.failed, .failed, .failed])
        #expect(info.runs?.map(\.attempt) == [1, 2, 3])
        #expect(info.runs?.last?.durationMs == 5)
        #expect(state.nextBackoffDueMs == nil && state.placementInvariantViolations().isEmpty)
    }

    @Test func aRetryGoesBackToTheSameNodeWhenNoOtherFits() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        _ = try S.register(&state, "b", slots: 1)
        try Self.submit(&state, "t", retries: 1, backoff: 0)
        try S.submit(&state, ["busy"])
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        #expect(try state.task("t").node == "a" && state.task("busy").node == "b")
        _ = state.taskFinished(node: "a", result: S.result("t", .failed, at: Self.t0 + 10), at: Self.t0 + 10)
        // A backoff of 0: back in the queue in the same round, and b is busy: a it is.
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 10, at: Self.t0 + 10)).map { "\($0.node):\($0.attempt)" } == ["a:2"])
    }

    @Test func aWaitingRetrySaysWhereItFailedWhenAllSlotsAreBusy() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 1, backoff: 1)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        try S.submit(&state, ["other"])
        _ = state.taskFinished(node: "a", result: S.result("t", .timedOut, at: Self.t0 + 10), at: Self.t0 + 10)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 10, at: Self.t0 + 10)).map(\.id) == ["other"])
        #expect(state.waitReason(for: "t", nowMs: Self.t0 + 500)?.reason.hasPrefix("retrying in ") == true)
        #expect(state.waitReason(for: "t", nowMs: Self.t0 + 500)?.reason.hasSuffix(" after timed_out on a") == true)
        _ = state.schedule(nowMs: Self.t0 + 2_000, at: Self.t0 + 2_000)
        #expect(state.waitReason(for: "t", nowMs: Self.t0 + 2_000)?.reason
                == "all slots are busy; a retry: it goes to a worker other than a, where it failed, when one is free")
    }

    @Test func onlyTheStatesOfRetryOnAreRetried() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 2)
        try Self.submit(&state, "t", retries: 3, on: ["timed_out"])
        try Self.submit(&state, "s", retries: 3)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        #expect(Self.ended(state.taskFinished(node: "a", result: S.result("t", .failed, at: Self.t0 + 1), at: Self.t0 + 1)) == ["t"])
        // Success and a user's cancel are never retried.
        #expect(Self.ended(state.taskFinished(node: "a", result: S.result("s", at: Self.t0 + 1), at: Self.t0 + 1)) == ["s"])
        #expect(try state.task("t").state == .failed && state.task("s").state == .succeeded)
        try Self.submit(&state, "c", retries: 3)
        _ = state.schedule(nowMs: Self.t0 + 2, at: Self.t0 + 2)
        _ = try state.cancel("c", at: Self.t0 + 3)
        #expect(Self.ended(state.taskFinished(node: "a", result: S.result("c", .failed, at: Self.t0 + 4), at: Self.t0 + 4)) == ["c"])
        #expect(try state.task("c").state == .cancelled)
    }

    @Test func cancellingDuringTheBackoffEndsItAndNothingRunsLater() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 2, backoff: 5)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.taskFinished(node: "a", result: S.result("t", .failed, at: Self.t0 + 1), at: Self.t0 + 1)
        _ = state.schedule(nowMs: Self.t0 + 1, at: Self.t0 + 1)
        #expect(try state.cancel("t", at: Self.t0 + 2) == [.taskEnded(id: "t")])
        let info = try state.task("t")
        #expect(info.state == .cancelled && info.reason == "cancelled while waiting to retry" && info.attempts == 1)
        // No round is asked for a cancelled backoff: a stale due time made the shell's timer
        // fire at once after every round, for ever (the scheduler spun at 100% CPU).
        #expect(state.nextBackoffDueMs == nil)
        #expect(state.schedule(nowMs: Self.t0 + 60_000, at: Self.t0 + 60_000).isEmpty)
        #expect(state.nextBackoffDueMs == nil)
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func nodeLossesKeepTheirOwnBudgetApartFromRetries() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 1, backoff: 0)
        var now = Self.t0
        // Three runs lost with their worker: the third gives up (`lost` is not in retryOn).
        for attempt in 1...3 {
            #expect(S.assigns(state.schedule(nowMs: now, at: now)).map(\.attempt) == [attempt])
            var lost = S.result("t", .lost, attempt: attempt, at: now + 1)
            lost.reason = "worker a shut down while the task ran"
            let directives = state.taskFinished(node: "a", result: lost, at: now + 1)
            #expect(Self.ended(directives) == (attempt == 3 ? ["t"] : []))
            now += 10
        }
        var info = try state.task("t")
        #expect(info.state == .lost && info.attempts == 3)
        #expect(info.reason == "worker a shut down while the task ran; gave up after 3 attempts")

        // A failure between losses uses a retry, not the loss budget; the retry does not
        // start the budget again either: the third loss ends it.
        state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "u", retries: 1, backoff: 0)
        let outcomes: [TaskState] = [.lost, .failed, .lost, .lost]
        now = Self.t0
        for (i, outcome) in outcomes.enumerated() {
            #expect(S.assigns(state.schedule(nowMs: now, at: now)).map(\.attempt) == [i + 1])
            let directives = state.taskFinished(node: "a", result: S.result("u", outcome, attempt: i + 1, at: now + 1), at: now + 1)
            #expect(Self.ended(directives) == (i == 3 ? ["u"] : []))
            now += 10
        }
        info = try state.task("u")
        #expect(info.state == .lost && info.attempts == 4)
        #expect(info.runs?.map(\.state) == [.lost, .failed, .lost, .lost])
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func lostInRetryOnRetriesOnceTheLossBudgetIsSpent() throws {
        var state = Self.state(maxAttempts: 1)
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 1, on: ["lost"], backoff: 0)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        // Lost with its worker: the budget of 1 is spent, so it would end lost; it retries.
        #expect(state.tick(nowMs: Self.t0 + 5_000, at: Self.t0 + 5_000).contains(.nodeLost(name: "a")))
        let info = try state.task("t")
        #expect(info.state == .queued && info.runs?.map(\.state) == [.lost])
        _ = try S.register(&state, "a", slots: 1, at: Self.t0 + 6_000)
        #expect(S.assigns(state.schedule(nowMs: Self.t0 + 6_000, at: Self.t0 + 6_000)).map(\.attempt) == [2])
    }

    @Test func theHistoryKeepsTheLastRunsAndAttemptsCountsThemAll() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 100, backoff: 0)
        var now = Self.t0
        for attempt in 1...40 {
            #expect(S.assigns(state.schedule(nowMs: now, at: now)).map(\.attempt) == [attempt])
            _ = state.taskFinished(node: "a", result: S.result("t", .failed, attempt: attempt, at: now + 1), at: now + 1)
            now += 10
        }
        let info = try state.task("t")
        #expect(info.attempts == 40 && info.state == .queued)
        #expect(info.runs?.count == TaskRun.maxKept)
        #expect(info.runs?.first?.attempt == 40 - TaskRun.maxKept + 1 && info.runs?.last?.attempt == 40)
        // Listings carry no runs (as no output).
        #expect(state.listTasks().allSatisfy { $0.runs == nil })
    }

    @Test func theRunHistoryChangesCarryExitCodesForTheStore() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 1, backoff: 0)
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        _ = state.takeChanges()
        _ = state.taskFinished(node: "a", result: S.result("t", .failed, at: Self.t0 + 10), at: Self.t0 + 10)
        _ = state.schedule(nowMs: Self.t0 + 10, at: Self.t0 + 10)
        let changes = state.takeChanges()
        let run1 = RunRef(id: "t", attempt: 1), run2 = RunRef(id: "t", attempt: 2)
        #expect(changes.runs == [.started(run1, startedAt: Self.t0 + 5),
                                 .ended(run1, state: .failed, reason: nil, finishedAt: Self.t0 + 10, exitCode: 1, signal: nil),
                                 .placed(run2, node: "a", placedAt: Self.t0 + 10)])
        #expect(changes.tasks.last?.retry.used == 1)
    }

    // MARK: Rerun

    @Test func aRerunIsTheFinishedTasksSpecUnderTheFirstFreeId() throws {
        var state = Self.state()
        _ = try S.register(&state, "a", slots: 1)
        try Self.submit(&state, "t", retries: 1)
        #expect(throws: SchedulerError.notEnded("t", .queued)) { _ = try state.rerunSpec(of: "t", newId: nil) }
        #expect(SchedulerError.notEnded("t", .running).description == "task 't' has not finished (running): only a finished task can be rerun")
        _ = state.schedule(nowMs: Self.t0, at: Self.t0)
        #expect(throws: SchedulerError.notEnded("t", .running)) { _ = try state.rerunSpec(of: "t", newId: nil) }
        _ = state.taskFinished(node: "a", result: S.result("t", at: Self.t0 + 1), at: Self.t0 + 1)
        let spec = try state.rerunSpec(of: "t", newId: nil)
        #expect(spec.id == "t.r1" && spec.command == ["run", "t"] && spec.retries == 1)
        _ = try state.submit(spec, at: Self.t0 + 2)
        _ = try state.submit(TaskSpec(id: "t.r2", command: ["x"]), at: Self.t0 + 2)
        #expect(try state.rerunSpec(of: "t", newId: nil).id == "t.r3")
        #expect(try state.rerunSpec(of: "t", newId: "again").id == "again")
        #expect(throws: SchedulerError.duplicateId("t.r1")) { _ = try state.rerunSpec(of: "t", newId: "t.r1") }
        #expect(throws: SchedulerError.unknownTask("nope")) { _ = try state.rerunSpec(of: "nope", newId: nil) }
        // The new task starts afresh: no runs, no retries used.
        #expect(try state.task("t.r1").attempts == 0 && state.task("t.r1").runs == [])

        let long = String(repeating: "x", count: TaskID.maxLength)
        _ = try state.submit(TaskSpec(id: long, command: ["x"]), at: Self.t0)
        _ = try state.cancel(long, at: Self.t0 + 3)
        #expect(throws: SchedulerError.self) { _ = try state.rerunSpec(of: long, newId: nil) }
        #expect(try state.rerunSpec(of: long, newId: "short").id == "short")
    }
}

/// `rerun` through the pure client-request core: the submit rules apply to the new task.
@Suite struct RerunRequestTests {
    typealias C = ClientRequestsTests

    @Test func aRerunIsSubmittedLikeAnySubmitAndRefusedOutsideACredentialsSubtree() throws {
        var state = try C.state()
        // `done` was cancelled while queued: finished.
        let outcome = C.handle(.rerun(.init(requestId: 7, id: "done")), &state)
        #expect(outcome.replies == [.submitted(.init(requestId: 7, id: "done.r1"))] && outcome.flow == [.scheduleSoon])
        #expect(try state.task("done.r1").state == .queued)
        // Not finished: refused, nothing changes.
        let running = try #require(try C.refusal(.rerun(.init(requestId: 8, id: "run"))))
        #expect(running.code == .invalidTask && running.reason == "task 'run' has not finished (running): only a finished task can be rerun")
        #expect(try C.refusal(.rerun(.init(requestId: 9, id: "nope")))?.code == .unknownTask)
        // A task's credential reruns only tasks of its subtree, and the new task lands in it.
        #expect(try C.refusal(.rerun(.init(requestId: 10, id: "done")), as: .task("r"))?.reason.contains("outside the subtree") == true)
        _ = try state.cancel("c", at: 5)
        let inTree = C.handle(.rerun(.init(requestId: 11, id: "c", newId: "c2")), as: .task("r"), &state)
        #expect(inTree.replies == [.submitted(.init(requestId: 11, id: "c2"))])
        #expect(try state.task("c2").parent == "r")
    }
}
