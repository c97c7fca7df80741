import Testing
@testable import SwarmProtocol
@testable import SwarmNode
@testable import SwarmCluster

/// Issue 10 item 17: a timed-out run's reason names the limit that ended it. Item 5 (pure
/// part): a second signal hurries a kill under way (SIGKILL now), and the stop line says
/// what is being waited for.
@Suite struct KillReasonTests {
    /// A plain command with these task fields, spawned at 0.
    static func running(_ tweak: (inout TaskSpec) -> Void) -> TaskSupervisor {
        var spec = TaskSpec(command: ["agent"])
        tweak(&spec)
        var s = TaskSupervisor(assignment: TaskAssignment(id: "t", attempt: 1, spec: spec))
        _ = s.handle(.spawned(pid: 42, nowMs: 0))
        return s
    }

    /// Feeds output every `everyMs` and wakes up every 100 ms until a kill; returns its reason.
    static func killReason(_ s: inout TaskSupervisor, everyMs: Int64?, until endMs: Int64 = 600_000) -> String? {
        var now: Int64 = 0
        while now < endMs {
            now += 100
            let event: SupervisorEvent = everyMs.map { now % $0 == 0 } == true
                ? .output(.stdout, Array("tick\n".utf8), nowMs: now) : .wake(nowMs: now)
            for action in s.handle(event) {
                if case .log(let line) = action, line.hasPrefix("killing process group: ") {
                    return String(line.dropFirst("killing process group: ".count))
                }
            }
        }
        return nil
    }

    @Test func chattyRunStoppedByMaxTimeoutNamesIt() throws {
        // The case: --max-timeout 3, output every second.
        var s = Self.running { $0.maxTimeout = 3 }
        let reason = try #require(Self.killReason(&s, everyMs: 1_000))
        #expect(reason == "timed out after 3 s: reached --max-timeout 3 s (the most extensions allow)")
        #expect(!reason.contains("no progress"))
    }

    @Test func extendedRunStoppedAtTheMaximumCountsItsExtensions() throws {
        var s = Self.running { $0.timeout = 60 }
        let reason = try #require(Self.killReason(&s, everyMs: 1_000))
        #expect(reason == "timed out after 240 s: reached --max-timeout 240 s (after 3 extension(s))")
    }

    @Test func silentRunNamesTheMissingOutput() throws {
        var s = Self.running { $0.timeout = 60 }
        let reason = try #require(Self.killReason(&s, everyMs: nil))
        #expect(reason.hasPrefix("timed out after 60 s: no output in the last 30 s before the 60 s deadline"))
        #expect(reason.contains("up to --max-timeout 240 s"))
    }

    @Test func tooFewBurstsAreCounted() throws {
        var s = Self.running { $0.timeout = 60 }
        _ = s.handle(.output(.stdout, Array("once\n".utf8), nowMs: 50_000))
        let reason = try #require(Self.killReason(&s, everyMs: nil))
        #expect(reason.hasPrefix("timed out after 60 s: 1 output burst(s) in the last 30 s before the 60 s deadline, 2 needed to extend it"))
    }

    @Test func timeoutBeyondTheMaximumSaysItCannotBeExtended() throws {
        var s = Self.running { $0.timeout = 5; $0.maxTimeout = 2 }
        let reason = try #require(Self.killReason(&s, everyMs: 1_000))
        #expect(reason == "timed out after 5 s: reached --timeout 5 s, which is beyond --max-timeout 2 s, so it cannot be extended")
    }

    @Test func extensionsOffSaysSo() throws {
        var s = Self.running { $0.timeout = 10; $0.extendBy = 0 }
        let reason = try #require(Self.killReason(&s, everyMs: 1_000))
        #expect(reason == "timed out after 10 s: reached the 10 s deadline (extensions are off: --extend-by 0)")
    }

    /// `--extend-within 0` is "never extend", like `--extend-by 0`: a chatty task stops at its
    /// first deadline (it used to be extended at the deadline itself, up to 240 s).
    @Test func extendWithinZeroNeverExtends() throws {
        var s = Self.running { $0.timeout = 2; $0.extendWithin = 0 }
        let reason = try #require(Self.killReason(&s, everyMs: 100))
        #expect(reason == "timed out after 2 s: reached the 2 s deadline (extensions are off: --extend-within 0)")
        var policy = TimeoutPolicy()
        policy.extendWithinMs = 0
        var clock = ProgressClock(policy: policy, level: .simple, startedAt: 0)
        for t in stride(from: Int64(1_000), through: 60_000, by: 1_000) { _ = clock.output(nowMs: t) }
        #expect(clock.check(nowMs: 60_000) == [.timedOut(afterMs: 60_000)])
        #expect(clock.extensions == 0)
    }

    /// A run shorter than the activity window: its bursts are counted over the run, and said so.
    @Test func aRunShorterThanTheWindowIsNotSaidToHaveHadItsLast30Seconds() throws {
        var s = Self.running { $0.timeout = 1 }
        let reason = try #require(Self.killReason(&s, everyMs: nil))
        #expect(reason.hasPrefix("timed out after 1 s: 0 output burst(s) in its 1 s run before the 1 s deadline, 2 needed to extend it"), "\(reason)")
    }

    // MARK: Item 5: hurried kills

    @Test func hurryKillSendsSigkillAtOnceAndOnlyOnce() {
        var s = Self.running { _ in }
        let kill = s.handle(.killRequested(reason: "worker stopping", state: .lost, nowMs: 1_000))
        #expect(kill.contains(.signalGroup(15)))
        #expect(s.sigkillAtMs == 6_000)  // the default 5 s grace
        let hurried = s.handle(.hurryKill(nowMs: 1_500))
        #expect(hurried.contains(.signalGroup(9)))
        #expect(s.sigkillAtMs == 1_500)
        // A third signal and the grace timer add nothing: SIGKILL went already.
        #expect(s.handle(.hurryKill(nowMs: 1_600)).isEmpty)
        #expect(s.handle(.graceTimerFired(nowMs: 6_000)).isEmpty)
        // The run still ends the normal way, with the kill's outcome.
        _ = s.handle(.exited(status: 0, signal: 9, nowMs: 1_700))
        _ = s.handle(.streamClosed(.stdout, nowMs: 1_700))
        let end = s.handle(.streamClosed(.stderr, nowMs: 1_700))
        let result = end.compactMap { if case .finish(let r) = $0 { r } else { nil } }.first
        #expect(result?.state == .lost)
    }

    @Test func hurryBeforeAnyKillDoesNothing() {
        var s = Self.running { _ in }
        #expect(s.handle(.hurryKill(nowMs: 10)).isEmpty)
        #expect(s.state == .running)
    }

    @Test func stopLineSaysWhatIsAwaited() {
        typealias P = WorkerAgent.StopProgress
        #expect(StopReporter.line([P(worker: "worker-1", tasks: 0, probes: 0, sigkillInMs: nil)]) == nil)
        #expect(StopReporter.line([P(worker: "worker-1", tasks: 3, probes: 0, sigkillInMs: 4_200)])
                == "stopping: waiting for 3 tasks on worker-1 (SIGKILL in 5 s; Ctrl-C again to kill now)")
        #expect(StopReporter.line([P(worker: "w1", tasks: 1, probes: 1, sigkillInMs: nil),
                                   P(worker: "w2", tasks: 0, probes: 0, sigkillInMs: nil),
                                   P(worker: "w3", tasks: 2, probes: 0, sigkillInMs: 900)])
                == "stopping: waiting for 1 task and 1 health probe on w1, 2 tasks on w3 (SIGKILL in 1 s; Ctrl-C again to kill now)")
        #expect(StopReporter.line([P(worker: "w1", tasks: 2, probes: 0, sigkillInMs: nil)])
                == "stopping: waiting for 2 tasks on w1 (SIGKILL sent; waiting for their processes to end)")
    }
}
