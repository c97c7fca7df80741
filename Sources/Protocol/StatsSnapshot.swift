/// `swarm stats --json` and the dashboard's `/api/stats`: the `statsReply` payload without its
/// `requestId`. One type for both, so their field names cannot drift apart.
public struct StatsSnapshot: Codable, Sendable, Equatable {
    public var cluster: StatsBlock
    /// Keyed by worker name.
    public var workers: [String: StatsBlock]
    /// The scheduler process's CPU time and peak RSS (each worker's is in its block's `process`).
    public var scheduler: ProcessUsage?

    public init(_ reply: Message.StatsReply) {
        cluster = reply.cluster
        workers = reply.workers
        scheduler = reply.scheduler
    }

    enum CodingKeys: String, CodingKey { case cluster, workers, scheduler }

    /// Every key, `null` when unknown.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(workers, forKey: .workers)
        try c.encode(scheduler, forKey: .scheduler)
    }
}
