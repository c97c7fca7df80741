#if canImport(Glibc)
import Glibc
#endif

// Two clocks, two jobs (issue 12):
// - the monotonic clock (CLOCK_MONOTONIC: milliseconds since an arbitrary start, the boot on
//   Linux) measures every duration: deadlines, silence, heartbeats, `--lost-after`, handshake
//   and idle timeouts, backoffs, waits. Nobody can step it: an NTP correction or a person
//   fixing the date moves the wall clock only. Its readings mean nothing in another boot or
//   on another machine, so they are never stored nor sent.
// - the wall clock (CLOCK_REALTIME, unix time) only dates things: timestamps people see or
//   that are stored and sent (`submittedAt`, `startedAt`, `finishedAt`, log lines, a task
//   event's `at`). It may jump by hours either way, so no duration is measured on it.
// Logic never reads either itself: pure cores are given `nowMs` (monotonic) and, where they
// date something, `at` (wall); shells read `Clocks` (tests give their own).

/// Wall-clock unix milliseconds: for timestamps only (see above), never for a duration.
public func unixMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Wall-clock unix microseconds: timestamps finer than a millisecond that are compared
/// across processes (a run's `startedAtUs` against its client's submission), never a duration
/// within one process.
public func unixMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
}

/// Monotonic milliseconds (CLOCK_MONOTONIC): what every duration and deadline is measured on.
/// The same clock as the event loop's `nowMs` (libuv reads CLOCK_MONOTONIC too), so the two
/// may be compared. Never stored nor sent: it restarts at each boot.
public func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic microseconds, for durations finer than a millisecond (see `monotonicMillis`).
public func monotonicMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
}

/// The two clocks a shell reads, injected so that tests can give their own (and step the
/// wall clock without moving the other). `monotonic` for every duration and deadline, `wall`
/// only for dating things; both in milliseconds.
public struct Clocks: Sendable {
    public var monotonic: @Sendable () -> Int64
    public var wall: @Sendable () -> Int64

    public init(monotonic: @escaping @Sendable () -> Int64, wall: @escaping @Sendable () -> Int64) {
        self.monotonic = monotonic
        self.wall = wall
    }

    /// The machine's clocks: `monotonicMillis` and `unixMillis`.
    public static let system = Clocks(monotonic: monotonicMillis, wall: unixMillis)
}
