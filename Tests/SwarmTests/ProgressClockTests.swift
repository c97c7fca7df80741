import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// Progressive timeouts, extensions and silence heartbeats on a fake clock (milliseconds).
@Suite struct ProgressClockTests {
    /// The documented defaults: 60/120/180 s, max 240 s, +60 s within 30 s, 2 bursts in 30 s,
    /// warn at 45 s and kill at 90 s of silence.
    static func clock(_ level: ComplexityLevel = .simple, _ tweak: (inout TimeoutPolicy) -> Void = { _ in }) -> ProgressClock {
        var policy = TimeoutPolicy()
        tweak(&policy)
        return ProgressClock(policy: policy, level: level, startedAt: 0)
    }

    @Test func initialTimeoutFollowsComplexityAndTheTaskOverride() {
        #expect(Self.clock(.simple).deadline == 60_000)
        #expect(Self.clock(.moderate).deadline == 120_000)
        #expect(Self.clock(.complex).deadline == 180_000)
        #expect(Self.clock(.complex) { $0.initialOverrideMs = 5_000 }.deadline == 5_000)
        // A task's own timeout above the maximum raises the maximum with it.
        let long = Self.clock { $0.initialOverrideMs = 600_000 }
        #expect(long.deadline == 600_000 && long.maxDeadline == 600_000)
    }

    @Test func timesOutExactlyAtTheDeadlineWithoutProgress() {
        var c = Self.clock { $0.killsOnSilence = false; $0.warnsOnSilence = false }
        #expect(c.check(nowMs: 59_999).isEmpty)
        #expect(c.check(nowMs: 60_000) == [.timedOut(afterMs: 60_000)])
    }

    @Test func extendsOnlyInsideTheWindowWithEnoughRecentBursts() {
        var c = Self.clock(.simple) { $0.killsOnSilence = false; $0.warnsOnSilence = false }
        // Two bursts (a second apart) before the window opens (at 30 s): no extension yet.
        #expect(c.output(nowMs: 28_500).isEmpty)
        #expect(c.output(nowMs: 29_500).isEmpty)
        #expect(c.nextWakeMs(nowMs: 29_500) == 30_000)
        // At 30 s the deadline is 30 s away and both bursts are within 30 s: extended.
        #expect(c.check(nowMs: 30_000) == [.extended(byMs: 60_000, deadlineMs: 120_000, bursts: 2)])
        #expect(c.extensions == 1)
        // One burst in the window is not enough.
        var d = Self.clock { $0.killsOnSilence = false; $0.warnsOnSilence = false }
        #expect(d.output(nowMs: 45_000).isEmpty)
        #expect(d.check(nowMs: 59_000).isEmpty)
        #expect(d.check(nowMs: 60_000) == [.timedOut(afterMs: 60_000)])
        // Bursts older than the activity window do not count.
        var e = Self.clock { $0.killsOnSilence = false; $0.warnsOnSilence = false }
        _ = e.output(nowMs: 1_000)
        _ = e.output(nowMs: 2_000)
        #expect(e.check(nowMs: 31_001).isEmpty)
        #expect(e.check(nowMs: 32_001).isEmpty)
        #expect(e.extensions == 0)
    }

    @Test func extensionsStopAtTheMaximum() {
        var c = Self.clock { $0.killsOnSilence = false; $0.warnsOnSilence = false }
        var now: Int64 = 0
        var verdicts: [ProgressClock.Verdict] = []
        // Steady output every second: extended until the 240 s maximum, then timed out there.
        while now <= 300_000 {
            now += 1_000
            verdicts += c.output(nowMs: now)
            if verdicts.last.map({ if case .timedOut = $0 { true } else { false } }) == true { break }
        }
        #expect(c.extensions == 3)
        #expect(c.deadline == 240_000)
        #expect(verdicts.last == .timedOut(afterMs: 240_000))
        #expect(now == 240_000)
    }

    @Test func silenceWarnsOnceThenKillsAndOutputResetsIt() {
        var c = Self.clock(.complex)
        #expect(c.check(nowMs: 44_999).isEmpty)
        #expect(c.check(nowMs: 45_000) == [.silenceWarning(silentMs: 45_000)])
        #expect(c.check(nowMs: 50_000).isEmpty)  // warned once per silence
        #expect(c.nextWakeMs(nowMs: 50_000) == 90_000)
        // Output (stdout or stderr alike) resets the clock; a new silence warns again.
        #expect(c.output(nowMs: 60_000).isEmpty)
        #expect(c.check(nowMs: 104_999).isEmpty)
        #expect(c.check(nowMs: 105_000) == [.silenceWarning(silentMs: 45_000)])
        #expect(c.silenceWarnings == 2)
        #expect(c.check(nowMs: 150_000) == [.silenceKill(silentMs: 90_000)])
    }

    @Test func streamedOutputKeepsSilenceFromKillingBeforeTheTimeout() {
        // The original's defect: output arrived only at the end, so the 90 s silence kill
        // always beat the 120/180/240 s timeouts. Output every 60 s is never 90 s of silence:
        // it is warned at 45 s of each gap and times out at 120 s (one burst per 30 s window
        // is not progress enough to extend).
        var c = Self.clock(.moderate)
        var verdicts: [ProgressClock.Verdict] = []
        for now in stride(from: Int64(5_000), through: 125_000, by: 5_000) {
            verdicts += now % 60_000 == 0 ? c.output(nowMs: now) : c.check(nowMs: now)
        }
        #expect(!verdicts.contains { if case .silenceKill = $0 { true } else { false } })
        #expect(verdicts.filter { if case .silenceWarning = $0 { true } else { false } }.count == 2)
        #expect(verdicts.last == .timedOut(afterMs: 120_000))
    }

    @Test func complexityScoresWholeWordsWithTheOriginalWeights() {
        // "authentication" contains "then" and "test" no word here: the original's substring
        // matching scored it; whole words do not.
        #expect(Complexity.score(objective: "fix authentication", requirements: [], contextCharacters: 0).score == 0)
        #expect(Complexity.score(objective: "Read the file", requirements: [], contextCharacters: 0).score == 2)
        #expect(Complexity.score(objective: "delegate to parallel subagents", requirements: [], contextCharacters: 0).score == 4)
        #expect(Complexity.score(objective: "research and implement, then test it", requirements: [], contextCharacters: 0).score == 8)
        #expect(Complexity.score(objective: "a multi-step plan", requirements: ["a", "b", "c", "d"], contextCharacters: 1_001).score == 5)
        #expect(ComplexityLevel(score: 2) == .simple && ComplexityLevel(score: 3) == .moderate && ComplexityLevel(score: 6) == .complex)
        var spec = TaskSpec(runtime: "claude", prompt: "x")
        spec.complexity = "complex"
        #expect(Complexity.assess(spec).level == .complex)
        spec.complexity = "4"
        #expect(Complexity.assess(spec) == (.moderate, 4))
        spec.complexity = "hard"
        #expect(spec.problem()?.contains("complexity") == true)
    }

    @Test func policiesLayerConfigRuntimeAndTask() {
        var config = TimeoutPolicy.Overrides()
        config.simple = 10
        config.silenceKill = 20
        var runtime = TimeoutPolicy.Overrides()
        runtime.silenceKill = 30
        var spec = TaskSpec(runtime: "claude", prompt: "x")
        spec.killGrace = 0.25
        let p = TimeoutPolicy().applying(config).applying(runtime).resolved(for: spec)
        #expect(p.simpleMs == 10_000 && p.silenceKillMs == 30_000 && p.killGraceMs == 250 && p.silenceWarnMs == 45_000)
        // A plain command gets only the checks it asks for.
        let plain = TimeoutPolicy().resolved(for: TaskSpec(command: ["make"]))
        #expect(!plain.enforcesDeadline && !plain.killsOnSilence && !plain.warnsOnSilence)
    }

    @Test func healthProbesAreCachedAndRetriedAfterFailure() {
        let check = HealthCheckSpec(command: ["claude", "--version"], timeoutMs: 10_000, intervalMs: 60_000, retryMs: 5_000)
        var m = HealthMonitor(runtimes: [RuntimeDefinition(name: "claude", command: ["claude"], health: check),
                                         RuntimeDefinition(name: "shell", command: ["sh"])], nowMs: 0)
        #expect(m.status("shell")?.healthy == true)
        #expect(m.status("claude")?.healthy == false)
        #expect(m.due(nowMs: 0) == ["claude"])
        m.probeStarted("claude", nowMs: 0)
        #expect(m.due(nowMs: 0).isEmpty && m.probingCount == 1)
        let changed = m.probeFinished("claude", passed: true, latencyMs: 40, detail: nil, nowMs: 40, at: 40)
        #expect(changed)
        #expect(m.due(nowMs: 59_000).isEmpty)
        #expect(m.due(nowMs: 60_040) == ["claude"])
        m.probeStarted("claude", nowMs: 60_040)
        let failed = m.probeFinished("claude", passed: false, latencyMs: 10_000, detail: "timed out", nowMs: 70_040, at: 70_040)
        #expect(failed)
        #expect(m.nextDueMs == 75_040)
        // A task failure asks for a probe, but not more often than retryMs.
        m.probeStarted("claude", nowMs: 75_040)
        m.probeFinished("claude", passed: true, latencyMs: 10, detail: nil, nowMs: 75_050, at: 75_050)
        m.taskFailed("claude", nowMs: 76_000)
        #expect(m.nextDueMs == 80_040)
        #expect(m.status("claude")?.passed == 2 && m.status("claude")?.failed == 1)
    }

    @Test func runtimeTemplatesFillModelAndPrompt() throws {
        let r = RuntimeDefinition(name: "claude", command: ["claude", "-p", "--model", "{model}", "--id={id}"])
        #expect(try r.argv(model: "opus", prompt: "p", id: "t1", contextFile: nil, workDir: "/w").get() == ["claude", "-p", "--model", "opus", "--id=t1"])
        #expect(throws: RuntimeError.needsModel("claude")) { try r.argv(model: nil, prompt: "p", id: "t1", contextFile: nil, workDir: "/w").get() }
        var spec = TaskSpec(runtime: "claude", prompt: "Do it")
        spec.context = .object(["a": .string(String(repeating: "y", count: 600))])
        #expect(AgentPrompt.placement(of: spec, inlineLimit: 500) != .inline)
        #expect(AgentPrompt.placement(of: spec, inlineLimit: 1_000) == .inline)
        let text = AgentPrompt.text(for: spec, contextFile: "/w/.swarm/context/t1.json")
        #expect(text.hasPrefix("Do it") && text.contains("/w/.swarm/context/t1.json") && !text.contains("yyyy"))
    }
}
