import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// Issue 12 item 6: the worker's link to the scheduler as a pure state machine
/// (`WorkerSession`), driven with made-up events and a fake monotonic clock. Every path is
/// taken at least twice in a row: a session must come back from its second loss as from its
/// first.
@Suite struct WorkerSessionTests {
    typealias A = SessionAction
    static let address = "10.0.0.1:7700"

    static func make(jitter: @escaping @Sendable (UInt64) -> UInt64 = { _ in 0 }, token: ClusterToken? = nil,
                     output: OutputRelay.Limits = .init()) -> WorkerSession {
        var settings = WorkerSession.Settings(name: "w1", slots: 2, token: token, address: address)
        settings.output = output
        return WorkerSession(settings: settings, jitter: jitter, makeNonce: { "nonce" })
    }

    static func result(_ id: String, attempt: Int = 1) -> TaskResult {
        TaskResult(id: id, state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "", pid: 7,
                   attempt: attempt, startedAt: 1, finishedAt: 2)
    }

    static func event(_ n: Int) -> Message.TaskEvent {
        .init(id: "t", attempt: 1, kind: "silence_warning", at: Int64(n), detail: "#\(n)")
    }

    /// From idle or waiting at `now`: connect, handshake (no token) and register. Returns the
    /// actions of the connect, of the handshake's end (`register`) and of the `registered`.
    @discardableResult
    static func register(_ s: inout WorkerSession, at now: Int64, _ registered: Message.Registered = .init(heartbeatMs: 1_000))
        -> (connect: [A], register: [A], registered: [A]) {
        let start = s.state == .idle ? s.handle(.start(recovered: [], nowMs: now)) : s.handle(.reconnectTimerFired(nowMs: now))
        #expect(start == [.armConnectTimer(ms: 5_000), .openSocket])
        let connect = s.handle(.connected(nowMs: now + 1))
        #expect(connect.contains(.send(.hello(.init(role: .worker, name: "w1")))))
        #expect(s.state == .handshaking)
        let register = s.handle(.received(.welcome(.init(server: "sched"))))
        #expect(s.state == .registering)
        let done = s.handle(.received(.registered(registered)))
        #expect(s.state == .registered)
        return (connect, register, done)
    }

    /// The reconnect delays logged and armed by `closed` (or a failed connect).
    static func retryDelay(_ actions: [A]) -> UInt64? {
        for case .armReconnectTimer(let ms) in actions { return ms }
        return nil
    }

    // MARK: Backoff

    @Test func theBackoffDoublesToItsCapAndARegistrationStartsItAgain() {
        var s = Self.make()
        _ = s.handle(.start(recovered: [], nowMs: 0))
        var delays: [UInt64] = []
        var now: Int64 = 0
        for _ in 0..<9 {
            let failed = s.handle(.connectFailed(.unreachable("connection refused"), nowMs: now))
            let delay = Self.retryDelay(failed)!
            #expect(failed.first == .stopConnectTimer)
            #expect(failed.contains(.log(.warning, "cannot reach scheduler at \(Self.address): connection refused; retrying in \(delay) ms")))
            delays.append(delay)
            now += Int64(delay)
            #expect(s.handle(.reconnectTimerFired(nowMs: now)) == [.armConnectTimer(ms: 5_000), .openSocket])
        }
        #expect(delays == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000])
        // Twice: registered, lost, the backoff starts at the minimum again each time.
        for round in 0..<2 {
            if round == 1 { _ = s.handle(.reconnectTimerFired(nowMs: now)) }
            _ = s.handle(.connected(nowMs: now))
            _ = s.handle(.received(.welcome(.init(server: "sched"))))
            _ = s.handle(.received(.registered(.init(heartbeatMs: 1_000))))
            #expect(s.backoffMs == 100)
            let lost = s.handle(.closed(reason: "closed by peer"))
            #expect(lost == [.connectionGone, .stopHeartbeats,
                             .log(.warning, "connection to scheduler ended: closed by peer; retrying in 100 ms"),
                             .armReconnectTimer(ms: 100)])
            #expect(Self.retryDelay(s.handle(.reconnectTimerFired(nowMs: now)) + s.handle(.connectFailed(.socket("EMFILE"), nowMs: now))) == 200)
        }
    }

    /// The jitter is 0 ... wait/5 + 1 on top of the wait; the log line says the wait.
    @Test func theJitterIsBoundedByAFifthOfTheWait() {
        let asked = Box()
        var s = Self.make(jitter: { bound in asked.values.append(bound); return bound * 10 })
        _ = s.handle(.start(recovered: [], nowMs: 0))
        let first = s.handle(.connectFailed(.socket("EMFILE"), nowMs: 0))
        #expect(first.contains(.log(.warning, "cannot create socket: EMFILE; retrying in 100 ms")))
        #expect(Self.retryDelay(first) == 121)
        _ = s.handle(.reconnectTimerFired(nowMs: 121))
        #expect(Self.retryDelay(s.handle(.connectFailed(.socket("EMFILE"), nowMs: 121))) == 241)
        #expect(asked.values == [21, 41])
    }

    final class Box: @unchecked Sendable { var values: [UInt64] = [] }

    // MARK: Connect timeout

    @Test func anUnansweredConnectIsAbandonedAtExactlyFiveSecondsTwice() {
        var s = Self.make()
        var start: Int64 = 1_000
        #expect(s.handle(.start(recovered: [], nowMs: start)) == [.armConnectTimer(ms: 5_000), .openSocket])
        for attempt in 0..<2 {
            // A timer that fires early (4,999 ms) waits for the rest; at 5,000 ms it is abandoned.
            #expect(s.handle(.connectTimerFired(nowMs: start + 4_999)) == [.armConnectTimer(ms: 1)])
            #expect(s.state == .connecting)
            #expect(s.handle(.connectTimerFired(nowMs: start + 5_000)) ==
                    [.log(.warning, "no answer from scheduler at \(Self.address) within 5000 ms"), .abandonConnect])
            // Abandoned once: a late timer says nothing more.
            #expect(s.handle(.connectTimerFired(nowMs: start + 6_000)) == [])
            let failed = s.handle(.connectFailed(.unreachable("operation canceled"), nowMs: start + 5_000))
            let wait: UInt64 = attempt == 0 ? 100 : 200
            #expect(failed == [.stopConnectTimer,
                               .log(.warning, "cannot reach scheduler at \(Self.address): operation canceled; retrying in \(wait) ms"),
                               .armReconnectTimer(ms: wait)])
            start += 5_000 + Int64(wait)
            #expect(s.handle(.reconnectTimerFired(nowMs: start)) == [.armConnectTimer(ms: 5_000), .openSocket])
        }
        // Answered in time: the timer is stopped and a late one does nothing.
        #expect(s.handle(.connected(nowMs: start + 4_999)).prefix(2) == [.stopConnectTimer, .openConnection(userTimeoutMs: 20_000)])
        #expect(s.handle(.connectTimerFired(nowMs: start + 5_000)) == [])
    }

    // MARK: Scheduler silence

    @Test func theSilenceLimitComesFromRegisteredAndOutlivesTheConnection() {
        var s = Self.make()
        let first = Self.register(&s, at: 0, .init(heartbeatMs: 250, lostAfterMs: 1_500))
        // Before the first `registered`: 20 s; then the scheduler's wait and half of it.
        #expect(first.connect.contains(.openConnection(userTimeoutMs: 20_000)))
        #expect(first.registered.contains(.setUserTimeout(ms: 2_500)))
        for round in 1...2 {
            _ = s.handle(.closed(reason: "ETIMEDOUT"))
            let again = Self.register(&s, at: Int64(round) * 10_000, .init(heartbeatMs: 250))
            // The next connection has the last limit from its start.
            #expect(again.connect.contains(.openConnection(userTimeoutMs: 2_500)))
            #expect(!again.registered.contains { if case .setUserTimeout = $0 { true } else { false } })
        }
        // A new interval on the same connection: heartbeats and the limit only, nothing resent.
        #expect(s.handle(.received(.registered(.init(heartbeatMs: 500, lostAfterMs: 2_000)))) ==
                [.startHeartbeats(everyMs: 500), .setUserTimeout(ms: 3_000)])
        #expect(s.schedulerLostAfterMs == 2_000)
        // An older scheduler says no limit: the last one stays.
        #expect(s.handle(.received(.registered(.init(heartbeatMs: 500)))) == [.startHeartbeats(everyMs: 500)])
        #expect(s.schedulerLostAfterMs == 2_000)
        // A peer's numbers are kept to 10 ms - 1 h.
        #expect(s.handle(.received(.registered(.init(heartbeatMs: 0)))) == [.startHeartbeats(everyMs: 10)])
        #expect(s.handle(.received(.registered(.init(heartbeatMs: Int.max)))) == [.startHeartbeats(everyMs: 3_600_000)])
    }

    /// The limit is never shorter than the scheduler's own wait plus a second: at the edge
    /// where half the wait passes a second (2 s), and at the ends of the range it is kept to.
    @Test func theSilenceLimitAtItsEdges() {
        let limit = { (lost: Int?) in Int(WorkerSession.deadConnectionMs(lostAfterMs: lost)) }
        #expect(limit(1_998) == 2_998)
        #expect(limit(2_000) == 3_000)
        #expect(limit(2_002) == 3_003)
        #expect(limit(99) == limit(100) && limit(100) == 1_100)
        #expect(limit(3_600_001) == limit(3_600_000) && limit(3_600_000) == 5_400_000)
        for lost in [100, 1_999, 2_000, 2_001, 3_600_000] { #expect(limit(lost) >= lost + 1_000) }
    }
}
