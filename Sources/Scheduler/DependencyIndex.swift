import SwarmProtocol

/// Which tasks wait for which (issue 13 item 4): for each dependency that has not ended, the
/// tasks waiting for it (the reverse index), and for each waiting task how many of its
/// dependencies have not ended yet. Pure and small; `ClusterState+Dependencies.swift` keeps it
/// in step with the tasks.
///
/// When a dependency ends, `ended` visits its own dependents only: O(its dependents), never a
/// scan of the waiting tasks. A dependent that stops waiting for another reason (cancelled, or
/// failed by another dependency) is forgotten in O(1): its entries under its other
/// dependencies stay until those end and are skipped then (an entry carries the dependent's
/// submission sequence, so it never counts for a later task of the same id), or until such
/// stale entries are over `compactionFloor` and half of all: then every list is filtered once
/// (amortised O(1) per entry), so dependents cancelled under a task that runs for days do not
/// pile up.
struct DependencyIndex: Sendable {
    /// One task waiting for a dependency.
    struct Dependent: Sendable, Equatable {
        /// Its place in `waiters`: an entry is visited by index, never by id (a result of a
        /// DAG's layer visits its 100 dependents; two lookups by string id each were most of it).
        var slot: Int32
        /// Its submission sequence (`TaskRecord.sequence`): tells a stale entry (its task waits
        /// no more, its slot maybe reused by another) from a live one.
        var sequence: UInt64
        /// `afterAny`: any end of the dependency will do. Otherwise (`after`) only `succeeded`.
        var anyEnd: Bool
    }

    /// A waiting task in its slot: id, sequence, how many of its dependencies have not ended.
    /// A free slot has sequence 0 (sequences start at 1).
    private struct Waiter: Sendable {
        var id: String
        var sequence: UInt64
        var count: Int
    }

    /// Dependency id -> the tasks that were waiting for it when they were added.
    private(set) var dependents: [String: [Dependent]] = [:]
    /// Waiting tasks by slot, and the free slots (reused before `waiters` grows).
    private var waiters: [Waiter] = []
    private var freeSlots: [Int32] = []
    /// Waiting task id -> its slot.
    private var slots: [String: Int32] = [:]
    /// Entries in `dependents`, and how many of them are stale (their task waits no more).
    private(set) var entryCount = 0
    private var staleCount = 0
    /// Stale entries below this are left for their dependency's end to drop.
    static let compactionFloor = 1_024

    /// A dependency that ended, whose dependents are visited later (`deferEnd`): its final
    /// state and reason, kept here since its record may leave memory meanwhile.
    struct Ended: Sendable, Equatable {
        var id: String
        var state: TaskState
        var reason: String?
    }
    /// Ended dependencies not visited yet, oldest first (from `deferredHead` on): a cascade of
    /// `dependency_failed` goes on from them in later turns (ClusterState+Dependencies.swift).
    private var deferred: [Ended] = []
    private var deferredHead = 0

    init() {}

    /// Whether ended dependencies wait to be visited (`deferEnd`).
    var hasDeferred: Bool { deferredHead < deferred.count }
    /// How many.
    var deferredCount: Int { deferred.count - deferredHead }

    /// `end`'s dependents are to be visited later, after those deferred before it.
    mutating func deferEnd(_ end: Ended) {
        deferred.append(end)
    }

    /// The oldest deferred end, or nil. O(1) amortised.
    mutating func nextDeferred() -> Ended? {
        guard deferredHead < deferred.count else { return nil }
        let end = deferred[deferredHead]
        deferredHead += 1
        if deferredHead == deferred.count {
            deferred.removeAll(keepingCapacity: deferred.count < 4_096)
            deferredHead = 0
        } else if deferredHead > 1_024 && deferredHead * 2 > deferred.count {
            deferred.removeFirst(deferredHead)
            deferredHead = 0
        }
        return end
    }

    /// How many tasks wait.
    var waitingCount: Int { slots.count }

    /// How many dependencies of `id` have not ended yet (0: it does not wait).
    func unmetCount(_ id: String) -> Int { slots[id].map { waiters[Int($0)].count } ?? 0 }

    /// Dependency ids with a list of dependents (live or stale): for checks and tests.
    var dependencyCount: Int { dependents.count }

    /// Task `id` (submission `sequence`) waits for `pending`: each dependency that has not
    /// ended, each named once. Nothing happens when `pending` is empty.
    mutating func wait(_ id: String, sequence: UInt64, for pending: [(id: String, anyEnd: Bool)]) {
        guard !pending.isEmpty else { return }
        forget(id)
        let waiter = Waiter(id: id, sequence: sequence, count: pending.count)
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            waiters[Int(slot)] = waiter
        } else {
            slot = Int32(waiters.count)
            waiters.append(waiter)
        }
        slots[id] = slot
        entryCount += pending.count
        for dependency in pending {
            dependents[dependency.id, default: []].append(Dependent(slot: slot, sequence: sequence, anyEnd: dependency.anyEnd))
        }
    }

    /// `dependency` ended (`succeeded` or not). Its dependents still waiting are `released`
    /// when it was their last unmet dependency, or `failed` when they needed it to succeed
    /// (`after`) and it did not; either way they wait no more. O(its dependents).
    mutating func ended(_ dependency: String, succeeded: Bool) -> (released: [String], failed: [String]) {
        guard let list = dependents.removeValue(forKey: dependency) else { return ([], []) }
        entryCount -= list.count
        var released: [String] = []
        var failed: [String] = []
        for dependent in list {
            let slot = Int(dependent.slot)
            guard waiters[slot].sequence == dependent.sequence else {
                staleCount -= 1
                continue
            }
            if !succeeded && !dependent.anyEnd {
                // Its entries under its other unmet dependencies are stale now.
                staleCount += waiters[slot].count - 1
                failed.append(free(slot))
                continue
            }
            waiters[slot].count -= 1
            if waiters[slot].count <= 0 { released.append(free(slot)) }
        }
        compactIfStale()
        return (released, failed)
    }

    /// Task `id` waits no more for another reason (cancelled, failed by one dependency).
    mutating func forget(_ id: String) {
        guard let slot = slots[id] else { return }
        staleCount += waiters[Int(slot)].count
        free(Int(slot))
        compactIfStale()
    }

    /// Empties `slot` for reuse; returns the id of the task that was in it.
    @discardableResult
    private mutating func free(_ slot: Int) -> String {
        let id = waiters[slot].id
        slots[id] = nil
        waiters[slot] = Waiter(id: "", sequence: 0, count: 0)
        freeSlots.append(Int32(slot))
        return id
    }

    /// Drops every stale entry once they are over `compactionFloor` and half of all entries.
    private mutating func compactIfStale() {
        guard staleCount > Self.compactionFloor, staleCount * 2 > entryCount else { return }
        let live = waiters
        dependents = dependents.compactMapValues { list in
            let kept = list.filter { live[Int($0.slot)].sequence == $0.sequence }
            return kept.isEmpty ? nil : kept
        }
        entryCount = dependents.values.reduce(0) { $0 + $1.count }
        staleCount = 0
    }
}
