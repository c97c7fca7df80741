/// Single flight of a worker's mirror updates (clone or fetch), as a pure value: which
/// requests start an update, which join the one running, and which reuse one that just ended.
///
/// - A request while an update of the same mirror runs joins it: every joined waiter gets that
///   update's outcome (100 simultaneous tasks of one repository: one clone).
/// - A request within `freshMs` after an update SUCCEEDED (`nowMs - finishedAt < freshMs`)
///   reuses it without fetching: a burst of tasks arriving one after another does not fetch
///   once per task. At `freshMs` and later, a new update starts.
/// - A failed update is never reused: the next request tries again.
struct MirrorSync<Waiter> {
    /// 2 s: longer than the gaps between assignments of one burst (milliseconds), short enough
    /// that a task submitted after a push sees it (the push takes longer than this to do).
    static var freshMs: Int64 { 2_000 }

    enum Decision: Equatable {
        /// The mirror was updated within `freshMs`: use it now.
        case ready
        /// Start the update; report it with `finished`.
        case start
        /// An update runs: the waiter is resumed by its `finished`.
        case joined
    }

    private var running: [String: [Waiter]] = [:]
    private var succeededAt: [String: Int64] = [:]

    init() {}

    /// How many mirrors are being updated now.
    var updating: Int { running.count }

    mutating func request(_ key: String, _ waiter: Waiter, nowMs: Int64) -> Decision {
        if running[key] != nil {
            running[key]!.append(waiter)
            return .joined
        }
        if let at = succeededAt[key] {
            if nowMs - at < Self.freshMs { return .ready }
            succeededAt[key] = nil
        }
        running[key] = [waiter]
        return .start
    }

    /// The update of `key` ended: every waiter of it (the starter first), to resume with `ok`.
    mutating func finished(_ key: String, ok: Bool, nowMs: Int64) -> [Waiter] {
        let waiters = running.removeValue(forKey: key) ?? []
        if ok { succeededAt[key] = nowMs } else { succeededAt[key] = nil }
        // Entries older than the window serve no one: forget them (bounded by the mirrors in use).
        succeededAt = succeededAt.filter { nowMs - $0.value < Self.freshMs }
        return waiters
    }
}
