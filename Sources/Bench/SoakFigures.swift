import Foundation

/// One sample of the soak, taken after a batch has ended (issue 14 item 6).
public struct SoakSample: Codable, Sendable, Equatable {
    /// Tasks ended so far.
    public var done: Int
    public var schedulerRssKiB: Int
    public var schedulerFds: Int
    /// Per worker, in the cluster's order.
    public var workerRssKiB: [Int]
    public var workerFds: [Int]
    /// `swarm.db` with its `-wal` and `-shm` files, after the batch.
    public var dbBytes: Int64
    /// The largest `dbBytes` seen while the batch ran (polled every `SoakWorkload.pollMs`) and
    /// at its end; nil in reports made before it existed. The size is a sawtooth (rows pile up
    /// for a retention interval, then a purge step deletes them, its WAL frames peak, a
    /// checkpoint copies them): one value after each batch caught that tooth at any height,
    /// so the late half's largest once read 1.9x the early half's with nothing growing.
    public var dbPeakBytes: Int64?
    /// Each worker's data dir: allocated blocks of everything in it.
    public var workerDiskBytes: [Int64]
    /// `swarm tasks --json`'s listing (every task kept, in pages): its time and length.
    public var listSeconds: Double
    public var listedTasks: Int
    /// The batch just ended: its tasks over its wall time.
    public var tasksPerSecond: Double

    public init(done: Int, schedulerRssKiB: Int, schedulerFds: Int, workerRssKiB: [Int], workerFds: [Int],
                dbBytes: Int64, workerDiskBytes: [Int64], listSeconds: Double, listedTasks: Int, tasksPerSecond: Double = 0) {
        self.tasksPerSecond = tasksPerSecond
        self.done = done
        self.schedulerRssKiB = schedulerRssKiB
        self.schedulerFds = schedulerFds
        self.workerRssKiB = workerRssKiB
        self.workerFds = workerFds
        self.dbBytes = dbBytes
        self.workerDiskBytes = workerDiskBytes
        self.listSeconds = listSeconds
        self.listedTasks = listedTasks
    }
}

/// The soak's limits, its samples and its verdicts. Pure: the judging is unit-tested on
/// fabricated samples. Terms, with their numbers:
/// - **settled**: the samples taken once more than `settledFraction` (10%) of the tasks ended.
/// - **RSS varies by at most 20%**: over the settled samples, (max - min) / min of the
///   scheduler's RSS is at most `maxRssSpread` (0.20). Exactly 20% is within it.
/// - **descriptors not at all**: the scheduler's open descriptors are the same number in every
///   settled sample (each worker's too), each the fewest of 5 reads 20 ms apart (a background
///   checkpoint's connection holds 3 for a few milliseconds: held, not leaked).
/// - **DB within the retention limits**: every sample lists at most `maxFinishedTasks` + 500
///   + the tasks of `retentionLagSeconds` (11 s) at that batch's rate: retention runs every
///   10 s, deleting 500 a step, so what finished since its last run may not be deleted yet;
///   and the DB does not grow with the tasks: its largest size in the second half of the
///   settled samples is at most `maxDbGrowth` (1.25) x its largest in the first half, sizes
///   polled every 50 ms while each batch runs (`dbPeakBytes`), so each half sees the tops of
///   its retention cycles (a half of the CI's soak spans about 3 of them).
/// - **worker disk within the retention limits**: each worker's data dir, in every sample, at
///   most `workerMaxBytes` x 1.1 + `workerSlackBytes` (4 MiB: the run journal, the running
///   tasks' files and one clean-up period's lag).
public struct SoakFigures: Codable, Sendable, Equatable {
    public var tasks: Int
    public var batches: Int
    /// The cluster's retention, small so that it binds: `scheduler.retention` and the
    /// workers' `retention.maxGiB` (in bytes).
    public var maxFinishedTasks: Int
    public var inMemoryFinished: Int
    public var workerMaxBytes: Int64
    public var samples: [SoakSample] = []
    /// SIGTERM, start again on the same state, until it listens; and the tasks it then lists.
    public var restartSeconds: Double?
    public var listedAfterRestart: Int?

    public static let settledFraction = 0.10
    public static let maxRssSpread = 0.20
    public static let maxDbGrowth = 1.25
    public static let retentionLagSeconds = 11.0
    public static let workerSlackBytes: Int64 = 4 << 20

    public init(tasks: Int, batches: Int, maxFinishedTasks: Int, inMemoryFinished: Int, workerMaxBytes: Int64) {
        self.tasks = tasks
        self.batches = batches
        self.maxFinishedTasks = maxFinishedTasks
        self.inMemoryFinished = inMemoryFinished
        self.workerMaxBytes = workerMaxBytes
    }

    /// The soak's shape for `tasks`: 20 batches (so 18 settled samples), at most 50,000 tasks
    /// each; limits that bind well before the settled samples: 5% of the tasks kept in
    /// `swarm.db` (at least 500), a quarter of those in memory, and each worker's files held
    /// to about 400 bytes per task of the run (at least 4 MiB: a trivial task's files take
    /// about 8 KiB, so a worker keeps roughly the last 1/20 of its tasks).
    public static func shape(tasks: Int) -> SoakFigures {
        let batches = max(20, (tasks + 49_999) / 50_000)
        let kept = max(500, tasks / 20)
        return SoakFigures(tasks: tasks, batches: min(batches, max(1, tasks)), maxFinishedTasks: kept,
                           inMemoryFinished: max(100, kept / 4), workerMaxBytes: max(4 << 20, Int64(tasks) * 400))
    }

    var settled: [SoakSample] {
        samples.filter { Double($0.done) > Double(tasks) * Self.settledFraction }
    }

    static func spread<T: BinaryInteger>(_ values: [T]) -> Double? {
        guard let low = values.min(), let high = values.max(), low > 0 else { return nil }
        return Double(high - low) / Double(low)
    }

    /// (max - min) / min of the scheduler's settled RSS; nil without settled samples.
    public var rssSpread: Double? { Self.spread(settled.map(\.schedulerRssKiB)) }
    public var rssBounded: Bool? { rssSpread.map { $0 <= Self.maxRssSpread } }

    /// The scheduler's and every worker's descriptors unchanged over the settled samples.
    public var fdsConstant: Bool? {
        let s = settled
        guard let first = s.first else { return nil }
        return s.allSatisfy { $0.schedulerFds == first.schedulerFds && $0.workerFds == first.workerFds }
    }

    /// The most tasks `sample` may list (see the type's terms).
    public func listLimit(_ sample: SoakSample) -> Int {
        maxFinishedTasks + 500 + Int((sample.tasksPerSecond * Self.retentionLagSeconds).rounded(.up))
    }

    /// The settled samples' largest DB size in their second half over the first half's (the
    /// peaks seen during each batch, where sampled).
    public var dbGrowth: Double? {
        let s = settled.map { $0.dbPeakBytes ?? $0.dbBytes }
        guard s.count >= 2, let early = s[..<(s.count / 2)].max(), let late = s[(s.count / 2)...].max(), early > 0 else { return nil }
        return Double(late) / Double(early)
    }

    public var dbBounded: Bool? {
        guard let growth = dbGrowth else { return nil }
        return growth <= Self.maxDbGrowth && samples.allSatisfy { $0.listedTasks >= 0 && $0.listedTasks <= listLimit($0) }
    }

    /// The most a worker's data dir may hold (see the type's terms).
    public var workerDiskLimit: Int64 { workerMaxBytes + workerMaxBytes / 10 + Self.workerSlackBytes }
    public var workerDiskBounded: Bool? {
        guard !samples.isEmpty else { return nil }
        return samples.allSatisfy { $0.workerDiskBytes.allSatisfy { $0 <= workerDiskLimit } }
    }

    /// Every target met (nil: nothing settled to judge).
    public var bounded: Bool? {
        let all = [rssBounded, fdsConstant, dbBounded, workerDiskBounded]
        if all.contains(where: { $0 == nil }) { return nil }
        return all.allSatisfy { $0 == true }
    }
}
