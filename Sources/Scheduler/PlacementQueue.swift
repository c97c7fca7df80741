/// Queued tasks in placement order, split into *placement classes*: tasks with the same runtime,
/// model and constraints are interchangeable to placement, so one class's tasks fit the same
/// nodes and hit the same model limit. Each class is a `TaskQueue` (priority desc, sequence
/// asc); a binary heap over the classes' first tasks gives the global order, so higher
/// priority goes first across classes and FIFO holds within a priority.
///
/// A class that cannot place its first task now (model at its limit, no feasible node with a
/// free slot, unplaceable) is *parked*: taken out of the order for the rest of a scheduling
/// round, with all its tasks, in O(log classes), so it never blocks the classes behind it.
/// Push, pop and park cost O(log n).
struct PlacementQueue: Sendable {
    /// What makes tasks interchangeable to placement (priority only orders them).
    struct ClassKey: Hashable, Sendable {
        var runtime: String?
        var model: String?
        var constraints: [String: String]

        init(_ request: PlacementRequest) {
            runtime = request.runtime
            model = request.model
            constraints = request.constraints
        }

        var request: PlacementRequest {
            PlacementRequest(runtime: runtime, model: model, constraints: constraints)
        }
    }

    struct TaskClass: Sendable {
        var key: ClassKey
        var tasks = TaskQueue()
        /// Node groups (`NodeIndex`) this class fits, among the first `groupsSeen` groups.
        var feasibleGroups: [Int] = []
        var groupsSeen = 0
        var parked = false
    }

    /// Classes by id; an emptied class's id is reused.
    private(set) var classes: [TaskClass] = []
    private var classIDs: [ClassKey: Int] = [:]
    private var unusedIDs: [Int] = []
    /// Ids of classes with tasks that are not parked: a binary heap by their first task.
    private var heap: [Int] = []
    /// Per class: index in `heap`, or -1.
    private var position: [Int] = []
    /// Per class: its first task's (priority, sequence), copied out for cheap comparisons.
    private var headPriority: [Int] = []
    private var headSequence: [UInt64] = []
    private var parkedIDs: [Int] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// The class whose first task goes next, and that task's id.
    var top: (classID: Int, taskID: String)? {
        guard let c = heap.first, let id = classes[c].tasks.first else { return nil }
        return (c, id)
    }

    mutating func push(id: String, request: PlacementRequest, sequence: UInt64) {
        let key = ClassKey(request)
        let c = classIDs[key] ?? makeClass(key)
        classes[c].tasks.push(id: id, priority: request.priority, sequence: sequence)
        count += 1
        refreshHead(c)
        guard !classes[c].parked else { return }
        if position[c] < 0 { insert(c) } else { _ = siftUp(position[c]) }  // its head only got better
    }

    /// Removes the first task of the top class.
    mutating func popTop() {
        guard let c = heap.first else { return }
        classes[c].tasks.popFirst()
        count -= 1
        if classes[c].tasks.isEmpty {
            removeFromHeap(c)
            retire(c)
        } else {
            refreshHead(c)
            siftDown(0)
        }
    }

    /// Removes a task wherever it is (O(tasks in its class); for cancels, which are rare).
    mutating func remove(id: String, request: PlacementRequest) {
        guard let c = classIDs[ClassKey(request)] else { return }
        let before = classes[c].tasks.count
        classes[c].tasks.remove(id: id)
        guard classes[c].tasks.count != before else { return }
        count -= 1
        if classes[c].tasks.isEmpty {
            if position[c] >= 0 { removeFromHeap(c) }
            retire(c)
        } else {
            refreshHead(c)
            if position[c] >= 0 { siftDown(siftUp(position[c])) }
        }
    }

    /// Removes many tasks at once (`requests`: theirs): each class they are in is filtered once,
    /// O(its size), not searched once per task (a recursive cancel of a large tree).
    mutating func remove(ids: Set<String>, requests: [PlacementRequest]) {
        let touched = Set(requests.compactMap { classIDs[ClassKey($0)] })
        for c in touched {
            let before = classes[c].tasks.count
            classes[c].tasks.remove(ids: ids)
            count -= before - classes[c].tasks.count
            if classes[c].tasks.isEmpty {
                if position[c] >= 0 { removeFromHeap(c) }
                retire(c)
            } else {
                refreshHead(c)
                if position[c] >= 0 { siftDown(siftUp(position[c])) }
            }
        }
    }

    /// Takes a class out of the order until `unparkAll`.
    mutating func park(_ c: Int) {
        guard !classes[c].parked else { return }
        if position[c] >= 0 { removeFromHeap(c) }
        classes[c].parked = true
        parkedIDs.append(c)
    }

    mutating func unparkAll() {
        for c in parkedIDs {
            classes[c].parked = false
            if classes[c].tasks.isEmpty {
                // Emptied (and retired) while parked: its id is free now.
                classes[c] = TaskClass(key: classes[c].key)
                unusedIDs.append(c)
            } else if position[c] < 0 {
                insert(c)
            }
        }
        parkedIDs.removeAll(keepingCapacity: true)
    }

    /// Records the class's feasibility among node groups `groupsSeen..<upTo`.
    mutating func addFeasible(_ c: Int, groups: [Int], upTo: Int) {
        classes[c].feasibleGroups += groups
        classes[c].groupsSeen = upTo
    }

    /// Ids in placement order (O(n log n); for listings and tests).
    var orderedIds: [String] {
        var copy = self
        copy.unparkAll()
        var ids: [String] = []
        while let (_, id) = copy.top {
            ids.append(id)
            copy.popTop()
        }
        return ids
    }

    // MARK: Classes

    private mutating func makeClass(_ key: ClassKey) -> Int {
        let c: Int
        if let reused = unusedIDs.popLast() {
            c = reused
            classes[c] = TaskClass(key: key)
        } else {
            c = classes.count
            classes.append(TaskClass(key: key))
            position.append(-1)
            headPriority.append(0)
            headSequence.append(0)
        }
        classIDs[key] = c
        return c
    }

    private mutating func retire(_ c: Int) {
        classIDs[classes[c].key] = nil
        // A parked class stays listed in `parkedIDs` until the round ends: `unparkAll` frees
        // its id then.
        if classes[c].parked { return }
        classes[c] = TaskClass(key: classes[c].key)
        unusedIDs.append(c)
    }

    private mutating func refreshHead(_ c: Int) {
        guard let head = classes[c].tasks.head else { return }
        headPriority[c] = head.priority
        headSequence[c] = head.sequence
    }

    // MARK: Heap of classes

    @inline(__always)
    private func precedes(_ a: Int, _ b: Int) -> Bool {
        headPriority[a] != headPriority[b] ? headPriority[a] > headPriority[b] : headSequence[a] < headSequence[b]
    }

    private mutating func insert(_ c: Int) {
        heap.append(c)
        position[c] = heap.count - 1
        _ = siftUp(heap.count - 1)
    }

    private mutating func removeFromHeap(_ c: Int) {
        let i = position[c]
        let last = heap.removeLast()
        position[c] = -1
        guard last != c else { return }
        heap[i] = last
        position[last] = i
        siftDown(siftUp(i))
    }

    private mutating func siftUp(_ start: Int) -> Int {
        var child = start
        let c = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(c, heap[parent]) else { break }
            heap[child] = heap[parent]
            position[heap[child]] = child
            child = parent
        }
        heap[child] = c
        position[c] = child
        return child
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let c = heap[parent]
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            var child = left
            if left + 1 < heap.count && precedes(heap[left + 1], heap[left]) { child = left + 1 }
            guard precedes(heap[child], c) else { break }
            heap[parent] = heap[child]
            position[heap[parent]] = parent
            parent = child
        }
        heap[parent] = c
        position[c] = parent
    }
}
