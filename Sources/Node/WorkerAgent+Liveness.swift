import SwarmProtocol
import SwarmUV

/// How the worker finds out that its connection to the scheduler is dead when nothing says so:
/// a network partition drops packets silently, and the kernel keeps retransmitting for ~15
/// minutes, each gap twice the last. Measured between hosts (MultiHostFaultTests' harness): after
/// a 60 s silent partition the worker came back 47 s after the network did, waiting for its next
/// retransmission. So the connection is given up once what the worker sent has gone
/// unacknowledged for longer than the scheduler waits before marking it lost (then the
/// scheduler has given up too, and takes the worker back at once), and each connect attempt is
/// bounded; the reconnect backoff (at most 5 s) then finds the scheduler soon after the network
/// is back.
extension WorkerAgent {
    /// Milliseconds data sent to the scheduler may go unacknowledged before the connection is
    /// given up: the scheduler's `lostAfterMs` (kept to 0.1 s - 1 h: a peer's number) plus half
    /// of it, at least 1 s more. Never less: a connection dropped while the scheduler still
    /// counts the worker as connected could not register again ("already connected") until
    /// the scheduler marks it lost, so a gap the scheduler forgives must not cost the
    /// connection. Before the first `registered` (nil): 20 s, when no run depends on it yet.
    static func deadConnectionMs(lostAfterMs: Int?) -> UInt32 {
        guard let lostAfterMs else { return 20_000 }
        let limit = min(max(lostAfterMs, 100), 3_600_000)
        return UInt32(limit + max(1_000, limit / 2))
    }

    /// A connect not answered within `connectTimeoutMs` is closed: its callback then reports
    /// it canceled, and the usual backoff tries again. (A SYN into a partition is otherwise
    /// retried by the kernel for ~2 minutes, the gaps doubling: 1, 2, 4 ... 64 s.)
    func abandonUnanswered(_ tcp: UVTCP) {
        connectTimer?.start(afterMs: config.connectTimeoutMs) { [weak self] in
            guard let self else { return }
            self.logger.warning("no answer from scheduler at \(self.config.schedulerHost):\(self.config.schedulerPort) within \(self.config.connectTimeoutMs) ms")
            tcp.close()
        }
    }

    func giveUpWhenUnacknowledged(_ tcp: UVTCP) {
        tcp.setUserTimeout(ms: Self.deadConnectionMs(lostAfterMs: schedulerLostAfterMs))
    }

    /// A `registered` (the first, or a new interval): heartbeats at its interval (kept to
    /// 10 ms - 1 h: a peer's number must not stop or flood them), and its silence limit.
    func beatAsTold(_ registered: Message.Registered) {
        let period = UInt64(min(max(10, registered.heartbeatMs), 3_600_000))
        heartbeatTimer?.start(afterMs: period, repeatMs: period) { [weak self] in self?.sendHeartbeat() }
        guard let lostAfterMs = registered.lostAfterMs else { return }
        schedulerLostAfterMs = lostAfterMs
        if let connection { giveUpWhenUnacknowledged(connection.tcp) }
    }
}
