import Testing
@testable import SwarmMetrics

/// A flood of scrapes costs the loop a bounded share of its time: a body is reused for
/// `share` times as long as it took to make, and made again after.
@Suite struct ScrapeCacheTests {
    /// A fake clock: each `now()` reads `times` in order.
    final class Clock {
        let base = ContinuousClock.now
        var times: [Int] = []
        func now() -> ContinuousClock.Instant { base + .milliseconds(times.removeFirst()) }
    }

    @Test func aBodyIsReusedForShareTimesItsCostThenMadeAgain() {
        var cache = ScrapeCache(share: 10)
        let clock = Clock()
        var made = 0
        func scrape(_ times: [Int]) -> [UInt8] {
            clock.times = times
            return cache.body(now: clock.now) { made += 1; return [UInt8(made)] }
        }
        // Made from 0 to 40 ms: fresh until 40 + 10 * 40 = 440 ms.
        #expect(scrape([0, 40]) == [1])
        #expect(scrape([41]) == [1])
        #expect(scrape([439]) == [1])
        #expect(made == 1)
        #expect(scrape([440, 441]) == [2])
        #expect(made == 2)
        // A cheap body (1 ms) is fresh for 10 ms only.
        #expect(scrape([450]) == [2])
        #expect(scrape([451, 452]) == [3])
    }

    @Test func a1000ScrapeFloodMakesAFewBodiesNotOneEach() {
        var cache = ScrapeCache()
        let clock = Clock()
        var made = 0
        var t = 0
        for _ in 0..<1_000 {
            // Each making takes 40 ms; a request arrives every 1 ms of loop time otherwise.
            clock.times = [t, t + 40]
            _ = cache.body(now: clock.now) { made += 1; return [] }
            t += clock.times.isEmpty ? 40 : 1
        }
        // Without the cache: 1,000 makings (40 s of loop); with it, about one per 440 ms.
        #expect(made < 1_000 / 10)
    }

    @Test func shareZeroMakesEveryScrape() {
        var cache = ScrapeCache(share: 0)
        let clock = Clock()
        var made = 0
        for i in 0..<5 {
            clock.times = [i * 10, i * 10 + 5]
            _ = cache.body(now: clock.now) { made += 1; return [] }
        }
        #expect(made == 5)
    }
}
