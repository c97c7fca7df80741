/// How much of the finished tasks' history the scheduler keeps (cluster.json
/// `scheduler.retention`): in memory, and at all. A finished task is one in a terminal state.
public struct SchedulerRetention: Sendable, Equatable {
    /// Finished tasks kept in memory (the ones that finished last); older ones are read from
    /// `swarm.db` when asked for. A restart reads these and the tasks in flight, no more.
    public var inMemoryFinished = 5_000
    /// Finished tasks kept in `swarm.db` at most; past it the oldest (by `finished_at`) are deleted.
    public var maxFinishedTasks = 100_000
    /// Finished tasks older than this (since `finished_at`) are deleted.
    public var maxAgeHours = 168.0

    public static let inMemoryRange = 0...10_000_000
    public static let maxFinishedRange = 0...1_000_000_000
    public static let maxAgeRange = 0.0...876_000.0

    public init() {}

    /// The age limit in milliseconds.
    public var maxAgeMs: Int64 { Int64((maxAgeHours * 3_600_000).rounded()) }

    /// What is wrong with these values (one line naming `at`'s keys), or nil.
    public static func problem(inMemoryFinished: Double?, maxFinishedTasks: Double?, maxAgeHours: Double?, at: String) -> String? {
        for (key, value, range) in [("inMemoryFinished", inMemoryFinished, inMemoryRange),
                                    ("maxFinishedTasks", maxFinishedTasks, maxFinishedRange)] {
            guard let value else { continue }
            if !(Double(range.lowerBound)...Double(range.upperBound)).contains(value) || value != value.rounded() {
                return "\(at).\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(value)"
            }
        }
        if let hours = maxAgeHours, !maxAgeRange.contains(hours) {
            return "\(at).maxAgeHours must be a number of hours from 0 to \(Int(maxAgeRange.upperBound)), got \(hours)"
        }
        return nil
    }
}
