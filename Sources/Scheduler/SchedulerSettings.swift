import SwarmProtocol

/// Scheduler settings that the state machine uses.
public struct SchedulerSettings: Sendable {
    public var lostAfterMs: Int64 = 10_000
    public var heartbeatMs: Int = 1_000
    /// Runs per task before it is given up as `lost` (after node losses).
    public var maxAttempts = 3
    /// How placement ranks the nodes a task fits on.
    public var placementPolicy: PlacementPolicy = .spread
    /// Cluster-wide limits on running tasks per model (model name -> most running at once).
    /// A model not listed has no limit; a limit of 0 makes its tasks unplaceable.
    public var modelLimits: [String: Int] = [:]
    /// The heartbeats per second the scheduler aims to receive from all workers together:
    /// past `heartbeatMs * maxHeartbeatsPerSecond / 1000` workers, intervals grow (Nomad's rule).
    public var maxHeartbeatsPerSecond = 50
    /// The packed inputs of one task together (the sum of its `inputBlobs` sizes) at most
    /// (cluster.json `scheduler.maxInputBytesPerTask`).
    public var maxInputBytesPerTask = BlobLimits.defaultInputBytesPerTask
    /// Finished tasks kept in memory at most (cluster.json
    /// `scheduler.retention.inMemoryFinished`): past it the oldest finished leave memory once
    /// saved, and are read from the store (`TaskArchive`). Nil: every task stays (a scheduler
    /// without a store, which would otherwise forget them).
    public var inMemoryFinished: Int?
    /// Assignments a worker may hold beyond its slots (cluster.json `scheduler.prefetch`):
    /// when no worker has a free slot that fits a queued task, it may be sent ahead to a
    /// worker whose slots are all busy, which starts it the moment one frees (no round trip).
    /// Only to workers that say they hold such assignments (`Register.prefetch`); 0: never.
    public var prefetch = SchedulerSettings.defaultPrefetch
    /// `prefetch` when cluster.json and the flags say nothing.
    public static let defaultPrefetch = 1
    /// The most `prefetch` may be set to (per worker).
    public static let maxPrefetch = 64
    /// Seeds the retry backoff's jitter (`RetryPolicy`): the same seed, the same waits (tests).
    /// Nil: a random seed.
    public var retrySeed: UInt64?

    /// The heartbeat interval for a cluster of `nodes` workers, before jitter: the base
    /// interval, or longer, so that all workers together send at most
    /// `maxHeartbeatsPerSecond` heartbeats per second.
    public func heartbeatInterval(nodes: Int) -> Int {
        max(heartbeatMs, (max(0, nodes) * 1000 + maxHeartbeatsPerSecond - 1) / max(1, maxHeartbeatsPerSecond))
    }

    /// How long a worker told to beat every `intervalMs` may stay silent before it is lost:
    /// `lostAfterMs`, or three of its intervals if that is longer.
    public func lostAfter(intervalMs: Int) -> Int64 {
        max(lostAfterMs, 3 * Int64(intervalMs))
    }

    public init(lostAfterMs: Int64 = 10_000, heartbeatMs: Int = 1_000, maxAttempts: Int = 3,
                placementPolicy: PlacementPolicy = .spread, modelLimits: [String: Int] = [:]) {
        self.lostAfterMs = lostAfterMs
        self.heartbeatMs = heartbeatMs
        self.maxAttempts = maxAttempts
        self.placementPolicy = placementPolicy
        self.modelLimits = modelLimits
    }
}
