import SwarmProtocol

/// The worker's held assignments (prefetch, issue 17): sent ahead by the scheduler while all
/// of the worker's slots were busy, started here the moment one frees, oldest first, without
/// a round trip to the scheduler. A pure value: the worker asks it what to start.
///
/// The rules it keeps: nothing starts while every slot is busy (`next` compares the busy
/// slots with the slots), nothing starts while the worker is not registered with the scheduler
/// (a run it starts then could be withdrawn and placed elsewhere meanwhile), one entry per task
/// id, and at most `maxHeld` entries (the scheduler sends `scheduler.prefetch` per worker; the
/// bound is for a scheduler that would send more).
///
/// An entry is held at most `maxHoldMs` (monotonic, from `hold`): one still waiting then is
/// handed back (`expired`), so a task held behind a slot busy for minutes (an LLM agent) goes
/// to a slot free elsewhere instead of idling it. Entries are kept in holding order, so the
/// expired ones are always the oldest.
struct PrefetchHold: Sendable {
    /// The most assignments held at once; more are refused.
    static let maxHeld = 256
    /// How long an assignment is held by default (`WorkerConfig.prefetchHoldMs`).
    static let defaultMaxHoldMs: Int64 = 1_000

    /// How long an entry is held before `expired` hands it back (ms, at least 1).
    let maxHoldMs: Int64
    private var entries: [(task: TaskAssignment, heldAtMs: Int64)] = []
    private var head = 0

    init(maxHoldMs: Int64 = PrefetchHold.defaultMaxHoldMs) {
        self.maxHoldMs = max(1, maxHoldMs)
    }

    var count: Int { entries.count - head }
    var isEmpty: Bool { count == 0 }

    /// The held run of task `id`, if any.
    func run(of id: String) -> RunRef? {
        entries[head...].first { $0.task.id == id }.map { RunRef(id: $0.task.id, attempt: $0.task.attempt) }
    }

    /// Holds `task` at the back from `nowMs` (monotonic; not before the last entry's time).
    /// Returns why it cannot be held (then it is not), or nil.
    mutating func hold(_ task: TaskAssignment, nowMs: Int64) -> String? {
        if let held = run(of: task.id) {
            return held.attempt == task.attempt ? "it is held here already" : "attempt \(held.attempt) of this task is held here"
        }
        guard count < Self.maxHeld else { return "\(Self.maxHeld) assignments are held here already" }
        entries.append((task, max(nowMs, entries.last?.heldAtMs ?? nowMs)))
        return nil
    }

    /// When the oldest entry is due to be handed back (monotonic ms); nil when nothing is held.
    var nextExpiryMs: Int64? {
        head < entries.count ? entries[head].heldAtMs + maxHoldMs : nil
    }

    /// Takes out, oldest first, the entries held `maxHoldMs` or longer at `nowMs`: they are
    /// handed back to the scheduler. O(entries taken out).
    mutating func expired(nowMs: Int64) -> [TaskAssignment] {
        var out: [TaskAssignment] = []
        while head < entries.count, nowMs - entries[head].heldAtMs >= maxHoldMs {
            out.append(entries[head].task)
            head += 1
        }
        if !out.isEmpty { compact() }
        return out
    }

    /// The oldest held assignment, taken out, when a slot is free for it (`busy` < `slots`)
    /// and the worker is registered; nil otherwise.
    mutating func next(busy: Int, slots: Int, registered: Bool) -> TaskAssignment? {
        guard registered, busy < slots, head < entries.count else { return nil }
        let task = entries[head].task
        head += 1
        compact()
        return task
    }

    /// Takes out the held run `run` (a kill: it never starts); nil if it is not held.
    mutating func remove(_ run: RunRef) -> TaskAssignment? {
        guard let i = entries[head...].firstIndex(where: { $0.task.id == run.id && $0.task.attempt == run.attempt }) else { return nil }
        return entries.remove(at: i).task
    }

    /// Takes out everything held, oldest first (the connection ended, or the worker stops).
    mutating func removeAll() -> [TaskAssignment] {
        let all = entries[head...].map(\.task)
        entries = []
        head = 0
        return all
    }

    /// Drops the taken entries once they are half the array: O(1) amortised per entry.
    private mutating func compact() {
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 32 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
