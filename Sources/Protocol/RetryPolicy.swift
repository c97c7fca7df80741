import Foundation

/// When a task's run is retried, and after how long (issue 13). Built from a spec's
/// `retries`, `retryOn` and `retryBackoff`; pure.
///
/// A run that ends in a state of `retryOn` while retries are left is run again after a
/// backoff: retry k (1, 2, ...) waits `base * 2^(k-1)` seconds, capped at `maxBackoffSeconds`,
/// times a jitter factor in [1 - `jitter`, 1 + `jitter`), then capped again (so no wait is
/// over 10 minutes). Node-loss requeues are not retries: they keep their own budget
/// (`SchedulerSettings.maxAttempts`).
public struct RetryPolicy: Equatable, Sendable {
    /// Retries at most (0: a run's end is final).
    public var retries: Int
    /// The end states that are retried.
    public var retryOn: Set<TaskState>
    /// The first retry's backoff, in milliseconds.
    public var backoffMs: Int64

    /// `failed,timed_out,silence_killed,spawn_failed`: what a flaky agent ends in.
    public static let defaultRetryOn: [TaskState] = [.failed, .timedOut, .silenceKilled, .spawnFailed]
    /// What `retryOn` may name: every end but success and a user's cancel. `lost` and
    /// `health_failed` are the ends left once the node-loss budget is spent.
    public static let retryableStates: [TaskState] = [.failed, .timedOut, .silenceKilled, .spawnFailed, .lost, .healthFailed]
    public static let defaultBackoffSeconds = 10.0
    public static let maxBackoffSeconds = 600.0
    /// More is a typo, not a plan (GNU parallel's `--retries` has no bound; 100 runs of an
    /// agent is already hours of tokens).
    public static let maxRetries = 100
    /// The jitter's half-width, as a fraction of the backoff: ±20 %.
    public static let jitter = 0.2
    /// Most states `retryOn` may list (duplicates included).
    public static let maxRetryOnEntries = 16

    public init(retries: Int = 0, retryOn: Set<TaskState> = Set(defaultRetryOn), backoffMs: Int64 = 10_000) {
        self.retries = retries
        self.retryOn = retryOn
        self.backoffMs = backoffMs
    }

    /// The policy of a spec that passed `TaskSpec.problem()` (unknown state names, which it
    /// refuses, are ignored here).
    public init(_ spec: TaskSpec) {
        retries = min(max(spec.retries ?? 0, 0), Self.maxRetries)
        retryOn = spec.retryOn.map { Set($0.compactMap(TaskState.init(rawValue:))) } ?? Set(Self.defaultRetryOn)
        let seconds = spec.retryBackoff ?? Self.defaultBackoffSeconds
        backoffMs = seconds.isFinite ? Int64(min(max(seconds, 0), Self.maxBackoffSeconds) * 1000) : 10_000
    }

    /// Whether a run that ended `state` is run again, `used` retries having been made.
    public func retries(_ state: TaskState, used: Int) -> Bool {
        used < retries && retryOn.contains(state)
    }

    /// The wait before retry number `retry` (1 for the first), in milliseconds. `unit` is a
    /// number in [0, 1) (uniform: the scheduler's seeded generator) that picks the jitter.
    public func backoffMs(retry: Int, unit: Double) -> Int64 {
        let capMs = Int64(Self.maxBackoffSeconds * 1000)
        // 2^20 times even 1 ms is past the cap: no overflow, however many retries.
        let doublings = min(max(retry - 1, 0), 20)
        let nominal = min(capMs, backoffMs << doublings)
        let u = unit.isFinite ? min(max(unit, 0), 1) : 0.5
        let factor = 1 - Self.jitter + 2 * Self.jitter * u
        return min(capMs, Int64((Double(nominal) * factor).rounded()))
    }

    /// Why these spec fields cannot be accepted, or nil. Field names as in `--file`.
    public static func problem(retries: Int?, retryOn: [String]?, retryBackoff: Double?) -> String? {
        if let retries, !(0...maxRetries).contains(retries) { return "retries must be 0 to \(maxRetries), got \(retries)" }
        if let retryBackoff, !(retryBackoff.isFinite && retryBackoff >= 0 && retryBackoff <= maxBackoffSeconds) {
            return "retryBackoff must be a number of seconds from 0 to \(Int(maxBackoffSeconds)), got \(retryBackoff)"
        }
        guard let retryOn else { return nil }
        if retryOn.isEmpty { return "retryOn names no state (give at least one of \(allowedList))" }
        if retryOn.count > maxRetryOnEntries { return "retryOn names \(retryOn.count) states; at most \(maxRetryOnEntries)" }
        for name in retryOn {
            guard let state = TaskState(rawValue: name), retryableStates.contains(state) else {
                return "retryOn: '\(PeerText.safe(name, limit: 40))' is not a state a run is retried from (one of \(allowedList))"
            }
        }
        return nil
    }

    static var allowedList: String { retryableStates.map(\.rawValue).joined(separator: ", ") }

    /// `--retry-on failed,timed_out`: the names, split at commas, blanks around them dropped.
    public static func parseList(_ text: String) -> [String] {
        text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// The backoff's jitter: seeded, so the same seed gives the same waits and tests can name them.
public typealias RetryJitter = SplitMix64
