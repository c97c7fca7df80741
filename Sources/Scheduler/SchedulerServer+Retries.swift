import SwarmProtocol

/// Retries in the shell (issue 13): a placement round when a backoff ends. The decisions are
/// `ClusterState`'s (ClusterState+Retries.swift).
extension SchedulerServer {
    /// After a placement round: makes sure a round runs when the first backoff still waiting
    /// ends. A timer set for earlier is kept (its round re-arms this one); one set for later
    /// is moved up.
    func armRetryTimer() {
        guard let due = state.nextBackoffDueMs, let retryTimer else { return }
        if let armed = retryTimerDueMs, armed <= due { return }
        retryTimerDueMs = due
        let delay = max(0, due - clocks.monotonic())
        retryTimer.start(afterMs: UInt64(delay)) { [weak self] in
            guard let self else { return }
            self.retryTimerDueMs = nil
            self.scheduleSoon()
        }
    }
}

