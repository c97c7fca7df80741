import SwarmProtocol

/// Progressive timeout and silence heartbeat of one run, as a pure value. It is fed the
/// start, every output burst and wake-ups, and says what is due: a warning, an extension, a
/// kill, and when to look again. Every output (stdout or stderr) resets the silence clock.
///
/// A burst is a moment of output, not a read: output that arrives after at least
/// `burstGapMs` of quiet (no output) starts a new burst; output closer than that to the
/// output before it belongs to the same burst, however many reads the kernel split it into
/// (one line read in two chunks is one burst). Output that goes on without such a pause
/// starts a new burst each `burstGapMs` after the current one began: a steady stream is
/// output at separate moments too (an agent streaming tokens for 10 s makes 10 bursts at the
/// default 1 s), never more often than one per `burstGapMs`, however it is split. The first
/// output of a run always starts a burst, however soon after the spawn: no output came before
/// it to belong to. `burstGapMs` 0 makes every read a burst.
///
/// Extension rule: when the deadline is within `extendWithinMs` and the run printed within
/// the last `activityWindowMs`, in at least `minBursts` bursts with output in that window,
/// the deadline moves `extendByMs` later, never past start + max. `extendWithinMs` 0 (like
/// `extendByMs` 0) turns extensions off: the deadline is never "within 0" of a check before
/// it has passed.
public struct ProgressClock: Sendable, Equatable {
    public enum Verdict: Equatable, Sendable {
        case silenceWarning(silentMs: Int64)
        case extended(byMs: Int64, deadlineMs: Int64, bursts: Int)
        case timedOut(afterMs: Int64)
        case silenceKill(silentMs: Int64)
    }

    public let policy: TimeoutPolicy
    public let startedAt: Int64
    public let initialTimeoutMs: Int64
    /// Absolute deadline and the furthest it may move.
    public private(set) var deadline: Int64
    public let maxDeadline: Int64
    public private(set) var lastOutputAt: Int64
    public private(set) var extensions = 0
    public private(set) var silenceWarnings = 0
    public private(set) var bursts = 0
    /// When the current burst began (its first output).
    private var burstStartedAt: Int64 = 0
    /// Whether the current silence has been warned about already.
    private var warned = false
    /// When each of the last `minBursts` bursts last had output, oldest first: a burst is in
    /// the activity window while any of its output is.
    private var recentBursts: [Int64] = []

    public init(policy: TimeoutPolicy, level: ComplexityLevel, startedAt: Int64) {
        self.policy = policy
        self.startedAt = startedAt
        initialTimeoutMs = policy.initialMs(for: level)
        deadline = startedAt + initialTimeoutMs
        maxDeadline = startedAt + max(policy.maxMs, initialTimeoutMs)
        lastOutputAt = startedAt
    }

    public var currentTimeoutMs: Int64 { deadline - startedAt }

    /// Output arrived (one read): recorded, then checked. Returns what is due now (an
    /// extension, typically).
    public mutating func output(nowMs: Int64) -> [Verdict] {
        recordOutput(nowMs: nowMs)
        return check(nowMs: nowMs)
    }

    /// Output arrived (one read): it starts a new burst or continues the current one, and
    /// ends the silence. Nothing is checked: a run being killed or drained still has its
    /// output counted, but no deadline of it moves.
    public mutating func recordOutput(nowMs: Int64) {
        if bursts == 0 || nowMs - lastOutputAt >= policy.burstGapMs || nowMs - burstStartedAt >= policy.burstGapMs {
            bursts += 1
            burstStartedAt = nowMs
            recentBursts.append(nowMs)
            if recentBursts.count > max(1, policy.minBursts) { recentBursts.removeFirst() }
        } else {
            recentBursts[recentBursts.count - 1] = nowMs
        }
        lastOutputAt = nowMs
        warned = false
    }

    /// Bursts with output in the activity window before `nowMs`.
    func burstsInWindow(nowMs: Int64) -> Int {
        recentBursts.filter { nowMs - $0 <= policy.activityWindowMs }.count
    }

    /// What is due at `nowMs`. A kill verdict ends the run; nothing is due after it.
    public mutating func check(nowMs: Int64) -> [Verdict] {
        var verdicts: [Verdict] = []
        let silent = nowMs - lastOutputAt
        if policy.killsOnSilence && silent >= policy.silenceKillMs {
            return [.silenceKill(silentMs: silent)]
        }
        if policy.enforcesDeadline {
            if let extended = extensionDue(nowMs: nowMs) { verdicts.append(extended) }
            if nowMs >= deadline { return verdicts + [.timedOut(afterMs: deadline - startedAt)] }
        }
        if policy.warnsOnSilence && !warned && silent >= policy.silenceWarnMs {
            warned = true
            silenceWarnings += 1
            verdicts.append(.silenceWarning(silentMs: silent))
        }
        return verdicts
    }

    private mutating func extensionDue(nowMs: Int64) -> Verdict? {
        guard policy.extendWithinMs > 0, deadline < maxDeadline, deadline - nowMs <= policy.extendWithinMs,
              nowMs - lastOutputAt <= policy.activityWindowMs else { return nil }
        let inWindow = burstsInWindow(nowMs: nowMs)
        guard inWindow >= policy.minBursts else { return nil }
        let newDeadline = min(deadline + policy.extendByMs, maxDeadline)
        let by = newDeadline - deadline
        guard by > 0 else { return nil }
        deadline = newDeadline
        extensions += 1
        return .extended(byMs: by, deadlineMs: deadline - startedAt, bursts: inWindow)
    }

    /// Which limit ended the run, for a `.timedOut` verdict at `nowMs`: the maximum (the
    /// most extensions allow), or what the output near the deadline lacked to extend it.
    /// Names the settings (`--timeout`, `--max-timeout`) a user changes to move it.
    public func timeoutExplanation(nowMs: Int64) -> String {
        func s(_ ms: Int64) -> String { ms % 1000 == 0 ? "\(ms / 1000) s" : "\(Double(ms) / 1000) s" }
        let maxTimeout = maxDeadline - startedAt
        if deadline >= maxDeadline {
            if initialTimeoutMs > policy.maxMs {
                return "reached --timeout \(s(initialTimeoutMs)), which is beyond --max-timeout \(s(policy.maxMs)), so it cannot be extended"
            }
            let how = extensions > 0 ? "after \(extensions) extension(s)" : "the most extensions allow"
            return "reached --max-timeout \(s(maxTimeout)) (\(how))"
        }
        let timeout = s(deadline - startedAt)
        let upTo = "up to --max-timeout \(s(maxTimeout))"
        if policy.extendByMs <= 0 { return "reached the \(timeout) deadline (extensions are off: --extend-by 0)" }
        if policy.extendWithinMs <= 0 { return "reached the \(timeout) deadline (extensions are off: --extend-within 0)" }
        if nowMs - lastOutputAt > policy.activityWindowMs {
            return "no output in the last \(s(policy.activityWindowMs)) before the \(timeout) deadline (output near the deadline extends it, \(upTo))"
        }
        let inWindow = burstsInWindow(nowMs: nowMs)
        // A run shorter than the window is counted over all of it: say so, not "the last 30 s".
        let counted = nowMs - startedAt < policy.activityWindowMs
            ? "in its \(s(deadline - startedAt)) run" : "in the last \(s(policy.activityWindowMs))"
        return "\(inWindow) output burst(s) \(counted) before the \(timeout) deadline, \(policy.minBursts) needed to extend it (\(upTo))"
    }

    /// When something may next be due without new output; nil when nothing ever is.
    public func nextWakeMs(nowMs: Int64) -> Int64? {
        var times: [Int64] = []
        if policy.killsOnSilence { times.append(lastOutputAt + policy.silenceKillMs) }
        if policy.warnsOnSilence && !warned { times.append(lastOutputAt + policy.silenceWarnMs) }
        if policy.enforcesDeadline {
            times.append(deadline)
            // Entering the extension window: progress already shown may earn an extension.
            let windowStart = deadline - policy.extendWithinMs
            if deadline < maxDeadline && windowStart > nowMs { times.append(windowStart) }
        }
        return times.min()
    }
}
