import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// Issue 12 item 6: `TaskSupervisor.handle` decides every (state, event) pair, with no
/// `default:`. The pairs a `default:` used to swallow are checked here one by one: the late
/// ones a race makes normal do nothing; those the shell can never send are logged (one
/// failure path) and change nothing.
@Suite struct SupervisorTransitionTests {
    typealias S = TaskSupervisor.State

    /// A supervisor in `state`: spawned at 1000 with "hi\n" read, then killed at 2000
    /// (killing), or exited at 2000 with its pipes open (draining), or ended (finished).
    static func supervisor(in state: S) -> TaskSupervisor {
        var s = SupervisorTests.make()
        switch state {
        case .starting: return s
        case .running: return SupervisorTests.running()
        case .killing:
            s = SupervisorTests.running()
            _ = s.handle(.killRequested(reason: "cancelled by user", state: .cancelled, nowMs: 2_000))
        case .draining:
            s = SupervisorTests.running()
            _ = s.handle(.exited(status: 0, signal: 0, nowMs: 2_000))
        case .finished:
            s = SupervisorTests.running()
            _ = s.handle(.streamClosed(.stdout, nowMs: 1_500))
            _ = s.handle(.streamClosed(.stderr, nowMs: 1_500))
            _ = s.handle(.exited(status: 0, signal: 0, nowMs: 2_000))
        }
        #expect(s.state == state)
        return s
    }

    /// One event of each kind, at 3000.
    static let events: [SupervisorEvent] = [
        .spawned(pid: 99, nowMs: 3_000), .spawnFailed(reason: "x", nowMs: 3_000),
        .output(.stdout, Array("late\n".utf8), nowMs: 3_000), .streamClosed(.stdout, nowMs: 3_000),
        .exited(status: 1, signal: 0, nowMs: 3_000), .wake(nowMs: 3_000), .drainTimerFired(nowMs: 3_000),
        .graceTimerFired(nowMs: 3_000), .killRequested(reason: "again", state: .timedOut, nowMs: 3_000),
        .hurryKill(nowMs: 3_000),
    ]

    /// Late but normal: nothing to do, nothing said.
    static let late: Set<String> = [
        "finished spawned", "finished spawnFailed", "finished output", "finished streamClosed", "finished exited",
        "finished wake", "finished drainTimerFired", "finished graceTimerFired", "finished killRequested",
        "finished hurryKill", "killing killRequested", "killing wake", "draining wake", "draining graceTimerFired",
        "starting hurryKill", "running hurryKill", "draining hurryKill",
    ]

    /// Never sent in that state: one log line, nothing else.
    static let unexpected: Set<String> = [
        "starting exited", "starting wake", "starting drainTimerFired", "starting graceTimerFired",
        "starting killRequested", "running spawned", "running spawnFailed", "running drainTimerFired",
        "running graceTimerFired", "killing spawned", "killing spawnFailed", "killing drainTimerFired",
        "draining spawned", "draining spawnFailed", "draining exited",
    ]

    @Test func ignoredPairsChangeNothingAndOnlyTheImpossibleOnesAreLogged() {
        let states: [S] = [.starting, .running, .killing, .draining, .finished]
        var decided = 0
        for state in states {
            for event in Self.events {
                let pair = "\(state) \(event.name)"
                guard Self.late.contains(pair) || Self.unexpected.contains(pair) else { continue }
                decided += 1
                var s = Self.supervisor(in: state)
                let tailBefore = s.tail.totalBytes, sigkillBefore = s.sigkillAtMs
                let actions = s.handle(event)
                #expect(s.state == state, "\(pair)")
                #expect(s.tail.totalBytes == tailBefore, "\(pair)")
                #expect(s.sigkillAtMs == sigkillBefore, "\(pair)")
                if Self.late.contains(pair) {
                    #expect(actions.isEmpty, "\(pair): \(actions)")
                } else {
                    #expect(actions == [.log("ignored \(event.name) while \(state): not expected in this state")], "\(pair): \(actions)")
                }
            }
        }
        #expect(decided == Self.late.count + Self.unexpected.count)
        #expect(Self.late.isDisjoint(with: Self.unexpected))
    }

    /// A stale grace timer must not SIGKILL a run that is not being killed, nor a drain timer
    /// end one that has not exited.
    @Test func strayTimersNeitherKillNorFinishARunningTask() {
        var s = SupervisorTests.running()
        #expect(SupervisorTests.effects(s.handle(.graceTimerFired(nowMs: 2_000))).isEmpty)
        #expect(SupervisorTests.effects(s.handle(.drainTimerFired(nowMs: 2_000))).isEmpty)
        #expect(SupervisorTests.effects(s.handle(.hurryKill(nowMs: 2_000))).isEmpty)
        #expect(s.state == .running)
        // It still runs normally afterwards.
        _ = s.handle(.streamClosed(.stdout, nowMs: 2_100))
        _ = s.handle(.streamClosed(.stderr, nowMs: 2_100))
        #expect(SupervisorTests.finished(s.handle(.exited(status: 0, signal: 0, nowMs: 2_200)))?.state == .succeeded)
    }

    /// A second exit while draining neither restarts the drain nor replaces the first status.
    @Test func aDoubleExitKeepsTheFirstStatus() throws {
        var s = SupervisorTests.running()
        #expect(SupervisorTests.effects(s.handle(.exited(status: 3, signal: 0, nowMs: 2_000))) == [.startDrainTimer(ms: 150)])
        #expect(SupervisorTests.effects(s.handle(.exited(status: 0, signal: 9, nowMs: 2_010))).isEmpty)
        let r = try #require(SupervisorTests.finished(s.handle(.drainTimerFired(nowMs: 2_150))))
        #expect(r.state == .failed && r.exitCode == 3 && r.signal == nil)
    }

    /// Output after the exit (while draining) is kept; after the finish it is dropped.
    @Test func outputAfterTheExitIsKeptUntilTheFinish() throws {
        var s = SupervisorTests.running()
        _ = s.handle(.exited(status: 0, signal: 0, nowMs: 2_000))
        #expect(s.handle(.output(.stderr, Array("bye".utf8), nowMs: 2_050)).isEmpty)
        _ = s.handle(.streamClosed(.stdout, nowMs: 2_060))
        let r = try #require(SupervisorTests.finished(s.handle(.streamClosed(.stderr, nowMs: 2_070))))
        #expect(r.output == "hi\nbye")
        #expect(s.handle(.output(.stdout, Array("ghost".utf8), nowMs: 2_080)).isEmpty)
        #expect(s.tail.text == "hi\nbye")
    }

    /// A kill after the exit: the run's own outcome stands and the leftovers are ended now; a
    /// kill after the finish does nothing.
    @Test func aKillAfterTheExitEndsTheLeftoversWithTheRunsOwnOutcome() throws {
        var s = SupervisorTests.running()
        _ = s.handle(.exited(status: 0, signal: 0, nowMs: 2_000))
        let actions = s.handle(.killRequested(reason: "cancelled by user", state: .cancelled, nowMs: 2_050))
        let r = try #require(SupervisorTests.finished(actions))
        #expect(SupervisorTests.effects(actions) == [.signalGroup(9), .finish(r)])
        #expect(r.state == .succeeded && r.reason == nil && r.finishedAt == 2_050)
        #expect(s.handle(.killRequested(reason: "again", state: .cancelled, nowMs: 2_060)).isEmpty)
        #expect(s.handle(.hurryKill(nowMs: 2_070)).isEmpty)
    }

    /// Output while a kill is under way is kept and counted as bursts, but it moves no
    /// deadline: it used to run the extension check, so a dying run's metrics could show an
    /// extension (and a final timeout) it never had.
    @Test func outputWhileKillingIsCountedButExtendsNothing() throws {
        var spec = TaskSpec(command: ["agent"])
        spec.timeout = 1
        var s = TaskSupervisor(assignment: TaskAssignment(id: "t", attempt: 1, spec: spec))
        _ = s.handle(.spawned(pid: 7, nowMs: 0))
        _ = s.handle(.output(.stdout, Array("stubborn ".utf8), nowMs: 10))
        _ = s.handle(.output(.stdout, Array("ready\n".utf8), nowMs: 11))
        #expect(s.handle(.wake(nowMs: 1_000)).contains(.signalGroup(15)))
        #expect(s.state == .killing)
        // Two more moments while it dies: kept, counted, no extension.
        #expect(s.handle(.output(.stdout, Array("a\n".utf8), nowMs: 1_100)).isEmpty)
        #expect(s.handle(.output(.stdout, Array("b\n".utf8), nowMs: 2_100)).isEmpty)
        _ = s.handle(.streamClosed(.stdout, nowMs: 2_200))
        _ = s.handle(.streamClosed(.stderr, nowMs: 2_200))
        let result = try #require(SupervisorTests.finished(s.handle(.exited(status: 0, signal: 15, nowMs: 2_200))))
        #expect(result.state == .timedOut)
        #expect(result.output == "stubborn ready\na\nb\n")
        #expect(result.metrics.outputBursts == 3)
        #expect(result.metrics.extensions == 0)
        #expect(result.metrics.finalTimeoutMs == 1_000)
    }

    /// Every event has a name of its own (the log line of the failure path uses it).
    @Test func everyEventHasItsOwnName() {
        #expect(Set(Self.events.map(\.name)).count == Self.events.count)
    }
}
