import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// `WorkerSession`: what it holds while the scheduler is away and delivers after each
/// registration (results until acknowledged, task events, output), refused registrations,
/// failed handshakes, stops, and the events a shell should never send.
@Suite struct WorkerSessionDeliveryTests {
    typealias A = SessionAction
    typealias T = WorkerSessionTests

    static func sentResults(_ actions: [A]) -> [String] {
        actions.compactMap { if case .sendResult(let r) = $0 { r.id } else { nil } }
    }

    static func sentEvents(_ actions: [A]) -> [Message.TaskEvent] {
        actions.compactMap { if case .send(.taskEvent(let e)) = $0 { e } else { nil } }
    }

    // MARK: Resend until acknowledged

    @Test func resultsAreResentAfterEachReconnectUntilAcknowledgedAndNeverAfter() {
        var s = T.make()
        _ = s.handle(.start(recovered: [T.result("old")], nowMs: 0))
        #expect(s.handle(.finished(T.result("a"))) == [])  // not registered yet: held
        _ = s.handle(.connectFailed(.unreachable("refused"), nowMs: 0))
        var first = T.register(&s, at: 100)
        // The previous process's results go first, then the rest in finishing order.
        #expect(first.register == [.sendRegister(finished: [RunRef(id: "old", attempt: 1), RunRef(id: "a", attempt: 1)])])
        #expect(Self.sentResults(first.registered) == ["old", "a"])
        #expect(s.handle(.finished(T.result("b"))) == [.sendResult(T.result("b"))])
        #expect(s.handle(.received(.resultAck(.init(id: "old", attempt: 1)))) == [.acknowledged(RunRef(id: "old", attempt: 1))])
        // Lost before the others were acknowledged: they go again, twice over.
        for round in 1...2 {
            _ = s.handle(.closed(reason: "closed by peer"))
            #expect(s.handle(.finished(T.result("c\(round)"))) == [])
            first = T.register(&s, at: Int64(round) * 1_000)
            let expected = ["a", "b"] + (1...round).map { "c\($0)" }
            #expect(first.register == [.sendRegister(finished: expected.map { RunRef(id: $0, attempt: 1) })])
            #expect(Self.sentResults(first.registered) == expected)
        }
        // An ack names its attempt: another attempt's result stays.
        #expect(s.handle(.received(.resultAck(.init(id: "a", attempt: 2)))) == [.acknowledged(RunRef(id: "a", attempt: 2))])
        #expect(s.outbox.map(\.id) == ["a", "b", "c1", "c2"])
        for id in ["a", "b", "c1", "c2"] { _ = s.handle(.received(.resultAck(.init(id: id, attempt: 1)))) }
        #expect(s.outbox.isEmpty)
        for round in 3...4 {
            _ = s.handle(.closed(reason: "closed by peer"))
            let again = T.register(&s, at: Int64(round) * 1_000)
            #expect(again.register == [.sendRegister(finished: [])])
            #expect(Self.sentResults(again.registered).isEmpty)
        }
    }

    @Test func aRegistrationSendsWhatTheSchedulerMissedInOrder() {
        var s = T.make()
        _ = s.handle(.start(recovered: [T.result("r")], nowMs: 0))
        _ = s.handle(.taskEvent(T.event(1)))
        _ = s.handle(.connected(nowMs: 1))
        _ = s.handle(.received(.welcome(.init(server: "sched"))))
        #expect(s.handle(.received(.registered(.init(heartbeatMs: 1_000, lostAfterMs: 3_000)))) == [
            .log(.info, "registered with scheduler as w1 (2 slots)"), .startHeartbeats(everyMs: 1_000),
            .setUserTimeout(ms: 4_500), .announceRunning, .send(.taskEvent(T.event(1))),
            .sendResult(T.result("r")), .pumpOutput, .resumeTransfers,
        ])
        #expect(s.handle(.heartbeatTimerFired) == [.sendHeartbeat])
        #expect(s.handle(.received(.assign(.init(task: .init(id: "x", command: ["true"], env: nil, attempt: 1))))).count == 1)
    }

    // MARK: Held events and output

    /// 10,000 held: the 10,000th is kept, the next dropped and counted; twice in a row.
    @Test func heldEventsStopAtTheCapAndTheRestAreCounted() {
        var s = T.make()
        T.register(&s, at: 0)
        var total = 0
        for (round, extra) in [1, 2].enumerated() {
            _ = s.handle(.closed(reason: "ETIMEDOUT"))
            var said: [A] = []
            for n in 1...10_000 { said += s.handle(.taskEvent(T.event(n))) }
            #expect(said.isEmpty)
            #expect(s.heldEvents.count == 10_000 && s.heldEvents.last == T.event(10_000))
            for n in 1...extra { _ = s.handle(.taskEvent(T.event(10_000 + n))) }
            total += extra
            #expect(s.heldEvents.count == 10_000 && s.droppedEvents == total)
            let registered = T.register(&s, at: Int64(round + 1) * 1_000).registered
            let sent = Self.sentEvents(registered)
            #expect(sent.count == 10_000 && sent.first == T.event(1) && sent.last == T.event(10_000))
            let logs = registered.filter { if case .log = $0 { true } else { false } }
            #expect(logs.last == .log(.warning, "\(extra) task event(s) were dropped while the scheduler was away (at most 10000 are held; results carry the counts)"))
            #expect(s.heldEvents.isEmpty)
            // Registered: sent at once, nothing held.
            #expect(s.handle(.taskEvent(T.event(0))) == [.send(.taskEvent(T.event(0)))])
        }
        #expect(s.droppedEvents == 3)
    }

    /// Output waits in the relay (within its caps, the rest dropped with a marker) until a
    /// registration lets the shell pump it.
    @Test func outputIsHeldWithinTheRelaysCapsWhileAway() {
        var limits = OutputRelay.Limits()
        limits.perRunBytes = 8
        limits.totalBytes = 12
        var s = T.make(output: limits)
        let a = RunRef(id: "a", attempt: 1), b = RunRef(id: "b", attempt: 1)
        T.register(&s, at: 0)
        #expect(s.handle(.output(a, .stdout, Array("hi\n".utf8), at: 1)) == [.pumpOutput])
        #expect(s.nextOutput()?.bytes == Array("hi\n".utf8))
        for round in 1...2 {
            _ = s.handle(.closed(reason: "closed by peer"))
            #expect(s.handle(.output(a, .stdout, Array("1234567\n".utf8), at: 2)) == [])
            #expect(s.handle(.output(a, .stdout, Array("x\n".utf8), at: 3)) == [])  // over a's 8 bytes
            #expect(s.handle(.output(b, .stdout, Array("abcd\n".utf8), at: 4)) == [])  // over the 12 in all
            #expect(s.relay.droppedBytes == 7 * round)
            #expect(T.register(&s, at: Int64(round) * 1_000).registered.contains(.pumpOutput))
            var pieces: [OutputRelay.Piece] = []
            while let piece = s.nextOutput() { pieces.append(piece) }
            // Runs in turn: a's kept line, b's marker (all 5 dropped), a's marker.
            #expect(pieces.map(\.run) == [a, b, a])
            #expect(pieces.map(\.bytes) == [Array("1234567\n".utf8), OutputRelay.marker(5), OutputRelay.marker(2)])
        }
    }

    // MARK: Refused registrations, failed handshakes

    /// A scheduler that still counts the worker as connected refuses it and closes: the
    /// backoff is not reset (twice), and the registration after it works.
    @Test func aRefusedRegistrationBacksOffLikeAnyLoss() {
        var s = T.make()
        _ = s.handle(.start(recovered: [T.result("r")], nowMs: 0))
        let refusal = "a worker named 'w1' is already connected"
        for (round, wait) in [(0, 100), (1, 200)] {
            if round == 1 { _ = s.handle(.reconnectTimerFired(nowMs: 100)) }
            _ = s.handle(.connected(nowMs: 0))
            #expect(s.handle(.received(.welcome(.init(server: "sched")))) == [.sendRegister(finished: [RunRef(id: "r", attempt: 1)])])
            #expect(s.handle(.received(.error(.init(code: .badMessage, reason: refusal)))) == [.log(.error, "scheduler says: \(refusal)")])
            #expect(s.state == .registering && s.handle(.heartbeatTimerFired) == [])
            #expect(s.handle(.closed(reason: "closed by peer")).contains(.log(.warning, "connection to scheduler ended: closed by peer; retrying in \(wait) ms")))
            #expect(s.outbox.count == 1)
        }
        #expect(Self.sentResults(T.register(&s, at: 1_000).registered) == ["r"])
        #expect(s.backoffMs == 100)
    }

    @Test func aWrongTokenIsFatalAndAnOddReplyIsNot() {
        var s = T.make()
        _ = s.handle(.start(recovered: [], nowMs: 0))
        _ = s.handle(.connected(nowMs: 1))
        let reason = "the scheduler requires a cluster token (use --token-file or SWARM_TOKEN)"
        #expect(s.handle(.received(.challenge(.init(nonce: "n")))) ==
                [.closeConnection("handshake failed"), .log(.error, "handshake with scheduler failed: \(reason)"), .fatal(reason)])
        #expect(T.retryDelay(s.handle(.closed(reason: "handshake failed"))) == 100)
        _ = s.handle(.reconnectTimerFired(nowMs: 200))
        _ = s.handle(.connected(nowMs: 201))
        let odd = s.handle(.received(.heartbeat(.init(freeSlots: 1, running: []))))
        #expect(odd == [.closeConnection("handshake failed"), .log(.error, "handshake with scheduler failed: unexpected 'heartbeat' during the handshake")])
        // With a token: the challenge is answered.
        var t = T.make(token: ClusterToken("secret"))
        _ = t.handle(.start(recovered: [], nowMs: 0))
        #expect(t.handle(.connected(nowMs: 1)).contains(.send(.hello(.init(role: .worker, name: "w1", nonce: "nonce")))))
        #expect(t.handle(.received(.challenge(.init(nonce: "n")))).count == 1 && t.state == .handshaking)
    }

    // MARK: Stops

    @Test func aStopEndsReconnectingInEveryState() {
        var registered = T.make()
        T.register(&registered, at: 0)
        #expect(registered.handle(.stop) == [.send(.leave(.init(reason: "worker w1 is stopping")))])
        #expect(registered.handle(.finished(T.result("late"))) == [.sendResult(T.result("late"))])
        #expect(registered.handle(.closed(reason: "closed by peer")) == [.connectionGone, .stopHeartbeats])
        #expect(registered.state == .stopped && registered.handle(.stop) == [])

        var connecting = T.make()
        _ = connecting.handle(.start(recovered: [], nowMs: 0))
        #expect(connecting.handle(.stop) == [.abandonConnect])
        #expect(connecting.handle(.connectFailed(.unreachable("operation canceled"), nowMs: 1)) == [.stopConnectTimer])
        var raced = T.make()
        _ = raced.handle(.start(recovered: [], nowMs: 0))
        _ = raced.handle(.stop)
        #expect(raced.handle(.connected(nowMs: 1)) == [.stopConnectTimer, .closeSocket])

        var waiting = T.make()
        _ = waiting.handle(.start(recovered: [], nowMs: 0))
        _ = waiting.handle(.connectFailed(.socket("EMFILE"), nowMs: 0))
        #expect(waiting.handle(.stop) == [])
        #expect(waiting.handle(.reconnectTimerFired(nowMs: 100)) == [])
        for s in [connecting, raced, waiting] { #expect(s.state == .stopped) }
    }

    /// Events the shell never sends in a state: one log line, nothing changes.
    @Test func impossibleEventsAreLoggedAndChangeNothing() {
        var s = T.make()
        _ = s.handle(.start(recovered: [], nowMs: 0))
        _ = s.handle(.connectFailed(.socket("EMFILE"), nowMs: 0))
        for event: SessionEvent in [.received(.assign(.init(task: .init(id: "x", command: ["true"], env: nil, attempt: 1)))),
                                    .closed(reason: "x"), .connected(nowMs: 1), .start(recovered: [], nowMs: 1)] {
            let actions = s.handle(event)
            #expect(actions == [.log(.warning, "worker session: ignoring unexpected \(event.name) while waiting")])
            #expect(s.state == .waiting && s.backoffMs == 200)
        }
    }
}
