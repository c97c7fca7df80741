/// How many TLS records one connection may have decrypted in one loop turn before its reading
/// pauses until a later turn (as `FramedConnection.maxMessagesPerTurn` does for frames).
///
/// Why records and not bytes: a record costs its reader ~2 us however small it is, so a peer
/// sending one-byte records (23 bytes on the wire) made each 64 KiB read cost ~5 ms, and libuv
/// reads up to 32 of them in one turn: eight such connections held a scheduler's loop 5 s.
/// Full records (16 KiB) are 1,024 to 16 MiB, so bulk data never waits on it. The check comes
/// after each read, so a turn takes at most the budget plus one read's records. Pure: the
/// session's count and the loop's time (a turn is what runs at one `nowMs`) are given.
struct TLSTurnBudget {
    var maxRecordsPerTurn: Int
    /// The loop time of the turn counted, and the session's record count when it began.
    private var turnMs: UInt64 = .max
    private var recordsAtTurnStart = 0
    private var spent = false

    init(maxRecordsPerTurn: Int = 1_024) {
        self.maxRecordsPerTurn = maxRecordsPerTurn
    }

    /// Before a read: a new turn (the loop's time moved on) starts a new count.
    mutating func begin(records: Int, nowMs: UInt64) {
        guard nowMs != turnMs else { return }
        turnMs = nowMs
        recordsAtTurnStart = records
        spent = false
    }

    /// After a read: true when this turn has taken more records than its budget (reading
    /// pauses until a later turn).
    mutating func isSpent(records: Int) -> Bool {
        spent = spent || records - recordsAtTurnStart > maxRecordsPerTurn
        return spent
    }

    /// Whether reading must stay paused at loop time `nowMs` (the budget of that turn is spent).
    func holdsReading(nowMs: UInt64) -> Bool { spent && nowMs == turnMs }
}
