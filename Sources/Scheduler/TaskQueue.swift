/// Queued task ids in placement order: a binary min-heap on (priority desc, sequence asc), so
/// push and pop cost O(log n). A requeued task keeps its sequence number and so its place.
public struct TaskQueue: Sendable {
    struct Entry: Sendable {
        var priority: Int
        var sequence: UInt64
        var id: String

        func precedes(_ other: Entry) -> Bool {
            priority != other.priority ? priority > other.priority : sequence < other.sequence
        }
    }

    private var heap: [Entry] = []

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    public var first: String? { heap.first?.id }
    /// The first task's place in the order (priority, sequence), for merging queues.
    var head: Entry? { heap.first }

    public mutating func push(id: String, priority: Int = 0, sequence: UInt64) {
        heap.append(Entry(priority: priority, sequence: sequence, id: id))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    public mutating func popFirst() -> String? {
        guard !heap.isEmpty else { return nil }
        return removeEntry(at: 0).id
    }

    /// Takes out the entry at `index` and restores the heap: the last entry takes its place
    /// and moves down or up (O(log n)).
    private mutating func removeEntry(at index: Int) -> Entry {
        heap.swapAt(index, heap.count - 1)
        let removed = heap.removeLast()
        guard index < heap.count else { return removed }
        var node = index
        while true {
            let left = 2 * node + 1, right = left + 1
            var best = node
            if left < heap.count && heap[left].precedes(heap[best]) { best = left }
            if right < heap.count && heap[right].precedes(heap[best]) { best = right }
            if best == node { break }
            heap.swapAt(node, best)
            node = best
        }
        while node > 0 {
            let parent = (node - 1) / 2
            guard heap[node].precedes(heap[parent]) else { break }
            heap.swapAt(node, parent)
            node = parent
        }
        return removed
    }

    /// Removes every task of `ids` in one pass, O(n log n) however many (a recursive cancel):
    /// a sorted array is a valid heap.
    mutating func remove(ids: Set<String>) {
        let before = heap.count
        heap.removeAll { ids.contains($0.id) }
        if heap.count != before { heap.sort { $0.precedes($1) } }
    }

    /// Removes `id` wherever it is (O(n) to find it; used for cancels, which are rare).
    public mutating func remove(id: String) {
        // A linear search (ids are not indexed), then O(log n): cancelling a task in a queue of
        // a million costs about a millisecond, not a rebuild of the heap.
        guard let index = heap.firstIndex(where: { $0.id == id }) else { return }
        _ = removeEntry(at: index)
    }

    /// Ids in placement order (O(n log n); for listings).
    public var orderedIds: [String] {
        var copy = self
        var ids: [String] = []
        while let id = copy.popFirst() { ids.append(id) }
        return ids
    }
}
