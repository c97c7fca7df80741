/// Which finished tasks' files a worker removes, and when (issue 14: a worker must not fill its
/// disk with every task it ever ran). Pure: the shell says which tasks it keeps and how many
/// bytes each holds, and asks what is due; it removes them.
///
/// Terms, as enforced:
/// - A task's **files** are its log (when its run printed), an older worker's result file and,
///   when the worker made it, its work directory (`{workRoot}/{id}`; never a `--workdir`, a
///   shared `workDir` or a git worktree). Its result is in the run journal until acknowledged.
/// - A task is **kept** from the moment the scheduler acknowledged its result (`kept`), never
///   before: a result not yet acknowledged may be needed again after a restart.
/// - Its **age** is the monotonic time since then. For a task found at start (left by an
///   earlier worker process) the age is what its files' newest modification time says, read
///   once at start against the wall clock; a wall clock stepped later moves nothing.
/// - **Due**: a kept task whose age is `maxAgeMs` or more; and, while the kept tasks hold more
///   than `maxBytes` in all, the oldest ones until they hold `maxBytes` or less (exactly
///   `maxBytes` is within the limit). Oldest first either way.
/// - At most `maxKeptTasks` are kept whatever their bytes (each costs the worker ~100 bytes of
///   memory here): past it, the oldest are due too.
/// - A task that runs again here (a retry or a requeue of the same id) stops being kept
///   (`resumed`) until its new result is acknowledged.
public struct WorkerRetention: Sendable {
    /// `workers.NAME.retention` in cluster.json (`maxAgeHours`, `maxGiB`).
    public struct Limits: Sendable, Equatable {
        public var maxAgeMs: UInt64
        public var maxBytes: Int64

        public static let defaultMaxAgeHours = 24.0
        public static let defaultMaxGiB = 10.0
        /// Bounds on what a user may set: 0 (remove right after the acknowledgement) to 10
        /// years, and 0 to 1 PiB.
        public static let maxAgeHoursRange = 0.0...87_600.0
        public static let maxGiBRange = 0.0...1_048_576.0

        public init(maxAgeHours: Double = defaultMaxAgeHours, maxGiB: Double = defaultMaxGiB) {
            maxAgeMs = UInt64((maxAgeHours * 3_600_000).rounded())
            maxBytes = Int64((maxGiB * 1_073_741_824).rounded())
        }

        /// Nil when `hours` and `gib` are within bounds, else why not (`what` names the keys).
        public static func problem(maxAgeHours hours: Double?, maxGiB gib: Double?, what: (String, String)) -> String? {
            if let hours, !(hours.isFinite && maxAgeHoursRange.contains(hours)) {
                return "\(what.0) must be a number of hours from 0 to \(Int(maxAgeHoursRange.upperBound)), got \(hours)"
            }
            if let gib, !(gib.isFinite && maxGiBRange.contains(gib)) {
                return "\(what.1) must be a number of GiB from 0 to \(Int(maxGiBRange.upperBound)), got \(gib)"
            }
            return nil
        }
    }

    private struct Entry: Sendable {
        var bytes: Int64
        var sinceMs: UInt64
        /// Which `order` slot is this entry's (older slots of the same id are stale).
        var slot: Int
    }

    public let limits: Limits
    /// How many tasks may be kept at most (memory bound; see above).
    public let maxKeptTasks: Int
    private var entries: [String: Entry] = [:]
    /// Ids in the order they became kept (oldest first, by `sinceMs`); stale slots skipped.
    private var order: [(id: String, slot: Int)] = []
    private var head = 0
    private var nextSlot = 0
    /// Bytes the kept tasks hold, in all.
    public private(set) var keptBytes: Int64 = 0

    public init(limits: Limits, maxKeptTasks: Int = 1_000_000) {
        self.limits = limits
        self.maxKeptTasks = max(0, maxKeptTasks)
    }

    /// Tasks kept now.
    public var keptCount: Int { entries.count }

    /// Whether task `id`'s files are kept now (acknowledged, not removed yet).
    public func keeps(_ id: String) -> Bool { entries[id] != nil }

    /// Task `id`'s result was acknowledged at `sinceMs` (monotonic); its files hold `bytes`.
    /// Tasks found at start go in oldest first, before any acknowledged here.
    public mutating func kept(_ id: String, bytes: Int64, sinceMs: UInt64) {
        drop(id)
        let entry = Entry(bytes: max(0, bytes), sinceMs: sinceMs, slot: nextSlot)
        nextSlot += 1
        entries[id] = entry
        keptBytes += entry.bytes
        // Almost always appended at the end (acknowledgements come in time order); a task
        // found at start with an older time goes where it belongs.
        var at = order.count
        while at > head {
            let (previousId, previousSlot) = order[at - 1]
            if let previous = entries[previousId], previous.slot == previousSlot, previous.sinceMs <= sinceMs { break }
            at -= 1  // newer, or a stale slot
        }
        order.insert((id, entry.slot), at: at)
    }

    /// Task `id` runs again here: its files are not removed until it is acknowledged again.
    public mutating func resumed(_ id: String) { drop(id) }

    /// The tasks whose files are to be removed at `nowMs`, oldest first; they are no longer
    /// kept once returned.
    public mutating func due(nowMs: UInt64) -> [String] {
        var ids: [String] = []
        while let (id, entry) = oldest() {
            let old = nowMs >= entry.sinceMs && nowMs - entry.sinceMs >= limits.maxAgeMs
            guard old || keptBytes > limits.maxBytes || entries.count > maxKeptTasks else { break }
            drop(id)
            ids.append(id)
        }
        compact()
        return ids
    }

    /// When the oldest kept task comes of age (monotonic ms), for the shell's timer; nil when
    /// nothing is kept.
    public var nextDueMs: UInt64? {
        guard let (_, entry) = oldest() else { return nil }
        let (sum, overflow) = entry.sinceMs.addingReportingOverflow(limits.maxAgeMs)
        return overflow ? UInt64.max : sum
    }

    private func oldest() -> (String, Entry)? {
        var at = head
        while at < order.count {
            let (id, slot) = order[at]
            if let entry = entries[id], entry.slot == slot { return (id, entry) }
            at += 1
        }
        return nil
    }

    private mutating func drop(_ id: String) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        keptBytes -= entry.bytes
    }

    /// Skips stale slots at the head, and reclaims the array once half of it is behind.
    private mutating func compact() {
        while head < order.count, entries[order[head].id]?.slot != order[head].slot { head += 1 }
        if head > 1_024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
