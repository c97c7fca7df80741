import Logging
import SwarmProtocol

/// The worker's side of its link to the scheduler as a pure state machine: events in, actions
/// out, the monotonic `now` given. It decides connecting (a connect unanswered after
/// `connectTimeoutMs` is abandoned), the handshake then `register` then `registered`,
/// reconnecting with backoff, heartbeats, the silence limit given to the socket, and what is
/// held while the scheduler is away: every result until acknowledged (the outbox, resent after
/// each registration), task events (at most `maxHeldEvents`), output (`OutputRelay`'s caps).
///
/// What is dropped when full: results never (the outbox is the disk's copy, kept until the
/// scheduler acknowledges it); task events past `maxHeldEvents` are (the oldest stay: they
/// say how the trouble began), counted in `droppedEvents` and said in one log line at the
/// next registration; output past `OutputRelay.Limits` (8 MiB a run, 32 MiB in all) is
/// dropped a chunk at a time, counted in `relay.droppedBytes`, with a marker in the stream
/// where it was (the task's log file keeps every byte).
///
/// Backoff: the first retry waits `reconnectMinMs`, each next one twice the last, at most
/// `reconnectMaxMs`; a registration starts it again at the minimum (a refused registration,
/// such as "already connected", does not). Each wait gets a jitter of 0 ... wait/5 + 1 ms on
/// top, so workers cut off together do not all come back in the same millisecond.
struct WorkerSession {
    enum State: Sendable, Equatable {
        case idle
        /// A connect is pending; abandoned at `connectDeadlineMs`.
        case connecting
        /// Connected; the handshake (`hello` ...) is under way.
        case handshaking
        /// Handshake done, `register` sent, no `registered` yet.
        case registering
        case registered
        /// No connection; the reconnect timer runs.
        case waiting
        /// Stopping with no connection: nothing more is opened.
        case stopped
    }

    struct Settings: Sendable {
        var name: String
        var slots: Int
        var token: ClusterToken?
        /// `host:port`, for log lines.
        var address: String
        var reconnectMinMs: UInt64 = 100
        var reconnectMaxMs: UInt64 = 5_000
        var connectTimeoutMs: UInt64 = 5_000
        /// Task events held while the scheduler is away; later ones are dropped and counted.
        var maxHeldEvents = 10_000
        var output = OutputRelay.Limits()
    }

    let settings: Settings
    private(set) var state: State = .idle
    /// `stop` came: no reconnect, a connection that ends is not replaced.
    private(set) var stopping = false
    /// The wait before the next reconnect (without its jitter).
    private(set) var backoffMs: UInt64
    /// The scheduler's silence limit, from its last `registered` (kept across connections).
    private(set) var schedulerLostAfterMs: Int?
    /// Results not yet acknowledged by the scheduler, in finishing order, by run: thousands
    /// of acknowledgements in a row each remove one in O(1) (`KeyedQueue`).
    private var unacknowledged = KeyedQueue<RunRef, TaskResult>()
    /// Results not yet acknowledged by the scheduler, in finishing order.
    var outbox: [TaskResult] { unacknowledged.values }
    /// Task events that happened while the scheduler was away, oldest first.
    private(set) var heldEvents: [Message.TaskEvent] = []
    /// Task events dropped because `maxHeldEvents` were held, since the start.
    private(set) var droppedEvents = 0
    /// Of those, dropped since the last registration (said in its log line).
    private var droppedWhileAway = 0
    /// Task output not yet handed to the connection; bounded, with drop markers.
    private(set) var relay: OutputRelay
    private var connectDeadlineMs: Int64?
    private var connectAbandoned = false
    private var handshake: ClientHandshake?
    /// The reading tokens' digests last handed to the worker (`SessionAction.readerDigests`).
    private var readerDigests = BearerDigests()
    private let jitter: @Sendable (_ bound: UInt64) -> UInt64
    private let makeNonce: @Sendable () -> String

    /// `jitter(bound)` gives 0 ... bound (random by default); `makeNonce` each handshake's nonce.
    init(settings: Settings, jitter: @escaping @Sendable (UInt64) -> UInt64 = { UInt64.random(in: 0...$0) },
         makeNonce: @escaping @Sendable () -> String = ClusterToken.makeNonce) {
        self.settings = settings
        self.backoffMs = settings.reconnectMinMs
        self.relay = OutputRelay(limits: settings.output)
        self.jitter = jitter
        self.makeNonce = makeNonce
    }

    var isRegistered: Bool { state == .registered }
    /// Handshake done: the scheduler's messages are the worker's (and its blob transfers').
    var isEstablished: Bool { state == .registering || state == .registered }

    /// Every (state, event) pair is decided here, with no `default:`: transitions; late
    /// events a race makes normal (a timer overtaken by what happened first: nothing to do);
    /// and events the shell never sends in that state, all through `unexpected`.
    mutating func handle(_ event: SessionEvent) -> [SessionAction] {
        switch (state, event) {
        case (.idle, .start(let recovered, let now)):
            let later = unacknowledged.values
            unacknowledged = KeyedQueue()
            for result in recovered + later { unacknowledged.append(result.run, result) }
            return connect(now)
        case (.waiting, .reconnectTimerFired(let now)):
            return connect(now)
        case (.connecting, .connectTimerFired(let now)):
            return connectTimerFired(now)
        case (.connecting, .connected):
            return connected()
        case (.connecting, .connectFailed(let failure, _)):
            return connectFailed(failure)
        case (.handshaking, .received(let message)):
            return handshakeStep(message)
        case (.registering, .received(let message)), (.registered, .received(let message)):
            return received(message)
        case (.handshaking, .closed(let reason)), (.registering, .closed(let reason)), (.registered, .closed(let reason)):
            return closed(reason)
        case (.registered, .heartbeatTimerFired):
            return [.sendHeartbeat]
        case (.registered, .taskEvent(let event)):
            return [.send(.taskEvent(event))]
        case (.idle, .taskEvent(let event)), (.connecting, .taskEvent(let event)), (.handshaking, .taskEvent(let event)),
             (.registering, .taskEvent(let event)), (.waiting, .taskEvent(let event)), (.stopped, .taskEvent(let event)):
            return hold(event)
        case (.registered, .output(let run, let stream, let bytes, let at)):
            relay.add(run, stream, bytes, at: at)
            return Self.pump
        case (.idle, .output(let run, let stream, let bytes, let at)), (.connecting, .output(let run, let stream, let bytes, let at)),
             (.handshaking, .output(let run, let stream, let bytes, let at)), (.registering, .output(let run, let stream, let bytes, let at)),
             (.waiting, .output(let run, let stream, let bytes, let at)), (.stopped, .output(let run, let stream, let bytes, let at)):
            // Held (within the relay's caps): sent after the next registration.
            relay.add(run, stream, bytes, at: at)
            return []
        case (.registered, .finished(let result)):
            unacknowledged.append(result.run, result)
            return [.sendResult(result)]
        case (.idle, .finished(let result)), (.connecting, .finished(let result)), (.handshaking, .finished(let result)),
             (.registering, .finished(let result)), (.waiting, .finished(let result)), (.stopped, .finished(let result)):
            unacknowledged.append(result.run, result)
            return []
        case (.idle, .stop), (.connecting, .stop), (.handshaking, .stop), (.registering, .stop), (.registered, .stop),
             (.waiting, .stop):
            return stop()

        // Late, and normal: a timer overtaken by what happened first (the connect answered,
        // the connection ended, the worker stopped); a second stop.
        case (.handshaking, .connectTimerFired), (.registering, .connectTimerFired), (.registered, .connectTimerFired),
             (.waiting, .connectTimerFired), (.stopped, .connectTimerFired),
             (.connecting, .heartbeatTimerFired), (.handshaking, .heartbeatTimerFired), (.registering, .heartbeatTimerFired),
             (.waiting, .heartbeatTimerFired), (.stopped, .heartbeatTimerFired),
             (.stopped, .reconnectTimerFired), (.stopped, .stop):
            return []

        // Never sent in these states: one start; connect results only while connecting; the
        // reconnect timer only while waiting; messages and ends only with a connection.
        case (.connecting, .start), (.handshaking, .start), (.registering, .start), (.registered, .start),
             (.waiting, .start), (.stopped, .start),
             (.idle, .connected), (.handshaking, .connected), (.registering, .connected), (.registered, .connected),
             (.waiting, .connected), (.stopped, .connected),
             (.idle, .connectFailed), (.handshaking, .connectFailed), (.registering, .connectFailed),
             (.registered, .connectFailed), (.waiting, .connectFailed), (.stopped, .connectFailed),
             (.idle, .connectTimerFired), (.idle, .heartbeatTimerFired),
             (.idle, .reconnectTimerFired), (.connecting, .reconnectTimerFired), (.handshaking, .reconnectTimerFired),
             (.registering, .reconnectTimerFired), (.registered, .reconnectTimerFired),
             (.idle, .received), (.connecting, .received), (.waiting, .received), (.stopped, .received),
             (.idle, .closed), (.connecting, .closed), (.waiting, .closed), (.stopped, .closed):
            return unexpected(event)
        }
    }

    private static let pump: [SessionAction] = [.pumpOutput]

    /// The one failure path: an event the shell should not send now is logged and ignored.
    private func unexpected(_ event: SessionEvent) -> [SessionAction] {
        [.log(.warning, "worker session: ignoring unexpected \(event.name) while \(state)")]
    }

    /// The next piece of waiting output to send (runs in turn); nil when none waits.
    mutating func nextOutput() -> OutputRelay.Piece? { relay.next() }

    /// Everything `run` has waiting, in order (its result goes after it).
    mutating func drainOutput(_ run: RunRef) -> [OutputRelay.Piece] { relay.drain(run) }
}

// MARK: Transitions

/// The transitions of `WorkerSession`, one function each.
///
/// How the worker finds out that its connection is dead when nothing says so: a network
/// partition drops packets silently, and the kernel keeps retransmitting for ~15 minutes, each
/// gap twice the last. Measured between hosts (MultiHostFaultTests' harness): after a 60 s
/// silent partition the worker came back 47 s after the network did, waiting for its next
/// retransmission. So the connection is given up once what the worker sent has gone
/// unacknowledged for longer than the scheduler waits before marking it lost (then the
/// scheduler has given up too, and takes the worker back at once), and each connect attempt
/// is bounded; the backoff (at most 5 s) then finds the scheduler soon after the network is back.
extension WorkerSession {
    /// Milliseconds data sent to the scheduler may go unacknowledged before the connection is
    /// given up (the socket's TCP_USER_TIMEOUT): the scheduler's `lostAfterMs` (kept to 0.1 s
    /// - 1 h: a peer's number) plus half of it, at least 1 s more. Never less: a connection
    /// dropped while the scheduler still counts the worker as connected could not register
    /// again ("already connected") until the scheduler marks it lost, so a gap the scheduler
    /// forgives must not cost the connection. Before the first `registered` (nil): 20 s, when
    /// no run depends on it yet. (This is the scheduler-silence limit: the scheduler sends
    /// nothing periodic, so only the kernel, which sees its acknowledgements, can tell.)
    static func deadConnectionMs(lostAfterMs: Int?) -> UInt32 {
        guard let lostAfterMs else { return 20_000 }
        let limit = min(max(lostAfterMs, 100), 3_600_000)
        return UInt32(limit + max(1_000, limit / 2))
    }

    /// A connect attempt, bounded by `connectTimeoutMs` (a SYN into a partition is otherwise
    /// retried by the kernel for ~2 minutes). The timer is armed first: a socket that fails
    /// at once reports so before this returns.
    private mutating func connect(_ now: Int64) -> [SessionAction] {
        state = .connecting
        connectDeadlineMs = now + Int64(clamping: settings.connectTimeoutMs)
        connectAbandoned = false
        return [.armConnectTimer(ms: settings.connectTimeoutMs), .openSocket]
    }

    /// Abandoned at the deadline exactly; a timer that fires early waits for the rest.
    private mutating func connectTimerFired(_ now: Int64) -> [SessionAction] {
        guard let deadline = connectDeadlineMs, !connectAbandoned else { return [] }
        if now < deadline { return [.armConnectTimer(ms: UInt64(deadline - now))] }
        connectAbandoned = true
        return [.log(.warning, "no answer from scheduler at \(settings.address) within \(settings.connectTimeoutMs) ms"),
                .abandonConnect]
    }

    private mutating func connected() -> [SessionAction] {
        connectDeadlineMs = nil
        if stopping {
            state = .stopped
            return [.stopConnectTimer, .closeSocket]
        }
        state = .handshaking
        var handshake = ClientHandshake(role: .worker, name: settings.name, token: settings.token, nonce: makeNonce())
        let first = handshake.start()
        self.handshake = handshake
        return [.stopConnectTimer, .openConnection(userTimeoutMs: Self.deadConnectionMs(lostAfterMs: schedulerLostAfterMs))]
            + handshakeActions(first, permanent: false)
    }

    private mutating func connectFailed(_ failure: ConnectFailure) -> [SessionAction] {
        connectDeadlineMs = nil
        if stopping {
            state = .stopped
            return [.stopConnectTimer]
        }
        switch failure {
        case .socket(let error): return [.stopConnectTimer] + retry("cannot create socket: \(error)")
        case .unreachable(let error): return [.stopConnectTimer] + retry("cannot reach scheduler at \(settings.address): \(error)")
        }
    }

    /// Waits the backoff (plus its jitter) before the next connect, and doubles it.
    private mutating func retry(_ why: String) -> [SessionAction] {
        state = .waiting
        let wait = backoffMs
        let bound = wait / 5 + 1
        backoffMs = min(settings.reconnectMaxMs, wait.multipliedReportingOverflow(by: 2).overflow ? .max : wait * 2)
        return [.log(.warning, "\(why); retrying in \(wait) ms"),
                .armReconnectTimer(ms: wait.addingReportingOverflow(min(jitter(bound), bound)).partialValue)]
    }

    /// A message while the handshake is under way (or failed: the connection is closing).
    private mutating func handshakeStep(_ message: Message) -> [SessionAction] {
        guard var handshake else { return [.log(.error, "handshake with scheduler failed: handshake already finished")] }
        let directives = handshake.receive(message)
        self.handshake = handshake
        return handshakeActions(directives, permanent: handshake.failureIsPermanent)
    }

    /// `permanent`: a failure among the directives cannot be cured by reconnecting.
    private mutating func handshakeActions(_ directives: [HandshakeDirective], permanent: Bool) -> [SessionAction] {
        var actions: [SessionAction] = []
        for directive in directives {
            switch directive {
            case .send(let message):
                actions.append(.send(message))
            case .close:
                actions.append(.closeConnection("handshake failed"))
            case .established:
                // Each welcome replaces them (a token the scheduler dropped stops working here).
                let digests = handshake?.readerDigests ?? BearerDigests()
                if digests != readerDigests {
                    readerDigests = digests
                    actions.append(.readerDigests(digests))
                }
                handshake = nil
                state = .registering
                actions.append(.sendRegister(finished: outbox.map(\.run)))
            case .failed(let reason):
                actions.append(.log(.error, "handshake with scheduler failed: \(reason)"))
                if permanent { actions.append(.fatal(reason)) }
            }
        }
        return actions
    }

    /// A message after the handshake: the session's own, or the worker's (`dispatch`).
    private mutating func received(_ message: Message) -> [SessionAction] {
        switch message {
        case .registered(let registered) where state == .registered:
            // The cluster grew: a new heartbeat interval, nothing else changes.
            return beat(registered)
        case .registered(let registered):
            return register(registered)
        case .resultAck(let ack):
            let run = RunRef(id: ack.id, attempt: ack.attempt)
            unacknowledged.remove(run)
            return [.acknowledged(run)]
        case .error(let error):
            // Before `registered`: the registration was refused (such as "a worker named ...
            // is already connected"); the scheduler closes, the backoff goes on growing.
            return [.log(.error, "scheduler says: \(error.reason)")]
        default:
            return [.dispatch(message)]
        }
    }

    /// The first `registered` on a connection: what the scheduler missed goes out, in order.
    private mutating func register(_ registered: Message.Registered) -> [SessionAction] {
        state = .registered
        backoffMs = settings.reconnectMinMs
        var actions: [SessionAction] = [.log(.info, "registered with scheduler as \(settings.name) (\(settings.slots) slots)")]
        actions += beat(registered)
        actions.append(.announceRunning)
        if droppedWhileAway > 0 {
            actions.append(.log(.warning, "\(droppedWhileAway) task event(s) were dropped while the scheduler was away (at most \(settings.maxHeldEvents) are held; results carry the counts)"))
            droppedWhileAway = 0
        }
        actions += heldEvents.map { .send(.taskEvent($0)) }
        heldEvents = []
        // Output made meanwhile goes first (each result after its own run's output).
        actions += outbox.map { .sendResult($0) }
        actions += [.pumpOutput, .resumeTransfers]
        return actions
    }

    /// A `registered`: heartbeats at its interval (kept to 10 ms - 1 h: a peer's number must
    /// not stop or flood them), and its silence limit.
    private mutating func beat(_ registered: Message.Registered) -> [SessionAction] {
        let period = UInt64(min(max(10, registered.heartbeatMs), 3_600_000))
        guard let lostAfterMs = registered.lostAfterMs else { return [.startHeartbeats(everyMs: period)] }
        schedulerLostAfterMs = lostAfterMs
        return [.startHeartbeats(everyMs: period), .setUserTimeout(ms: Self.deadConnectionMs(lostAfterMs: lostAfterMs))]
    }

    private mutating func closed(_ reason: String) -> [SessionAction] {
        handshake = nil
        let gone: [SessionAction] = [.connectionGone, .stopHeartbeats]
        guard !stopping else {
            state = .stopped
            return gone
        }
        return gone + retry("connection to scheduler ended: \(reason)")
    }

    /// Held until the next registration; past `maxHeldEvents` dropped and counted (the
    /// oldest are kept: they say how the trouble began).
    private mutating func hold(_ event: Message.TaskEvent) -> [SessionAction] {
        guard heldEvents.count < settings.maxHeldEvents else {
            droppedEvents += 1
            droppedWhileAway += 1
            return []
        }
        heldEvents.append(event)
        return []
    }

    private mutating func stop() -> [SessionAction] {
        guard !stopping else { return [] }
        stopping = true
        switch state {
        case .registered:
            return [.send(.leave(.init(reason: "worker \(settings.name) is stopping")))]
        case .connecting:
            return [.abandonConnect]
        case .idle, .waiting:
            state = .stopped
            return []
        case .handshaking, .registering, .stopped:
            return []
        }
    }
}
