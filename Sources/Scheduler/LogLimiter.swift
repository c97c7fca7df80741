/// How many log lines peers may cause: a token bucket per peer address, and one shared by
/// all peers that have not finished their handshake (strangers from many addresses). A
/// line over either budget is dropped and counted; the next line logged for that peer says
/// how many were dropped. Pure: `nowMs` (monotonic) is given.
struct LogLimiter {
    /// A token bucket: `burst` lines at once, then one line per `refillMs`.
    struct Rule: Sendable {
        var burst: Int
        var refillMs: UInt64
    }

    /// What to do with one line.
    enum Decision: Equatable {
        /// Log it; `dropped` lines of this peer were dropped since its last logged line.
        case log(dropped: Int)
        case drop
    }

    /// Per address: 10 lines at once, then one per second.
    var perPeer = Rule(burst: 10, refillMs: 1_000)
    /// All peers before their handshake together: 50 lines at once, then 5 per second.
    var preHandshake = Rule(burst: 50, refillMs: 200)
    /// Addresses remembered at most; past it, full buckets are forgotten (they would allow
    /// a full burst anyway), and if all are in use the table starts over.
    var maxPeers = 4_096

    private struct Bucket {
        var tokens: Double
        var lastMs: UInt64
        var dropped = 0

        mutating func take(_ rule: Rule, nowMs: UInt64) -> Bool {
            let elapsed = nowMs >= lastMs ? nowMs - lastMs : 0
            tokens = min(Double(rule.burst), tokens + Double(elapsed) / Double(max(rule.refillMs, 1)))
            lastMs = nowMs
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    private var peers: [String: Bucket] = [:]
    private var shared: Bucket?

    /// Whether a line caused by `peer` (an address, without port) may be logged now.
    /// `beforeHandshake`: the line also counts against the budget shared by all strangers.
    mutating func allow(peer: String, beforeHandshake: Bool, nowMs: UInt64) -> Decision {
        if peers[peer] == nil { makeRoom(nowMs: nowMs) }
        var bucket = peers[peer] ?? Bucket(tokens: Double(perPeer.burst), lastMs: nowMs)
        defer { peers[peer] = bucket }
        guard bucket.take(perPeer, nowMs: nowMs) else {
            bucket.dropped += 1
            return .drop
        }
        if beforeHandshake {
            var global = shared ?? Bucket(tokens: Double(preHandshake.burst), lastMs: nowMs)
            let allowed = global.take(preHandshake, nowMs: nowMs)
            shared = global
            guard allowed else {
                bucket.tokens += 1  // not this peer's fault: give its token back
                bucket.dropped += 1
                return .drop
            }
        }
        let dropped = bucket.dropped
        bucket.dropped = 0
        return .log(dropped: dropped)
    }

    private mutating func makeRoom(nowMs: UInt64) {
        guard peers.count >= maxPeers else { return }
        let rule = perPeer
        peers = peers.filter { _, bucket in
            var b = bucket
            _ = b.take(Rule(burst: rule.burst, refillMs: rule.refillMs), nowMs: nowMs)
            return b.tokens < Double(rule.burst) || b.dropped > 0
        }
        if peers.count >= maxPeers { peers = [:] }
    }
}
