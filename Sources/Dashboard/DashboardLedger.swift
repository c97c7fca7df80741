import SwarmProtocol

/// What the cluster page shows beside the listings: the last tasks that ended, and how many
/// ended in each of the last minutes. Fed where the scheduler ends a task; bounded by
/// `DashboardLimits.recentOutcomes` entries and `throughputMinutes` buckets. Pure: times come in.
/// Kept in memory only: a restarted scheduler starts it empty.
public struct DashboardLedger: Sendable {
    /// One ended task.
    public struct Outcome: Codable, Sendable, Equatable {
        public var id: String
        public var state: TaskState
        /// Unix ms (the wall clock) when the scheduler saw it end.
        public var at: Int64
        public init(id: String, state: TaskState, at: Int64) {
            self.id = id
            self.state = state
            self.at = at
        }
    }

    /// Tasks ended in the minute starting at `minute` (unix ms, a multiple of 60 000).
    public struct Minute: Codable, Sendable, Equatable {
        public var minute: Int64
        public var ended: Int
        public init(minute: Int64, ended: Int) {
            self.minute = minute
            self.ended = ended
        }
    }

    public let limits: DashboardLimits
    /// Newest last; at most `recentOutcomes`.
    private var outcomes: [Outcome] = []
    private var next = 0
    /// Oldest first; only minutes with an end in them.
    private var minutes: [Minute] = []

    public init(limits: DashboardLimits = DashboardLimits()) {
        self.limits = limits
    }

    /// Task `id` ended in `state` at `at` (unix ms).
    public mutating func ended(id: String, state: TaskState, at: Int64) {
        let outcome = Outcome(id: id, state: state, at: at)
        let cap = max(1, limits.recentOutcomes)
        if outcomes.count < cap {
            outcomes.append(outcome)
        } else {
            outcomes[next] = outcome
        }
        next = (next + 1) % cap
        let minute = at - ((at % 60_000) + 60_000) % 60_000
        if let last = minutes.last, last.minute == minute {
            minutes[minutes.count - 1].ended += 1
        } else if minutes.last.map({ $0.minute < minute }) ?? true {
            minutes.append(Minute(minute: minute, ended: 1))
        } else if let i = minutes.firstIndex(where: { $0.minute == minute }) {
            // The wall clock stepped back: counted where it belongs, if still kept.
            minutes[i].ended += 1
        }
        let keepFrom = minute - Int64(max(1, limits.throughputMinutes) - 1) * 60_000
        minutes.removeAll { $0.minute < keepFrom }
    }

    /// The last ended tasks, newest first.
    public var recent: [Outcome] {
        guard outcomes.count == max(1, limits.recentOutcomes) else { return outcomes.reversed() }
        return Array((outcomes[next...] + outcomes[..<next]).reversed())
    }

    /// Each of the last `throughputMinutes` minutes up to the one holding `now`, oldest first,
    /// minutes without an end included as 0.
    public func throughput(now: Int64) -> [Minute] {
        let current = now - ((now % 60_000) + 60_000) % 60_000
        let count = max(1, limits.throughputMinutes)
        return (0..<count).map { back in
            let minute = current - Int64(count - 1 - back) * 60_000
            return Minute(minute: minute, ended: minutes.first { $0.minute == minute }?.ended ?? 0)
        }
    }
}

/// `/api/summary`: the cluster page's figures in one answer.
public struct DashboardSummary: Codable, Sendable, Equatable {
    /// Tasks queued (waiting for a slot or for the tasks they come after) and running.
    public var queued: Int
    public var running: Int
    /// Workers by state (`ready`, `draining`, `lost`).
    public var workers: [String: Int]
    /// Slots of connected workers, and those free.
    public var slots: Int
    public var freeSlots: Int
    /// Tasks ended per minute, oldest first (`DashboardLedger.throughput`).
    public var throughput: [DashboardLedger.Minute]
    /// The last tasks that ended, newest first.
    public var recent: [DashboardLedger.Outcome]
    /// Unix ms when this was computed (the scheduler's wall clock).
    public var at: Int64

    public init(queued: Int, running: Int, workers: [String: Int], slots: Int, freeSlots: Int,
                throughput: [DashboardLedger.Minute], recent: [DashboardLedger.Outcome], at: Int64) {
        self.queued = queued
        self.running = running
        self.workers = workers
        self.slots = slots
        self.freeSlots = freeSlots
        self.throughput = throughput
        self.recent = recent
        self.at = at
    }
}

/// `/api/tasks`: one page of `swarm tasks --json`'s tasks, and the cursor of the next page
/// (`cursor=` in the next request; null: this was the last).
public struct DashboardTaskPage: Encodable, Sendable {
    public var tasks: [TaskInfo]
    public var next: String?

    public init(tasks: [TaskInfo], next: String?) {
        self.tasks = tasks
        self.next = next
    }

    enum CodingKeys: String, CodingKey { case tasks, next }

    /// Both keys always (`next` null on the last page).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tasks, forKey: .tasks)
        try c.encode(next, forKey: .next)
    }
}
