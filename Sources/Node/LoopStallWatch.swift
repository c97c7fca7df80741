/// Tells when an event loop did not come back to its timers for long: a repeating timer of
/// `periodMs` reports each firing (`fired`), and a firing `thresholdMs` or more after the
/// previous one means the loop was held that long (one long turn of callbacks, or the process
/// was not scheduled). A pure value: the shell feeds it monotonic milliseconds.
///
/// Why it matters: a worker's heartbeat goes out from the same loop, so a worker whose loop
/// is held past the scheduler's `--lost-after` is declared lost with all its runs. The log
/// line this gives ("worker loop was stalled for N ms") names the stall on the worker's side.
struct LoopStallWatch: Sendable, Equatable {
    /// The timer's period.
    let periodMs: Int64
    /// A gap between two firings of at least this many ms is a stall.
    let thresholdMs: Int64
    private var lastMs: Int64
    /// The longest gap seen so far (ms), stall or not.
    private(set) var longestGapMs: Int64 = 0

    init(periodMs: Int64 = 100, thresholdMs: Int64 = 500, nowMs: Int64) {
        self.periodMs = max(1, periodMs)
        self.thresholdMs = max(self.periodMs + 1, thresholdMs)
        lastMs = nowMs
    }

    /// The timer fired at `nowMs`: the gap since the previous firing (or the start) when it
    /// is a stall, else nil. A clock that went backwards counts as no gap.
    mutating func fired(nowMs: Int64) -> Int64? {
        let gap = max(0, nowMs - lastMs)
        lastMs = max(lastMs, nowMs)
        longestGapMs = max(longestGapMs, gap)
        return gap >= thresholdMs ? gap : nil
    }
}
