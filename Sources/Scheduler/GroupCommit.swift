/// Group commit's bookkeeping, pure: which of the scheduler's outgoing turns may leave, given
/// how far the state database is written and how far it is durable.
///
/// The shell writes each turn's changes to the database at once (no fsync: `TaskStore` in
/// `syncOnCommit: false` mode) and hands the turn's messages here with the store's change
/// count after the write (`written`). A turn leaves once a sync started at or after that
/// count has ended (`durable >= written`); until then it is held. Syncs run off the loop
/// thread, up to `maxSyncs` at once; each covers every change written before it started, so
/// all the turns that piled up meanwhile leave together when the next one ends. Turns leave
/// in the order they were held, so the replies on one connection keep their order.
///
/// Counts are the store's `changeCount` (SQLite's total changes: it only grows, and any row
/// written moves it), so a turn whose changes another write already saved (retention saves a
/// turn's changes first) still waits for them.
struct GroupCommit<Held> {
    /// Every change up to this count is durable.
    private(set) var durable: Int64
    /// The counts the syncs under way make durable, oldest first.
    private var underWay: [Int64] = []
    /// How many syncs may run at once: with 2, a turn written while a sync runs starts its
    /// own at once instead of waiting for that one to end and then for its own (the kernel
    /// orders the two; the second still covers everything written before it started).
    var maxSyncs: Int
    /// Turns waiting, oldest first, with the count each one needs durable.
    private var held: [(needs: Int64, item: Held)] = []
    private var head = 0

    /// `durable`: the store's change count when it was opened (what is on disk).
    init(durable: Int64, maxSyncs: Int = 1) {
        self.durable = durable
        self.maxSyncs = max(1, maxSyncs)
    }

    /// The count the latest sync under way makes durable; nil: none runs.
    var syncing: Int64? { underWay.last }
    /// Syncs under way.
    var syncsUnderWay: Int { underWay.count }

    /// Turns held now.
    var heldCount: Int { held.count - head }

    /// A turn whose changes are written up to `written`: returned at once when it needs
    /// nothing more than what is durable and no earlier turn waits; otherwise held.
    mutating func hold(_ item: Held, written: Int64) -> [Held] {
        if heldCount == 0 && written <= durable { return [item] }
        held.append((max(written, held.last?.needs ?? written), item))
        return []
    }

    /// The count a sync starting now would make durable, marked as under way; nil when
    /// `maxSyncs` run already or nothing written is left for a new one to make durable.
    mutating func startSync(written: Int64) -> Int64? {
        let covered = max(durable, underWay.last ?? durable)
        guard underWay.count < maxSyncs && written > covered else { return nil }
        underWay.append(written)
        return written
    }

    /// The oldest sync under way ended: the turns it made durable, oldest first.
    mutating func synced() -> [Held] {
        guard let count = underWay.first else { return [] }
        return synced(count)
    }

    /// The sync started for `count` ended (syncs may end in any order: each covers what was
    /// written before it started): the turns now durable, oldest first.
    mutating func synced(_ count: Int64) -> [Held] {
        guard let index = underWay.firstIndex(of: count) else { return [] }
        underWay.remove(at: index)
        durable = max(durable, count)
        var released: [Held] = []
        while head < held.count, held[head].needs <= durable {
            released.append(held[head].item)
            head += 1
        }
        if head == held.count {
            held.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 && head * 2 > held.count {
            held.removeFirst(head)
            head = 0
        }
        return released
    }

    /// Drops every held turn (the scheduler stops, or cannot save its state: none may leave).
    mutating func dropAll() {
        held = []
        head = 0
        underWay = []
    }
}
