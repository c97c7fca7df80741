/// How many lines one kind of event may write to the log: at most `maxLines` in a window of
/// `windowMs` that starts at the first line; the events past it in that window are counted,
/// not logged, and one summary line gives their count once the window is over (at the next
/// event or the next `closeWindow` call, whichever comes first). So a flood of bad TLS
/// handshakes costs at most `maxLines` + 1 lines per `windowMs`, and none goes unaccounted.
/// Pure: `nowMs` (monotonic) is given.
struct LineBudget: Equatable {
    var maxLines: Int
    var windowMs: Int64

    /// Loop time (ms) the current window started at; nil: no window open.
    private var windowStartMs: Int64?
    private var logged = 0
    /// Events of the current window that were not logged.
    private(set) var suppressed = 0

    init(maxLines: Int, windowMs: Int64) {
        self.maxLines = maxLines
        self.windowMs = windowMs
    }

    /// Ends the window if `windowMs` have passed since it started; returns how many events
    /// of it were not logged when there were any (the summary line is due), else nil.
    mutating func closeWindow(nowMs: Int64) -> Int? {
        guard let start = windowStartMs, nowMs - start >= windowMs else { return nil }
        let count = suppressed
        windowStartMs = nil
        logged = 0
        suppressed = 0
        return count > 0 ? count : nil
    }

    /// One event now: whether its line may be logged. Call `closeWindow` first.
    mutating func admit(nowMs: Int64) -> Bool {
        if windowStartMs == nil { windowStartMs = nowMs }
        guard logged < maxLines else {
            suppressed += 1
            return false
        }
        logged += 1
        return true
    }
}
