import SwarmProtocol

/// `ClusterState`'s task records by id, a dictionary that remembers what changed: every write
/// through the subscript marks the task dirty and turns the difference between the record's
/// `runs` before and after into run history (placed, started, ended, withdrawn). `ClusterState`'s
/// code just assigns records; the store learns what to write from `takeChanges()`.
struct TaskTable: Sendable {
    private var records: [String: ClusterState.TaskRecord] = [:]
    private var dirty: Set<String> = []
    private var runChanges: [RunChange] = []

    init() {}

    var count: Int { records.count }
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

    /// A record loaded from the store: not a change.
    mutating func restore(_ record: ClusterState.TaskRecord) {
        records[record.info.id] = record
    }

    /// The changes since the last call, tasks in submission order; forgets them.
    mutating func takeChanges() -> StateChanges {
        let tasks = dirty.compactMap { id in
            records[id].map { TaskSnapshot(spec: $0.spec, info: $0.info, sequence: $0.sequence, retry: $0.retry, runs: $0.runs) }
        }.sorted { $0.sequence < $1.sequence }
        let changes = StateChanges(tasks: tasks, runs: runChanges)
        dirty.removeAll(keepingCapacity: true)
        runChanges.removeAll(keepingCapacity: true)
        return changes
    }

    private mutating func noteChange(_ id: String, from old: ClusterState.TaskRecord?, to new: ClusterState.TaskRecord?) {
        dirty.insert(id)
        guard let new else { return }
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
                                      exitCode: run.exitCode, signal: run.signal))
            }
        }
    }
}
