/// Which new connections may hold one of the scheduler's handshake slots, and how long.
///
/// Strangers cannot lock everyone out by holding the slots: one address holds at most
/// `maxPerAddress` of them; when a limit is reached the newcomer takes the slot of the oldest
/// pending handshake of the address holding the most, rather than being refused; and under
/// pressure the deadline for finishing a handshake shrinks. A handshake younger than
/// `promptMs` is never evicted, so a peer that completes its handshake promptly always gets
/// through. Pure: keys are the shell's, times (monotonic ms) are given.
struct HandshakeAdmission<Key: Hashable> {
    struct Limits: Sendable {
        /// Handshakes pending at once, from all addresses.
        var maxPending = 1_024
        /// Handshakes pending at once from one address (loopback is one address too).
        var maxPerAddress = 128
        /// From this many pending handshakes on, each gets `pressureDeadlineMs`.
        var pressureAt = 512
        /// Time to finish a handshake, normally and under pressure.
        var deadlineMs: UInt64 = 10_000
        var pressureDeadlineMs: UInt64 = 2_000
        /// A pending handshake this young is never evicted (a prompt peer needs a few
        /// round trips; this leaves room for a busy scheduler).
        var promptMs: UInt64 = 1_000
    }

    enum Decision: Equatable {
        case admit
        /// Admit, after closing `Key`'s pending handshake (stale, from the address holding most).
        case admitEvicting(Key)
        /// No slot can be freed: every candidate is younger than `promptMs`.
        case refuse(String)
    }

    let limits: Limits
    private var pending: [Key: (address: String, acceptedAtMs: UInt64)] = [:]
    /// Each address's pending handshakes, oldest first.
    private var byAddress: [String: [Key]] = [:]

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    var pendingCount: Int { pending.count }
    func pendingCount(address: String) -> Int { byAddress[address]?.count ?? 0 }

    /// The time a handshake may take now: shorter while many are pending.
    var deadlineMs: UInt64 { pending.count >= limits.pressureAt ? limits.pressureDeadlineMs : limits.deadlineMs }

    /// A connection from `address` arrived. On `.admit` and `.admitEvicting` it holds a slot
    /// (and the evicted key no longer does); the shell closes the evicted connection.
    mutating func accept(_ key: Key, address: String, nowMs: UInt64) -> Decision {
        var decision = Decision.admit
        if pendingCount(address: address) >= limits.maxPerAddress {
            guard let oldest = byAddress[address]?.first, isStale(oldest, nowMs: nowMs) else {
                return .refuse("\(limits.maxPerAddress) connections from \(address) are still in their handshake; try again later")
            }
            decision = .admitEvicting(oldest)
        } else if pending.count >= limits.maxPending {
            guard let victim = evictionCandidate(nowMs: nowMs) else {
                return .refuse("\(pending.count) connections are still in their handshake; try again later")
            }
            decision = .admitEvicting(victim)
        }
        if case .admitEvicting(let victim) = decision { finished(victim) }
        pending[key] = (address, nowMs)
        byAddress[address, default: []].append(key)
        return decision
    }

    /// The handshake of `key` is done (established, failed or closed): its slot is free.
    mutating func finished(_ key: Key) {
        guard let entry = pending.removeValue(forKey: key) else { return }
        byAddress[entry.address]?.removeAll { $0 == key }
        if byAddress[entry.address]?.isEmpty == true { byAddress[entry.address] = nil }
    }

    /// Pending handshakes past the current deadline (the shell closes them; each then
    /// reports `finished`).
    func expired(nowMs: UInt64) -> [Key] {
        let deadline = deadlineMs
        return pending.compactMap { key, entry in
            nowMs >= entry.acceptedAtMs && nowMs - entry.acceptedAtMs > deadline ? key : nil
        }
    }

    private func isStale(_ key: Key, nowMs: UInt64) -> Bool {
        guard let at = pending[key]?.acceptedAtMs else { return false }
        return nowMs >= at && nowMs - at >= limits.promptMs
    }

    /// The oldest stale handshake of the address holding the most pending ones (ties: the
    /// older handshake).
    private func evictionCandidate(nowMs: UInt64) -> Key? {
        var best: (count: Int, at: UInt64, key: Key)?
        for (_, keys) in byAddress {
            guard let oldest = keys.first, isStale(oldest, nowMs: nowMs), let at = pending[oldest]?.acceptedAtMs else { continue }
            if best == nil || keys.count > best!.count || (keys.count == best!.count && at < best!.at) {
                best = (keys.count, at, oldest)
            }
        }
        return best?.key
    }
}
