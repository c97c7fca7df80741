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
    /// Open waits and the task ids they name, per session and in all (for `refusal`).
    struct Load: Equatable { var waits = 0; var ids = 0 }
    private(set) var load: [ObjectIdentifier: Load] = [:]
    private(set) var total = Load()
    /// Every task an open wait names (ended or not) -> how many open waits name it: retention
    /// keeps these, so a wait's answer has every task it named (issue 14).
    private var named: [String: Int] = [:]

    mutating func add(_ waiter: Waiter) {
        nextKey += 1
        waiters[nextKey] = waiter
        for id in waiter.pending { byTask[id, default: []].insert(nextKey) }
        count(waiter, sign: 1)
        for id in Set(waiter.ids) { named[id, default: 0] += 1 }
    }

    /// Whether an open wait names task `id` (then retention must keep it until it is answered).
    func isNamed(_ id: String) -> Bool { named[id] != nil }

    /// How many distinct tasks open waits name (bounded by `ClientLimits.maxWaitIdsTotal`).
    var namedCount: Int { named.count }

    private mutating func unname(_ waiter: Waiter) {
        for id in Set(waiter.ids) {
            guard let n = named[id] else { continue }
            named[id] = n > 1 ? n - 1 : nil
        }
    }

    private mutating func count(_ waiter: Waiter, sign: Int) {
        let key = ObjectIdentifier(waiter.session)
        var mine = load[key] ?? Load()
        mine.waits += sign; mine.ids += sign * waiter.ids.count
        total.waits += sign; total.ids += sign * waiter.ids.count
        load[key] = mine.waits == 0 ? nil : mine
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
            count(waiter, sign: -1)
            unname(waiter)
            done.append(waiter)
        }
        return done
    }

    mutating func removeAll(for session: PeerSession) {
        for (key, waiter) in waiters where waiter.session === session {
            waiters[key] = nil
            for id in waiter.pending { byTask[id]?.remove(key) }
            count(waiter, sign: -1)
            unname(waiter)
        }
    }
}

extension WaiterTable {
    /// What `session` has open now (nothing: an empty load).
    func held(by session: PeerSession) -> Load { load[ObjectIdentifier(session)] ?? Load() }

    /// Why a client with `mine` open may not open another `wait` on `ids` task ids while all
    /// clients hold `total`, or nil when it may. Pure: `ClientRequests` decides with it.
    static func refusal(adding ids: Int, mine: Load, total: Load, limits: ClientLimits) -> String? {
        if mine.waits + 1 > limits.maxWaitsPerClient {
            return "too many open waits on this connection (at most \(limits.maxWaitsPerClient)); wait for all the tasks in one request, or fewer at once"
        }
        if mine.ids + ids > limits.maxWaitIdsPerClient {
            return "too many task ids waited on by this connection (at most \(limits.maxWaitIdsPerClient))"
        }
        if total.waits + 1 > limits.maxWaitsTotal || total.ids + ids > limits.maxWaitIdsTotal {
            return "the scheduler holds as many open waits as it may (\(limits.maxWaitsTotal) waits, \(limits.maxWaitIdsTotal) task ids in all); try again later"
        }
        return nil
    }
}
