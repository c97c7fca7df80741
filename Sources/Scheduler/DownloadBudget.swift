/// The blob download bytes the scheduler holds for all its peers together: chunks queued to
/// connections (bulk lane and socket write queue) that their peers have not read yet.
///
/// Each connection's share is bounded (`BlobServerState.bulkCap` plus what its socket
/// holds, about 4 MiB), but peers are many: 200 connections asking for blobs and never reading
/// held 800 MiB. Past `maxBytes` in all, downloads wait for room (`hasRoom`, `wait`); and a
/// connection that has read none of its queued bytes for `stallMs` is to be closed
/// (`stalled`), so that peers that never read cannot keep the room from those that do.
/// Pure: the shell reports each connection's queued bytes with the time.
struct DownloadBudget<K: Hashable> {
    /// Download bytes queued to all peers together past which downloads wait.
    var maxBytes = 64 << 20
    /// A connection holding download bytes and reading none of them this long is closed.
    var stallMs: UInt64 = 30_000

    /// Connections holding download bytes: how many, and when they last read some (or began).
    private(set) var holders: [K: (queued: Int, progressAtMs: UInt64)] = [:]
    /// Connections with downloads waiting for room, oldest first.
    private(set) var waiting: [K] = []
    private var waitingSet = Set<K>()

    init(maxBytes: Int = 64 << 20, stallMs: UInt64 = 30_000) {
        self.maxBytes = maxBytes
        self.stallMs = stallMs
    }

    /// Download bytes queued to all peers.
    var total: Int { holders.values.reduce(0) { $0 + $1.queued } }

    /// Whether another piece may be queued.
    var hasRoom: Bool { total < maxBytes }

    /// `key`'s connection holds `queued` download bytes now. Less than before is progress
    /// (its peer read some); more is a new piece, which is not.
    mutating func observe(_ key: K, queued: Int, nowMs: UInt64) {
        guard queued > 0 else { holders[key] = nil; return }
        guard let holder = holders[key], queued >= holder.queued else {
            holders[key] = (queued, nowMs)
            return
        }
        holders[key] = (queued, holder.progressAtMs)
    }

    /// `key` has downloads to send but no room: it goes on when there is (`takeWaiting`).
    mutating func wait(_ key: K) {
        if waitingSet.insert(key).inserted { waiting.append(key) }
    }

    /// The connections waiting for room, oldest first; they wait again if still none.
    mutating func takeWaiting() -> [K] {
        defer { waiting = []; waitingSet = [] }
        return waiting
    }

    /// Connections that read none of their queued bytes for `stallMs`.
    func stalled(nowMs: UInt64) -> [K] {
        holders.compactMap { key, holder in nowMs >= holder.progressAtMs && nowMs - holder.progressAtMs >= stallMs ? key : nil }
    }

    /// The connection ended.
    mutating func gone(_ key: K) {
        holders[key] = nil
        if waitingSet.remove(key) != nil { waiting.removeAll { $0 == key } }
    }
}
