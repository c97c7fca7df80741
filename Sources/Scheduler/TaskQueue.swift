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
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var best = parent
            if left < heap.count && heap[left].precedes(heap[best]) { best = left }
            if right < heap.count && heap[right].precedes(heap[best]) { best = right }
            if best == parent { break }
            heap.swapAt(parent, best)
            parent = best
        }
        return top.id
    }

    /// Removes `id` wherever it is (O(n); used for cancels, which are rare).
    public mutating func remove(id: String) {
        let kept = heap.filter { $0.id != id }
        guard kept.count != heap.count else { return }
        heap = []
        for e in kept { push(id: e.id, priority: e.priority, sequence: e.sequence) }
    }

    /// Ids in placement order (O(n log n); for listings).
    public var orderedIds: [String] {
        var copy = self
        var ids: [String] = []
        while let id = copy.popFirst() { ids.append(id) }
        return ids
    }
}
