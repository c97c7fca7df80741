import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmNode
@testable import SwarmCluster
@testable import SwarmClient

/// Issue 12 item 2: a burst is output after at least `burstGap` of quiet (default 1 s), not a
/// read. Pure, on a fake clock (milliseconds).
@Suite struct BurstTests {
    /// A clock started at 0 whose only verdicts are about bursts and extensions.
    static func clock(_ tweak: (inout TimeoutPolicy) -> Void = { _ in }) -> ProgressClock {
        var policy = TimeoutPolicy()
        policy.warnsOnSilence = false
        policy.killsOnSilence = false
        tweak(&policy)
        return ProgressClock(policy: policy, level: .simple, startedAt: 0)
    }

    static func bursts(at times: [Int64], _ tweak: (inout TimeoutPolicy) -> Void = { _ in }) -> Int {
        var c = clock(tweak)
        for t in times { _ = c.output(nowMs: t) }
        return c.bursts
    }

    @Test func oneLineSplitOverThreeReadsIsOneBurst() {
        #expect(TimeoutPolicy().burstGapMs == 1_000)
        #expect(Self.bursts(at: [5_000, 5_001, 5_002]) == 1)
    }

    @Test func threeLinesTwoSecondsApartAreThreeBursts() {
        #expect(Self.bursts(at: [5_000, 7_000, 9_000]) == 3)
    }

    /// "At least burstGap of quiet": exactly the gap separates, a millisecond less does not.
    @Test func theGapItselfSeparatesOneMillisecondLessDoesNot() {
        #expect(Self.bursts(at: [5_000, 6_000]) == 2)
        #expect(Self.bursts(at: [5_000, 5_999]) == 1)
        // The quiet is counted from the burst's last output; output with no such quiet starts
        // the next burst one gap after the current one began (6,800 here), not at every read.
        #expect(Self.bursts(at: [5_000, 5_900, 6_800, 7_799]) == 2)
        #expect(Self.bursts(at: [5_000, 5_500, 5_999]) == 1)
        #expect(Self.bursts(at: [5_000, 5_900, 6_900]) == 2)
        // Configured: a 250 ms gap.
        #expect(Self.bursts(at: [5_000, 5_250, 5_499]) { $0.burstGapMs = 250 } == 2)
        #expect(Self.bursts(at: [5_000, 5_249]) { $0.burstGapMs = 250 } == 1)
        // 0: every read is a burst (what a burst used to be).
        #expect(Self.bursts(at: [5_000, 5_000, 5_001]) { $0.burstGapMs = 0 } == 3)
    }

    /// The first output starts a burst however soon after the spawn: nothing came before it.
    @Test func theFirstOutputIsABurstEvenAtOnce() {
        #expect(Self.bursts(at: [0]) == 1)
        #expect(Self.bursts(at: [1, 2]) == 1)
        #expect(Self.bursts(at: []) == 0)
    }

    /// The issue's case: `--timeout 1`, one line in two writes 1 ms apart, then nothing. It
    /// used to count 2 bursts and move the deadline to 61 s; one burst is not enough.
    @Test func oneLineInTwoReadsDoesNotExtendAOneSecondTimeout() {
        var c = Self.clock { $0.initialOverrideMs = 1_000 }
        #expect(c.output(nowMs: 10).isEmpty)
        #expect(c.output(nowMs: 11).isEmpty)
        #expect(c.check(nowMs: 999).isEmpty)
        #expect(c.check(nowMs: 1_000) == [.timedOut(afterMs: 1_000)])
        #expect(c.bursts == 1 && c.extensions == 0)
        #expect(c.timeoutExplanation(nowMs: 1_000).hasPrefix("1 output burst(s) in its 1 s run"))
        // Two lines a second apart are progress.
        var d = Self.clock { $0.initialOverrideMs = 2_000 }
        _ = d.output(nowMs: 10)
        #expect(d.output(nowMs: 1_010) == [.extended(byMs: 60_000, deadlineMs: 62_000, bursts: 2)])
    }

    /// A steady stream with no pause of `burstGap` is output at separate moments too: a new
    /// burst each `burstGap` after the current one began (1 every 1 s here, whatever the
    /// reads), so an agent streaming for a minute is extended with the default `minBursts` 2.
    @Test func aSteadyStreamMakesOneBurstPerGapAndIsExtended() {
        var c = Self.clock { _ in }
        for t in stride(from: Int64(0), through: 59_900, by: 100) { _ = c.output(nowMs: t) }
        #expect(c.bursts == 60, "one per second of streaming, not one per read (600)")
        _ = c.check(nowMs: 60_000)
        #expect(c.extensions == 1 && c.deadline == 120_000)
        // Edges: 999 ms into a burst is the same burst; 1,000 ms starts the next.
        var e = Self.clock { _ in }
        _ = e.output(nowMs: 0)
        _ = e.output(nowMs: 500)
        _ = e.output(nowMs: 999)
        #expect(e.bursts == 1)
        _ = e.output(nowMs: 1_000)
        #expect(e.bursts == 2)
    }

    /// Through the supervisor, the issue's case: the run times out at its 1 s deadline and
    /// its result counts one burst.
    @Test func theSupervisorTimesOutTheIssuesCaseAndCountsOneBurst() throws {
        var spec = TaskSpec(command: ["agent"])
        spec.timeout = 1
        var s = TaskSupervisor(assignment: TaskAssignment(id: "t", attempt: 1, spec: spec))
        _ = s.handle(.spawned(pid: 7, nowMs: 0))
        // Nothing but the next wake-up: no extension event, no kill.
        func onlyRearms(_ actions: [SupervisorAction]) -> Bool { actions.allSatisfy { if case .armWake = $0 { true } else { false } } }
        #expect(onlyRearms(s.handle(.output(.stdout, Array("stubborn ".utf8), nowMs: 200))))
        #expect(onlyRearms(s.handle(.output(.stdout, Array("ready\n".utf8), nowMs: 201))))
        #expect(onlyRearms(s.handle(.wake(nowMs: 999))))
        #expect(s.handle(.wake(nowMs: 1_000)).contains(.signalGroup(15)))
        _ = s.handle(.streamClosed(.stdout, nowMs: 1_010))
        _ = s.handle(.streamClosed(.stderr, nowMs: 1_010))
        let result = try #require(SupervisorTests.finished(s.handle(.exited(status: 0, signal: 15, nowMs: 1_010))))
        #expect(result.state == .timedOut)
        #expect(result.reason?.hasPrefix("timed out after 1 s: 1 output burst(s) in its 1 s run") == true, "\(result.reason ?? "")")
        #expect(result.metrics.outputBursts == 1)
        #expect(result.metrics.extensions == 0)
        #expect(result.metrics.finalTimeoutMs == 1_000)
    }

    /// `burstGap` is a timeout key like the others: task field, `--file` key, submit flag,
    /// cluster and runtime `timeouts`, layered in that order and bounded the same way.
    @Test func burstGapIsATimeoutKeyEverywhere() throws {
        var cluster = TimeoutPolicy.Overrides()
        cluster.burstGap = 2
        var runtime = TimeoutPolicy.Overrides()
        runtime.burstGap = 0.5
        var spec = TaskSpec(runtime: "claude", prompt: "x")
        #expect(TimeoutPolicy().applying(cluster).resolved(for: spec).burstGapMs == 2_000)
        #expect(TimeoutPolicy().applying(cluster).applying(runtime).resolved(for: spec).burstGapMs == 500)
        spec.burstGap = 0.25
        #expect(TimeoutPolicy().applying(cluster).applying(runtime).resolved(for: spec).burstGapMs == 250)
        spec.burstGap = 0
        #expect(spec.problem() == nil)
        for bad in [-0.001, .nan, .infinity, TaskSpec.maxDurationSeconds + 1] {
            spec.burstGap = bad
            #expect(spec.problem()?.hasPrefix("burstGap must be a number of seconds from 0 to 2592000") == true, "\(bad)")
        }
        let file = try ClusterFile.parse(Data(#"""
            {"timeouts": {"burstGap": 3}, "runtimes": {"r": {"command": ["r"], "timeouts": {"burstGap": 0.1}}}}
            """#.utf8))
        #expect(file.timeouts.burstGap == 3)
        #expect(file.runtimes["r"]?.timeouts.burstGap == 0.1)
        for bad in [#"-1"#, #"2592001"#, #""1""#] {
            #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(#"{"timeouts": {"burstGap": \#(bad)}}"#.utf8)) }
        }
        let line = try TaskFile.parse(#"{"command": ["true"], "burstGap": 1.5}"#, fileName: "t.jsonl", baseDirectory: "/")
        #expect(line.first?.burstGap == 1.5)
        #expect(throws: TaskFileError.self) {
            try TaskFile.parse(#"{"command": ["true"], "burstGap": -1}"#, fileName: "t.jsonl", baseDirectory: "/")
        }
    }
}
