import Testing
@testable import SwarmProtocol
@testable import SwarmNode
@testable import SwarmScheduler

/// Durations run on the monotonic clock, the wall clock only dates things (issue 12).
///
/// Terms, with numbers. Every pure core is given `nowMs` (monotonic ms) and, where it dates
/// something, `at` (wall-clock unix ms). A *step* is the wall clock moving by
/// `step` = 3_600_000 ms (1 h) forward or back between two events while the monotonic clock
/// moves on as usual. A duration of D ms that starts at monotonic T *fires* at the first event
/// with `nowMs` >= T + D (or > T + D where the rule says "more than"), never one ms earlier or
/// later, whatever `at` did meanwhile; dates (`startedAt`, `placedAt`, `finishedAt`,
/// `checkedAt`) are the `at` of the event they happened at.
@Suite struct MonotonicTimeTests {
    static let step: Int64 = 3_600_000
    /// A wall-clock date: 2026-11-18, as a stored `submittedAt` would be.
    static let wall: Int64 = 1_795_000_000_000
    /// Wall readings that jump an hour either way, for events between the edges.
    static let stepped: [Int64] = [wall + step, wall - step, wall + 2 * step, wall]

    // MARK: Scheduler

    static func registered(lostAfterMs: Int64) throws -> ClusterState {
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: lostAfterMs))
        _ = try state.register(node: "w1", slots: 2, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: wall)
        return state
    }

    /// Lost after 1_000 ms: a worker last heard at monotonic 0 is not lost at 1_000 (not
    /// *more* than 1_000 ms) and is lost at 1_001, with the wall clock stepped an hour
    /// forward, back, and two hours forward in between. Before the fix, a step forward of
    /// the wall clock lost every worker at once.
    @Test func aWorkerIsLostAfterLostAfterMonotonicMsWhateverTheWallClockDoes() throws {
        var state = try Self.registered(lostAfterMs: 1_000)
        for (i, at) in Self.stepped.enumerated() {
            #expect(state.tick(nowMs: Int64(250 * i), at: at).isEmpty, "tick \(i) at wall \(at)")
        }
        #expect(state.tick(nowMs: 1_000, at: Self.wall + Self.step).isEmpty)
        #expect(state.tick(nowMs: 1_001, at: Self.wall - Self.step) == [.nodeLost(name: "w1")])
    }

    /// A step back does not keep a silent worker alive: last heard at 0 with the wall an hour
    /// ahead, it is lost at monotonic 1_001 with the wall an hour behind.
    @Test func aWallClockStepBackKeepsNoSilentWorkerAlive() throws {
        var state = try Self.registered(lostAfterMs: 1_000)
        state.seen(node: "w1", nowMs: 0)
        #expect(state.tick(nowMs: 1_001, at: Self.wall - 2 * Self.step) == [.nodeLost(name: "w1")])
        #expect(state.listNodes(nowMs: 1_001).first?.lastSeenMsAgo == 1_001)
    }

    /// The second's hold on a worker that refused a run counts on the monotonic clock (held at
    /// 999 ms after the refusal, free at 1_000), and the run's `placedAt` is the wall clock.
    @Test func aRefusalHoldEndsOnTheMonotonicClockAndPlacementIsDatedByTheWallClock() throws {
        var state = try Self.registered(lostAfterMs: 60_000)
        _ = try state.submit(TaskSpec(id: "t", command: ["true"]), at: Self.wall)
        let first = state.schedule(nowMs: 10, at: Self.wall + 10)
        #expect(first.count == 1)
        state.taskRejected(node: "w1", run: RunRef(id: "t", attempt: 1), nowMs: 100, at: Self.wall + Self.step)
        #expect(state.schedule(nowMs: 1_099, at: Self.wall + 2 * Self.step).isEmpty, "held until 100 + 1_000")
        let placed = state.schedule(nowMs: 1_100, at: Self.wall - Self.step)
        guard case .assign(node: "w1", let assignment)? = placed.first else {
            Issue.record("not placed once the hold ended: \(placed)"); return
        }
        #expect(assignment.placedAt == Self.wall - Self.step)
        #expect(assignment.submittedAt == Self.wall)
        #expect(try state.task("t").placedAt == Self.wall - Self.step)
    }

    /// A restart restores no monotonic reading: a worker of a restored running task has
    /// `lostAfterMs` from the restore (monotonic 5_000 here, in a process whose monotonic
    /// clock has nothing to do with the old one's), and what ends is dated by the wall clock.
    @Test func aRestoredWorkerGetsItsLostAfterFromTheRestore() throws {
        var info = TaskInfo(id: "t", state: .running, command: ["true"], submittedAt: Self.wall)
        info.node = "w1"
        info.attempts = 1
        let snapshot = TaskSnapshot(spec: TaskSpec(id: "t", command: ["true"]), info: info, sequence: 1)
        var state = ClusterState(settings: SchedulerSettings(lostAfterMs: 1_000, maxAttempts: 1),
                                 restoring: [snapshot], nowMs: 5_000, at: Self.wall + Self.step)
        #expect(state.tick(nowMs: 6_000, at: Self.wall - Self.step).isEmpty)
        let lost = state.tick(nowMs: 6_001, at: Self.wall + 3 * Self.step)
        #expect(lost == [.nodeLost(name: "w1"), .taskEnded(id: "t")])
        #expect(try state.task("t").finishedAt == Self.wall + 3 * Self.step)
    }

    // MARK: Worker

    /// A plain command with a 3 s deadline (no extension: max 3 s) and a 2 s silence kill.
    static func supervisor() -> TaskSupervisor {
        var spec = TaskSpec(id: "t", command: ["agent"])
        spec.timeout = 3
        spec.maxTimeout = 3
        spec.silenceKill = 2
        return TaskSupervisor(assignment: TaskAssignment(id: "t", attempt: 1, spec: spec),
                              settings: .init(drainMs: 100, killGraceMs: 1_000))
    }

    static func kills(_ actions: [SupervisorAction]) -> Bool { actions.contains(.signalGroup(15)) }

    /// Spawned at monotonic 10_000 and printing every 500 ms: the 3 s deadline fires at
    /// 13_000, not at 12_999, with the wall clock stepped at every output. The result's dates
    /// are the wall clock's, its durations the monotonic clock's.
    @Test func theDeadlineFiresAtItsMonotonicTimeWithTheWallClockStepped() throws {
        var s = Self.supervisor()
        let spawned = s.handle(.spawned(pid: 7, nowMs: 10_000), at: Self.wall)
        #expect(spawned.contains(.armWake(atMs: 12_000)), "the silence kill's time, monotonic: \(spawned)")
        for (i, at) in Self.stepped.enumerated() {
            let now = 10_500 + Int64(i) * 500
            #expect(!Self.kills(s.handle(.output(.stdout, Array("tick\n".utf8), nowMs: now), at: at)), "output at \(now)")
        }
        #expect(!Self.kills(s.handle(.wake(nowMs: 12_999), at: Self.wall + Self.step)))
        let timedOut = s.handle(.wake(nowMs: 13_000), at: Self.wall - Self.step)
        #expect(Self.kills(timedOut))
        #expect(s.sigkillAtMs == 14_000, "grace counted on the monotonic clock")
        _ = s.handle(.exited(status: 0, signal: 15, nowMs: 13_010), at: Self.wall + 10)
        _ = s.handle(.streamClosed(.stdout, nowMs: 13_011), at: Self.wall + 11)
        let result = try #require(SupervisorTests.finished(s.handle(.streamClosed(.stderr, nowMs: 13_012), at: Self.wall + 12)))
        #expect(result.state == .timedOut)
        #expect(result.startedAt == Self.wall)
        #expect(result.finishedAt == Self.wall + 12)
        #expect(result.metrics.firstOutputAt == Self.wall + Self.step)
        #expect(result.metrics.timeToFirstOutputMs == 500)
        #expect(result.metrics.runMs == 3_010, "spawned at 10_000, exit seen at 13_010 (monotonic)")
        #expect(result.metrics.finalTimeoutMs == 3_000)
    }

    /// Last output at monotonic 100: the 2 s silence kill fires at 2_100, not at 2_099, whether
    /// the wall clock went an hour forward (which used to kill at once) or back (which used to
    /// let the silence go on for an hour).
    @Test func theSilenceKillFiresAtItsMonotonicTimeWithTheWallClockStepped() throws {
        var s = Self.supervisor()
        _ = s.handle(.spawned(pid: 7, nowMs: 0), at: Self.wall)
        _ = s.handle(.output(.stdout, Array("ready\n".utf8), nowMs: 100), at: Self.wall + 100)
        #expect(!Self.kills(s.handle(.wake(nowMs: 1_000), at: Self.wall + Self.step)))
        #expect(!Self.kills(s.handle(.wake(nowMs: 2_099), at: Self.wall - Self.step)))
        let killed = s.handle(.wake(nowMs: 2_100), at: Self.wall - Self.step)
        #expect(Self.kills(killed))
        #expect(killed.contains { if case .log(let line) = $0 { line.contains("no output for 2 s") } else { false } })
    }

    /// The pipeline's collection deadline (1_000 ms after the run ended at monotonic 5_000)
    /// is monotonic; a run that ends before it starts is dated by the wall clock.
    @Test func thePipelinesDeadlineIsMonotonicAndItsDatesAreTheWallClocks() throws {
        var limits = TaskPipeline.Limits()
        limits.collectMs = 1_000
        var p = TaskPipelineTests.pipeline(inputs: false, artifacts: true, limits: limits)
        _ = p.start(nowMs: 4_000)
        _ = p.handle(.prepared(.directory, problem: nil, nowMs: 4_001), at: Self.wall)
        let ended = p.handle(.runEnded(TaskPipelineTests.runResult(), nowMs: 5_000), at: Self.wall + Self.step)
        #expect(ended.contains(.armDeadline(atMs: 6_000)))
        #expect(p.handle(.deadline(nowMs: 5_999), at: Self.wall + 2 * Self.step) == [.armDeadline(atMs: 6_000)])
        let cut = try #require(TaskPipelineTests.finished(p.handle(.deadline(nowMs: 6_000), at: Self.wall - Self.step)))
        #expect(cut.metrics.collectMs == 1_000)

        var unstarted = TaskPipelineTests.pipeline(inputs: false)
        _ = unstarted.start(nowMs: 4_000)
        let failed = try #require(TaskPipelineTests.finished(
            unstarted.handle(.prepared(.directory, problem: "no room", nowMs: 4_250), at: Self.wall - Self.step)))
        #expect(failed.finishedAt == Self.wall - Self.step)
        #expect(failed.metrics.prepareMs == 250)
    }

    /// Health probes: due 30_000 ms (the check's interval) after a pass at monotonic 1_000,
    /// whatever the wall clock did; the status's `checkedAt` is the wall clock.
    @Test func healthProbesAreDueOnTheMonotonicClockAndDatedByTheWallClock() throws {
        let check = HealthCheckSpec(command: ["true"], timeoutMs: 1_000, intervalMs: 30_000, retryMs: 5_000)
        var monitor = HealthMonitor(runtimes: [RuntimeDefinition(name: "r", command: ["agent"], health: check)], nowMs: 0)
        #expect(monitor.due(nowMs: 0) == ["r"])
        monitor.probeStarted("r", nowMs: 0)
        monitor.probeFinished("r", passed: true, latencyMs: 1_000, detail: nil, nowMs: 1_000, at: Self.wall + Self.step)
        #expect(monitor.status("r")?.checkedAt == Self.wall + Self.step)
        #expect(monitor.nextDueMs == 31_000)
        #expect(monitor.due(nowMs: 30_999).isEmpty)
        #expect(monitor.due(nowMs: 31_000) == ["r"])
    }

    // MARK: Clocks

    /// The machine's monotonic clock is not the wall clock: it counts from the boot.
    @Test func systemClocksAreTwoClocks() {
        let mono = Clocks.system.monotonic(), wall = Clocks.system.wall()
        #expect(mono > 0 && mono < wall / 2, "monotonic \(mono), wall \(wall)")
        let micros = monotonicMicros()
        #expect(micros / 1_000 >= mono && micros / 1_000 - mono < 10_000)
    }
}
