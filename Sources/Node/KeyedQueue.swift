/// A first-in first-out queue whose entries also come out by key, each operation O(1)
/// (amortized): for what a worker holds per run while thousands of runs end together (results
/// until acknowledged, results' files until written, acknowledgements until handled), where
/// removing by key from an array was O(n) each, O(n^2) for a layer of runs.
///
/// Storage: the entries in arrival order with holes where one left by key, and each key's
/// position. Holes at the front are skipped as the head moves; the array is compacted when
/// holes are at least half of it. A key is in the queue at most once: `append` of a key there
/// already removes the old entry first (the new one goes last).
struct KeyedQueue<Key: Hashable, Value> {
    private var slots: [(key: Key, value: Value)?] = []
    private var positions: [Key: Int] = [:]
    /// Index of the first slot that may hold an entry.
    private var head = 0

    init() {}

    var count: Int { positions.count }
    var isEmpty: Bool { positions.isEmpty }

    func contains(_ key: Key) -> Bool { positions[key] != nil }

    subscript(key: Key) -> Value? { positions[key].flatMap { slots[$0]?.value } }

    /// The values, oldest first. O(n).
    var values: [Value] { slots[head...].compactMap { $0?.value } }
    var keys: [Key] { slots[head...].compactMap { $0?.key } }

    mutating func append(_ key: Key, _ value: Value) {
        remove(key)
        positions[key] = slots.count
        slots.append((key, value))
    }

    /// Removes and returns the entry of `key`, nil when there is none.
    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let index = positions.removeValue(forKey: key) else { return nil }
        let value = slots[index]?.value
        slots[index] = nil
        skipHoles()
        return value
    }

    /// Removes and returns the oldest entry.
    mutating func popFirst() -> (key: Key, value: Value)? {
        skipHoles()
        guard head < slots.count, let first = slots[head] else { return nil }
        positions[first.key] = nil
        slots[head] = nil
        head += 1
        skipHoles()
        return first
    }

    /// Moves the head past holes; compacts once holes are at least half of the storage.
    private mutating func skipHoles() {
        while head < slots.count, slots[head] == nil { head += 1 }
        if head == slots.count {
            slots.removeAll(keepingCapacity: slots.count <= 4_096)
            head = 0
        } else if slots.count >= 64, 2 * (slots.count - positions.count) >= slots.count {
            var packed: [(key: Key, value: Value)?] = []
            packed.reserveCapacity(positions.count)
            for slot in slots[head...] {
                guard let slot else { continue }
                positions[slot.key] = packed.count
                packed.append(slot)
            }
            slots = packed
            head = 0
        }
    }
}

extension KeyedQueue: Sendable where Key: Sendable, Value: Sendable {}
