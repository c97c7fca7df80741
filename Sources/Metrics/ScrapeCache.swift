/// A scrape's rendered body, reused while it is fresh. Making one costs the loop time in
/// proportion to what it counts (the scheduler's walks every task in memory: 40 to 120 ms
/// for 10,000 in a debug build), and nothing limits how often peers ask: 32 connections
/// pipelining `/metrics` made one scrape each per loop turn and stalled the scheduler for
/// 10 s at a time (clients timed out in their handshake). A body is reused for `share` times
/// as long as it took to make, so however many scrapes arrive, making them takes at most
/// 1/(share + 1) of the loop's time; a cheap one is fresh again within microseconds, so a
/// scrape after a change sees it unless scrapes came faster than that.
public struct ScrapeCache {
    /// The default `share`: scrapes take at most a tenth of the loop (10 parts idle to 1 made).
    public static let defaultShare = 10

    private let share: Int
    private var body: [UInt8]?
    private var freshUntil: ContinuousClock.Instant?

    public init(share: Int = ScrapeCache.defaultShare) {
        self.share = max(0, share)
    }

    /// The body made by `make`, or the last one while it is fresh at `now()`. `now` is read
    /// before and after `make` (the time it took sets how long its body stays fresh).
    public mutating func body(now: () -> ContinuousClock.Instant, make: () -> [UInt8]) -> [UInt8] {
        let start = now()
        if let body, let freshUntil, start < freshUntil { return body }
        let made = make()
        let end = now()
        body = made
        freshUntil = end + (end - start) * share
        return made
    }
}
