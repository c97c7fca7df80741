/// The retry backoffs tasks wait out, for `ClusterState`: each task's monotonic due time, a
/// min-heap of them to find those due in O(log n) each, and backoffs not started yet.
///
/// A backoff is added with its length only (`add`); the next placement round starts it from
/// its `nowMs` (`arm`). So the core needs no clock where a run ends, and a scheduler that
/// restarts arms every restored backoff, whole, from its first round: no monotonic reading
/// is ever saved (they mean nothing after a restart). Removal is lazy: a heap entry counts
/// only while it matches the task's due time. Pure value.
struct BackoffTimers: Sendable {
    /// Armed: task id -> due (monotonic ms).
    private var due: [String: Int64] = [:]
    /// Not armed yet: task id -> length (ms).
    private var pending: [String: Int64] = [:]
    private var heap: [Entry] = []

    private struct Entry: Sendable {
        var dueMs: Int64
        var id: String
    }

    var count: Int { due.count + pending.count }
    var isEmpty: Bool { due.isEmpty && pending.isEmpty }

    /// When the first armed backoff ends; nil when none is armed. Exact: the heap's top is
    /// never a stale entry (every change drops stale tops), so a cancelled backoff never asks
    /// for a round. Before, one did, and a round that found nothing due asked again at once:
    /// the scheduler spun.
    var nextDueMs: Int64? { heap.first?.dueMs }

    /// The task's backoff, not armed yet, lasting `delayMs`. Replaces any it had.
    mutating func add(_ id: String, delayMs: Int64) {
        due[id] = nil
        pending[id] = max(0, delayMs)
        tidy()
    }

    mutating func remove(_ id: String) {
        due[id] = nil
        pending[id] = nil
        tidy()
    }

    /// The task's due time (monotonic), once armed.
    func dueMs(_ id: String) -> Int64? { due[id] }

    /// Starts every backoff added since the last call, from `nowMs`.
    mutating func arm(nowMs: Int64) {
        guard !pending.isEmpty else { return }
        for (id, delay) in pending.sorted(by: { $0.key < $1.key }) {
            let at = nowMs &+ delay
            due[id] = at
            push(Entry(dueMs: at, id: id))
        }
        pending = [:]
        tidy()
    }

    /// Removes and returns the tasks whose backoff has ended by `nowMs`, earliest first.
    mutating func popDue(nowMs: Int64) -> [String] {
        var ended: [String] = []
        while let top = heap.first, top.dueMs <= nowMs {
            popTop()
            guard due[top.id] == top.dueMs else { continue }
            due[top.id] = nil
            ended.append(top.id)
        }
        tidy()
        return ended
    }

    /// Drops stale entries from the top (so `nextDueMs` is exact), and rebuilds the heap from
    /// the live ones once stale entries outnumber them (so it stays bounded by the live count).
    private mutating func tidy() {
        if heap.count > 2 * due.count + 64 {
            heap = []
            for (id, at) in due.sorted(by: { $0.key < $1.key }) { push(Entry(dueMs: at, id: id)) }
        }
        while let top = heap.first, due[top.id] != top.dueMs { popTop() }
    }

    /// Entries in the heap, stale ones included (for tests of its bound).
    var heapCount: Int { heap.count }

    // MARK: Heap

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard precedes(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let left = 2 * i + 1, right = left + 1
            var smallest = i
            if left < heap.count && precedes(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && precedes(heap[right], heap[smallest]) { smallest = right }
            guard smallest != i else { return }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }

    /// Earlier first; ties by id, so the order never depends on insertion.
    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.dueMs != b.dueMs ? a.dueMs < b.dueMs : a.id < b.id
    }
}
