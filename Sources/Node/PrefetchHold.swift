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
struct PrefetchHold: Sendable {
    /// The most assignments held at once; more are refused.
    static let maxHeld = 256

    private var entries: [TaskAssignment] = []
    private var head = 0

    var count: Int { entries.count - head }
    var isEmpty: Bool { count == 0 }

    /// The held run of task `id`, if any.
    func run(of id: String) -> RunRef? {
        entries[head...].first { $0.id == id }.map { RunRef(id: $0.id, attempt: $0.attempt) }
    }

    /// Holds `task` at the back. Returns why it cannot be held (then it is not), or nil.
    mutating func hold(_ task: TaskAssignment) -> String? {
        if let held = run(of: task.id) {
            return held.attempt == task.attempt ? "it is held here already" : "attempt \(held.attempt) of this task is held here"
        }
        guard count < Self.maxHeld else { return "\(Self.maxHeld) assignments are held here already" }
        entries.append(task)
        return nil
    }

    /// The oldest held assignment, taken out, when a slot is free for it (`busy` < `slots`)
    /// and the worker is registered; nil otherwise.
    mutating func next(busy: Int, slots: Int, registered: Bool) -> TaskAssignment? {
        guard registered, busy < slots, head < entries.count else { return nil }
        let task = entries[head]
        head += 1
        compact()
        return task
    }

    /// Takes out the held run `run` (a kill: it never starts); nil if it is not held.
    mutating func remove(_ run: RunRef) -> TaskAssignment? {
        guard let i = entries[head...].firstIndex(where: { $0.id == run.id && $0.attempt == run.attempt }) else { return nil }
        let task = entries.remove(at: i)
        return task
    }

    /// Takes out everything held, oldest first (the connection ended, or the worker stops).
    mutating func removeAll() -> [TaskAssignment] {
        let all = Array(entries[head...])
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
