import SwarmProtocol

/// `ClusterState`'s task records by id, a dictionary that remembers what changed: every write
/// through the subscript marks the task dirty and turns the difference between the record
/// before and after into run history (placed, started, ended, withdrawn). `ClusterState`'s
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
            records[id].map { TaskSnapshot(spec: $0.spec, info: $0.info, sequence: $0.sequence) }
        }.sorted { $0.sequence < $1.sequence }
        let changes = StateChanges(tasks: tasks, runs: runChanges)
        dirty.removeAll(keepingCapacity: true)
        runChanges.removeAll(keepingCapacity: true)
        return changes
    }

    private mutating func noteChange(_ id: String, from old: ClusterState.TaskRecord?, to new: ClusterState.TaskRecord?) {
        dirty.insert(id)
        guard let new = new?.info else { return }
        let before = old?.info
        let oldAttempt = before?.attempts ?? 0
        if before != nil, new.attempts < oldAttempt {
            // Refused by its worker: that attempt number is handed out again.
            runChanges.append(.withdrawn(RunRef(id: id, attempt: oldAttempt)))
            return
        }
        if let before, before.state == .running, new.attempts != oldAttempt || new.state != .running, oldAttempt > 0 {
            let outcome: TaskState = new.attempts == oldAttempt && new.state.isTerminal ? new.state : .lost
            let sameRun = new.attempts == oldAttempt
            runChanges.append(.ended(RunRef(id: id, attempt: oldAttempt), state: outcome,
                                     reason: sameRun ? new.reason : nil, finishedAt: sameRun ? new.finishedAt : nil))
        }
        guard new.attempts > 0 else { return }
        let run = RunRef(id: id, attempt: new.attempts)
        if new.state == .running && (new.attempts > oldAttempt || before?.state != .running) {
            runChanges.append(.placed(run, node: new.node, placedAt: new.placedAt))
            if new.startedAt != nil { runChanges.append(.started(run, startedAt: new.startedAt)) }
        } else if new.state == .running, new.startedAt != before?.startedAt {
            runChanges.append(.started(run, startedAt: new.startedAt))
        } else if new.state.isTerminal, before?.state == .queued || before == nil {
            // Ended without running again (given up, or cancelled while queued): the last run
            // already ended, so this only touches a run still marked running.
            runChanges.append(.ended(run, state: new.state, reason: new.reason, finishedAt: new.finishedAt))
        }
    }
}
