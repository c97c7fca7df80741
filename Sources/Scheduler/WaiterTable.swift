/// A client's `wait` request that is not answered yet.
struct Waiter {
    let session: PeerSession
    let requestId: Int
    let ids: [String]
    var pending: Set<String>
}

/// Open `wait` requests, indexed by the tasks they wait for.
struct WaiterTable {
    private var waiters: [Int: Waiter] = [:]
    private var byTask: [String: Set<Int>] = [:]
    private var nextKey = 0

    mutating func add(_ waiter: Waiter) {
        nextKey += 1
        waiters[nextKey] = waiter
        for id in waiter.pending { byTask[id, default: []].insert(nextKey) }
    }

    /// The waiters that `id` was the last pending task of (removed from the table).
    mutating func taskEnded(_ id: String) -> [Waiter] {
        guard let keys = byTask.removeValue(forKey: id) else { return [] }
        var done: [Waiter] = []
        for key in keys.sorted() {
            // Mutate in place: copying a waiter out would copy its whole pending set, making
            // a wait on n tasks cost O(n^2).
            guard waiters[key]?.pending.remove(id) != nil, waiters[key]?.pending.isEmpty == true,
                  let waiter = waiters.removeValue(forKey: key) else { continue }
            done.append(waiter)
        }
        return done
    }

    mutating func removeAll(for session: PeerSession) {
        for (key, waiter) in waiters where waiter.session === session {
            waiters[key] = nil
            for id in waiter.pending { byTask[id]?.remove(key) }
        }
    }
}
