import SwarmProtocol

/// `ClusterState`'s task records by id, a dictionary that remembers what changed: every write
/// through the subscript marks the task dirty and turns the difference between the record's
/// `runs` before and after into run history (placed, started, ended, withdrawn). `ClusterState`'s
/// code just assigns records; the store learns what to write from `takeChanges()`.
struct TaskTable: Sendable {
    private var records: [String: ClusterState.TaskRecord] = [:]
    private var dirty: Set<String> = []
    /// Dirty tasks added since the last `takeChanges()` (not restored): the store has no row
    /// of them yet and inserts it without first trying an update.
    private var inserted: Set<String> = []
    private var runChanges: [RunChange] = []
    /// Dirty tasks whose only change since the last `takeChanges()` is a placement (`place`):
    /// the store writes their columns and run, not their whole row (`StateChanges.placedOnly`).
    private var placedOnly: Set<String> = []
    /// Ids of tasks that reached a terminal state, in the order they did (from `finishedHead`
    /// on; the slots before it are spent): the order they leave memory in (`evict`).
    private var finished: [String] = []
    private var finishedHead = 0

    init() {}

    var count: Int { records.count }
    /// Terminal tasks still in memory (some may be in `finished` twice if they were restored
    /// and written again: counted once each when evicted, the bound holds either way).
    var finishedCount: Int { finished.count - finishedHead }
    /// Every record, read-only (for checks and listings).
    var values: Dictionary<String, ClusterState.TaskRecord>.Values { records.values }
    var hasChanges: Bool { !dirty.isEmpty || !runChanges.isEmpty }

    subscript(id: String) -> ClusterState.TaskRecord? {
        get { records[id] }
        set {
            let old = records[id]
            records[id] = newValue
            noteChange(id, from: old, to: newValue)
        }
        _modify {
            let old = records[id]
            yield &records[id]
            noteChange(id, from: old, to: records[id])
        }
    }

    /// Changes what the store does not keep of record `id` (`TaskRecord.waitsForDependencies`,
    /// rebuilt from the dependencies at a restart): not marked for saving. Its spec, info,
    /// retry state and runs must not change here. Why: releasing a layer of a DAG marked
    /// every released task for saving, unchanged, and the turn that placed the layer's first
    /// tasks wrote 100 rows before its sync could start.
    /// The record is changed in place (no copy of it: a layer's release did one per task, the
    /// larger part of its cost); returns what `change` returns, nil when there is no such task.
    @discardableResult
    mutating func updateUnsaved<R>(_ id: String, _ change: (inout ClusterState.TaskRecord) -> R) -> R? {
        guard records[id] != nil else { return nil }
        #if DEBUG
        let before = records[id]!
        defer {
            let record = records[id]!
            assert(record.info == before.info && record.spec == before.spec && record.retry == before.retry
                   && record.runs == before.runs && record.sequence == before.sequence, "updateUnsaved changed what the store keeps of \(id)")
        }
        #endif
        return change(&records[id]!)
    }

    /// Places task `id` (`change` marks it placed: ClusterState+Placement.swift): a change like
    /// any other, but when it is the task's only one since the last `takeChanges()`, the store
    /// writes just its state, node and attempts columns and the new run (`placedOnly`), and a
    /// restart redoes the rest of the placement on the info it read (`TaskStore.snapshot`).
    /// Why: a placement rewrote the task's whole row, its info as JSON (about half of the
    /// CPU of a durable turn that placed 8 tasks of `swarm bench dag`'s next layer).
    mutating func place(_ id: String, _ change: (inout ClusterState.TaskRecord) -> Void) {
        guard records[id] != nil else { return }
        let alone = !dirty.contains(id)
        let old = records[id]
        change(&records[id]!)
        noteChange(id, from: old, to: records[id])
        if alone { placedOnly.insert(id) }
    }

    /// A record loaded from the store: not a change.
    mutating func restore(_ record: ClusterState.TaskRecord) {
        records[record.info.id] = record
        if record.info.state.isTerminal { finished.append(record.info.id) }
    }

    /// Drops finished task `id` from memory without marking a change (retention deleted it
    /// from the store). A task in flight stays.
    mutating func forget(_ id: String) {
        guard let record = records[id], record.info.state.isTerminal else { return }
        records[id] = nil
        dirty.remove(id)
        inserted.remove(id)
        placedOnly.remove(id)
    }

    /// Drops the oldest finished tasks until at most `keep` are in memory, and returns their
    /// ids. Call right after `takeChanges()`: a dropped task's last state is then in the
    /// changes the store is about to save (the durable scheduler's store is where it lives on).
    /// O(dropped), amortised.
    mutating func evict(keeping keep: Int) -> [String] {
        var dropped: [String] = []
        while finished.count - finishedHead > max(0, keep) {
            let id = finished[finishedHead]
            finishedHead += 1
            // A task written since it ended (never, today) stays until its next ending.
            guard let record = records[id], record.info.state.isTerminal, !dirty.contains(id) else { continue }
            records[id] = nil
            dropped.append(id)
        }
        if finishedHead > 1_024 && finishedHead * 2 > finished.count {
            finished.removeFirst(finishedHead)
            finishedHead = 0
        }
        return dropped
    }

    /// The changes since the last call, tasks in submission order; forgets them.
    mutating func takeChanges() -> StateChanges {
        // Sorted as (sequence, id) pairs, then made into snapshots: sorting the snapshots
        // themselves moved whole records around (9 s for 100,000 in a debug build).
        let order = dirty.compactMap { id in records[id].map { (sequence: $0.sequence, id: id) } }.sorted { $0.sequence < $1.sequence }
        let tasks = order.compactMap { entry in
            records[entry.id].map { TaskSnapshot(spec: $0.spec, info: $0.info, sequence: $0.sequence, retry: $0.retry, runs: $0.runs) }
        }
        var changes = StateChanges(tasks: tasks, runs: runChanges)
        changes.inserted = inserted
        changes.placedOnly = placedOnly
        dirty.removeAll(keepingCapacity: true)
        inserted.removeAll(keepingCapacity: true)
        placedOnly.removeAll(keepingCapacity: true)
        runChanges.removeAll(keepingCapacity: true)
        return changes
    }

    private mutating func noteChange(_ id: String, from old: ClusterState.TaskRecord?, to new: ClusterState.TaskRecord?) {
        dirty.insert(id)
        if !placedOnly.isEmpty { placedOnly.remove(id) }
        guard let new else { inserted.remove(id); return }
        if old == nil { inserted.insert(id) }
        if new.info.state.isTerminal, !(old?.info.state.isTerminal ?? false) { finished.append(id) }
        Self.runChanges(id, from: old?.runs ?? [], to: new.runs, into: &runChanges)
    }

    /// What changed between two versions of a task's runs (oldest first). Only the runs from
    /// the old last one on can change (the ones before it have ended, or were dropped from the
    /// front past `TaskRun.maxKept`): O(1) per write. A last run that disappeared without a
    /// later one was withdrawn (refused by its worker: its attempt number is used again).
    static func runChanges(_ id: String, from old: [TaskRun], to new: [TaskRun], into changes: inout [RunChange]) {
        let oldLast = old.last
        let from = oldLast?.attempt ?? 0
        if let oldLast, (new.last?.attempt ?? 0) < oldLast.attempt {
            changes.append(.withdrawn(RunRef(id: id, attempt: oldLast.attempt)))
        }
        var start = new.endIndex
        while start > new.startIndex, new[start - 1].attempt >= from { start -= 1 }
        for run in new[start...] {
            let ref = RunRef(id: id, attempt: run.attempt)
            let before = oldLast?.attempt == run.attempt ? oldLast : nil
            if before == nil { changes.append(.placed(ref, node: run.node, placedAt: run.placedAt)) }
            if run.startedAt != nil, run.startedAt != before?.startedAt { changes.append(.started(ref, startedAt: run.startedAt)) }
            if run.state != .running, before == nil || before?.state == .running {
                changes.append(.ended(ref, state: run.state, reason: run.reason, finishedAt: run.finishedAt,
                                      exitCode: run.exitCode, signal: run.signal, runMs: run.runMs))
            }
        }
    }
}
