/// One direction of a simulated link (`LinkProxy`): how long the bytes handed to it take to
/// come out of the other end. The link sends what it is given in order at `bytesPerSecond`
/// (serialization), and each byte then travels `delayNs` (propagation), so a chunk comes out at
/// `max(now, when the link is free) + count / rate + delay`. Pure: times in, times out.
struct LinkShaper: Sendable, Equatable {
    /// One-way latency.
    var delayNs: UInt64 = 0
    /// The link's rate; nil: no limit.
    var bytesPerSecond: Int?
    /// When the link has finished sending what it was given so far.
    private(set) var busyUntilNs: UInt64 = 0

    init(delayMs: Int = 0, bytesPerSecond: Int? = nil) {
        delayNs = UInt64(max(0, delayMs)) * 1_000_000
        self.bytesPerSecond = bytesPerSecond
    }

    /// When `count` bytes handed to the link at `nowNs` may be written at its far end.
    mutating func release(count: Int, nowNs: UInt64) -> UInt64 {
        let start = max(nowNs, busyUntilNs)
        let sending = bytesPerSecond.map { UInt64(max(0, count)) * 1_000_000_000 / UInt64(max(1, $0)) } ?? 0
        busyUntilNs = start + sending
        return busyUntilNs + delayNs
    }

    /// New settings keep the bytes already on the link where they are.
    mutating func reshape(delayMs: Int, bytesPerSecond: Int?) {
        delayNs = UInt64(max(0, delayMs)) * 1_000_000
        self.bytesPerSecond = bytesPerSecond
    }
}
