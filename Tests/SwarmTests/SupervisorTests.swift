import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// `TaskSupervisor` driven with made-up events and times, and `OutputTail`.
@Suite struct SupervisorTests {
    static let assignment = TaskAssignment(id: "job-7", command: ["sh", "-c", "echo hi"], env: nil, attempt: 3)
    static let settings = TaskSupervisor.Settings(drainMs: 150, killGraceMs: 4_000)

    static func make() -> TaskSupervisor { TaskSupervisor(assignment: assignment, settings: settings) }

    /// The actions without log lines.
    static func effects(_ actions: [SupervisorAction]) -> [SupervisorAction] {
        actions.filter { if case .log = $0 { false } else { true } }
    }

    static func finished(_ actions: [SupervisorAction]) -> TaskResult? {
        for a in actions { if case .finish(let r) = a { return r } }
        return nil
    }

    /// spawned at 1000, then "hi\n" on stdout.
    static func running() -> TaskSupervisor {
        var s = Self.make()
        _ = s.handle(.spawned(pid: 321, nowMs: 1_000))
        _ = s.handle(.output(.stdout, Array("hi\n".utf8), nowMs: 1_001))
        return s
    }

    @Test func cleanExitSucceeds() throws {
        var s = Self.make()
        #expect(s.state == .starting)
        let spawned = s.handle(.spawned(pid: 321, nowMs: 1_000))
        #expect(s.state == .running)
        #expect(Self.effects(spawned).isEmpty)
        #expect(s.handle(.output(.stdout, Array("hello ".utf8), nowMs: 1_010)).isEmpty)
        #expect(s.handle(.output(.stderr, Array("world".utf8), nowMs: 1_020)).isEmpty)
        #expect(s.handle(.streamClosed(.stdout, nowMs: 1_030)).isEmpty)
        #expect(s.handle(.streamClosed(.stderr, nowMs: 1_040)).isEmpty)
        #expect(!s.isFinished)
        let actions = s.handle(.exited(status: 0, signal: 0, nowMs: 1_050))
        var expected = TaskResult(id: "job-7", state: .succeeded, exitCode: 0, signal: nil, reason: nil,
                                  output: "hello world", pid: 321, attempt: 3, startedAt: 1_000, finishedAt: 1_050)
        expected.metrics.complexity = "simple"
        expected.metrics.complexityScore = 0
        expected.metrics.outputBytes = 11
        expected.metrics.outputBursts = 1  // 10 ms apart: one moment of output
        expected.metrics.firstOutputAt = 1_010
        expected.metrics.timeToFirstOutputMs = 10
        expected.metrics.runMs = 50  // spawned at 1_000, exit seen at 1_050 (monotonic)
        // A plain command without timeouts of its own: no deadline is enforced or reported.
        #expect(expected.metrics.initialTimeoutMs == nil)
        #expect(Self.effects(actions) == [.signalGroup(9), .finish(expected)])
        // The group kill comes before the finish.
        let kill = try #require(actions.firstIndex(of: .signalGroup(9)))
        let finish = try #require(actions.firstIndex(of: .finish(expected)))
        #expect(kill < finish)
        #expect(s.state == .finished)
        #expect(s.isFinished)
    }

    @Test func nonZeroExitFails() throws {
        var s = Self.running()
        _ = s.handle(.streamClosed(.stdout, nowMs: 1_100))
        _ = s.handle(.streamClosed(.stderr, nowMs: 1_100))
        let r = try #require(Self.finished(s.handle(.exited(status: 2, signal: 0, nowMs: 1_200))))
        #expect(r.state == .failed)
        #expect(r.exitCode == 2)
        #expect(r.signal == nil)
        #expect(r.reason == "exited with code 2")
        #expect(r.output == "hi\n")
    }

    @Test func exitBySignalFails() throws {
        var s = Self.running()
        _ = s.handle(.streamClosed(.stdout, nowMs: 1_100))
        _ = s.handle(.streamClosed(.stderr, nowMs: 1_100))
        let r = try #require(Self.finished(s.handle(.exited(status: 0, signal: 11, nowMs: 1_200))))
        #expect(r.state == .failed)
        #expect(r.signal == 11)
        #expect(r.exitCode == nil)
        #expect(r.reason == "killed by signal 11")
    }

    @Test func exitWithOpenStreamsStartsDrainTimer() throws {
        var s = Self.running()
        _ = s.handle(.streamClosed(.stderr, nowMs: 1_100))
        let atExit = s.handle(.exited(status: 0, signal: 0, nowMs: 1_200))
        #expect(Self.effects(atExit) == [.startDrainTimer(ms: 150)])
        #expect(s.state == .draining)
        // Output still arriving while draining is kept.
        #expect(s.handle(.output(.stdout, Array("late".utf8), nowMs: 1_250)).isEmpty)
        let actions = s.handle(.drainTimerFired(nowMs: 1_350))
        let r = try #require(Self.finished(actions))
        #expect(Self.effects(actions).first == .signalGroup(9))
        #expect(r.state == .succeeded)
        #expect(r.exitCode == 0)
        #expect(r.finishedAt == 1_350)
        #expect(r.output == "hi\nlate")
        #expect(s.isFinished)
    }

    @Test func streamsClosingAfterExitFinishWithoutTimer() throws {
        var s = Self.running()
        let atExit = s.handle(.exited(status: 0, signal: 0, nowMs: 1_200))
        #expect(Self.effects(atExit) == [.startDrainTimer(ms: 150)])
        #expect(s.handle(.streamClosed(.stdout, nowMs: 1_210)).isEmpty)
        let actions = s.handle(.streamClosed(.stderr, nowMs: 1_220))
        #expect(!actions.contains { if case .startDrainTimer = $0 { true } else { false } })
        let r = try #require(Self.finished(actions))
        #expect(Self.effects(actions) == [.signalGroup(9), .finish(r)])
        #expect(r.finishedAt == 1_220)
        #expect(r.state == .succeeded)
        // The drain timer firing later changes nothing.
        #expect(s.handle(.drainTimerFired(nowMs: 1_350)).isEmpty)
    }

    @Test func spawnFailure() throws {
        var s = Self.make()
        let actions = s.handle(.spawnFailed(reason: "command not found: sh", nowMs: 500))
        let r = try #require(Self.finished(actions))
        var expected = TaskResult(id: "job-7", state: .spawnFailed, exitCode: nil, signal: nil,
                                  reason: "command not found: sh", output: "", pid: nil, attempt: 3,
                                  startedAt: nil, finishedAt: 500)
        expected.metrics.complexity = "simple"
        expected.metrics.complexityScore = 0
        #expect(r == expected)
        // No process, so no group to signal.
        #expect(Self.effects(actions) == [.finish(r)])
        #expect(s.isFinished)
    }

    @Test func killSendsTermThenKillAfterGrace() throws {
        var s = Self.running()
        let kill = s.handle(.killRequested(reason: "cancelled by user", state: .cancelled, nowMs: 2_000))
        #expect(Self.effects(kill) == [.signalGroup(15), .startGraceTimer(ms: 4_000)])
        #expect(s.state == .killing)
        let grace = s.handle(.graceTimerFired(nowMs: 6_000))
        #expect(Self.effects(grace) == [.signalGroup(9)])
        #expect(s.state == .killing)
        // A second kill request while killing does not restart anything.
        #expect(Self.effects(s.handle(.killRequested(reason: "again", state: .timedOut, nowMs: 6_001))).isEmpty)
    }

    @Test func exitAfterKillCarriesTheKillsOutcome() throws {
        var s = Self.running()
        _ = s.handle(.killRequested(reason: "cancelled by user", state: .cancelled, nowMs: 2_000))
        _ = s.handle(.streamClosed(.stdout, nowMs: 2_010))
        _ = s.handle(.streamClosed(.stderr, nowMs: 2_010))
        let actions = s.handle(.exited(status: 0, signal: 15, nowMs: 2_020))
        let r = try #require(Self.finished(actions))
        #expect(r.state == .cancelled)
        #expect(r.reason == "cancelled by user")
        #expect(r.signal == 15)
        #expect(r.exitCode == nil)
        #expect(r.startedAt == 1_000)
        #expect(r.finishedAt == 2_020)
        #expect(Self.effects(actions) == [.signalGroup(9), .finish(r)])
    }

    @Test func timeoutKillWithDrainKeepsTimedOut() throws {
        var s = Self.running()
        _ = s.handle(.killRequested(reason: "ran past 1s", state: .timedOut, nowMs: 2_000))
        #expect(Self.effects(s.handle(.exited(status: 0, signal: 9, nowMs: 6_000))) == [.startDrainTimer(ms: 150)])
        let r = try #require(Self.finished(s.handle(.drainTimerFired(nowMs: 6_150))))
        #expect(r.state == .timedOut)
        #expect(r.reason == "ran past 1s")
        #expect(r.signal == 9)
    }

    @Test func eventsAfterFinishProduceNothing() throws {
        var s = Self.make()
        _ = s.handle(.spawned(pid: 1, nowMs: 1))
        _ = s.handle(.streamClosed(.stdout, nowMs: 2))
        _ = s.handle(.streamClosed(.stderr, nowMs: 2))
        #expect(Self.finished(s.handle(.exited(status: 0, signal: 0, nowMs: 3))) != nil)
        let after: [SupervisorEvent] = [
            .output(.stdout, [0x41], nowMs: 4), .streamClosed(.stdout, nowMs: 4),
            .exited(status: 1, signal: 0, nowMs: 5), .drainTimerFired(nowMs: 6), .graceTimerFired(nowMs: 7),
            .killRequested(reason: "x", state: .cancelled, nowMs: 8), .spawned(pid: 2, nowMs: 9),
            .spawnFailed(reason: "y", nowMs: 10),
        ]
        for event in after { #expect(s.handle(event).isEmpty) }
        #expect(s.tail.totalBytes == 0)
        #expect(s.state == .finished)
    }

    @Test func timestampsComeFromTheEvents() throws {
        var s = Self.make()
        _ = s.handle(.spawned(pid: 9, nowMs: 1_700_000_000_111))
        _ = s.handle(.streamClosed(.stdout, nowMs: 1_700_000_000_500))
        _ = s.handle(.streamClosed(.stderr, nowMs: 1_700_000_000_600))
        let r = try #require(Self.finished(s.handle(.exited(status: 0, signal: 0, nowMs: 1_700_000_000_999))))
        #expect(r.startedAt == 1_700_000_000_111)
        #expect(r.finishedAt == 1_700_000_000_999)
        #expect(r.pid == 9)
    }

    // MARK: OutputTail

    @Test func tailKeepsEverythingUnderCapacity() {
        var tail = OutputTail(capacity: 8)
        tail.append(Array("abc".utf8))
        tail.append(Array("de".utf8))
        #expect(tail.text == "abcde")
        #expect(tail.count == 5)
        #expect(tail.totalBytes == 5)
    }

    @Test func tailMatchesTheOutputsSuffixForAnyChunking() {
        var rng = SystemRandomNumberGenerator()
        for capacity in [1, 3, 7, 16] {
            var tail = OutputTail(capacity: capacity)
            var all: [UInt8] = []
            for _ in 0..<40 {
                let chunk = (0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                tail.append(chunk)
                all += chunk
                #expect(tail.bytes == Array(all.suffix(capacity)))
                #expect(tail.count == min(capacity, all.count))
            }
        }
    }

    @Test func tailKeepsOnlyTheLastBytesAcrossWrapAround() {
        var tail = OutputTail(capacity: 4)
        tail.append([1, 2, 3])
        tail.append([4, 5, 6])
        #expect(tail.bytes == [3, 4, 5, 6])
        tail.append([7])
        #expect(tail.bytes == [4, 5, 6, 7])
        tail.append([8, 9, 10])
        #expect(tail.bytes == [7, 8, 9, 10])
        #expect(tail.count == 4)
        #expect(tail.totalBytes == 10)
        for i in 11...30 { tail.append([UInt8(i)]) }
        #expect(tail.bytes == [27, 28, 29, 30])
        #expect(tail.totalBytes == 30)
    }

    @Test func singleAppendBiggerThanCapacity() {
        var tail = OutputTail(capacity: 5)
        tail.append(Array("xy".utf8))
        tail.append(Array("0123456789".utf8))
        #expect(tail.text == "56789")
        #expect(tail.count == 5)
        #expect(tail.totalBytes == 12)
        var fresh = OutputTail(capacity: 3)
        fresh.append(Array("abcdefgh".utf8))
        #expect(fresh.text == "fgh")
        #expect(fresh.totalBytes == 8)
    }

    @Test func emptyAppendChangesNothing() {
        var tail = OutputTail(capacity: 3)
        tail.append([])
        #expect(tail.bytes.isEmpty)
        #expect(tail.text == "")
        #expect(tail.totalBytes == 0)
    }

    @Test func tailTextStartsAtAWholeCharacter() {
        var tail = OutputTail(capacity: 4)
        tail.append(Array("é€".utf8)) // 2 + 3 bytes: the first byte of é is dropped
        #expect(tail.bytes == [0xA9, 0xE2, 0x82, 0xAC])
        #expect(tail.text == "€")  // the rest of é is skipped, not shown as U+FFFD
    }

    @Test func supervisorOutputKeepsOnlyTheTail() throws {
        var s = Self.make()
        _ = s.handle(.spawned(pid: 5, nowMs: 1))
        let big = [UInt8](repeating: 0x61, count: 70 * 1024) + Array("END".utf8)
        _ = s.handle(.output(.stdout, big, nowMs: 2))
        _ = s.handle(.streamClosed(.stdout, nowMs: 3))
        _ = s.handle(.streamClosed(.stderr, nowMs: 3))
        let r = try #require(Self.finished(s.handle(.exited(status: 0, signal: 0, nowMs: 4))))
        #expect(r.output.utf8.count == 64 * 1024)
        #expect(r.output.hasSuffix("aEND"))
        #expect(s.tail.totalBytes == 70 * 1024 + 3)
    }
}
