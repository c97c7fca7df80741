import Foundation
import SwarmProtocol

/// The live line of a wait on a terminal (`swarm wait`, `swarm submit --wait`), like GNU
/// parallel's `--bar`: pure, fed with what the scheduler says and a monotonic `nowMs`.
///
/// Terms, with numbers:
/// - **done**: tasks seen in an ended state (any of them; `failed` counts those not
///   `succeeded`). A task is asked about until it is seen ended, then never again.
/// - **running / queued**: the last state seen of each task not yet ended (a task not yet
///   asked about counts as queued).
/// - **rate**: tasks done per second over the last `rateWindowMs` (10 s), from the first
///   sample inside it; shown once at least one task is done and 1 s has passed.
/// - **ETA**: the tasks left divided by the rate, rounded up to a second; shown with the rate.
public struct WaitProgress: Sendable {
    public static let rateWindowMs: Int64 = 10_000

    let ids: [String]
    private var last: [TaskState?]
    /// Positions of the tasks not yet seen ended, in the order named.
    private var pending: [Int]
    /// Where the next `query` starts in `pending` (round robin over more than one request's worth).
    private var cursor = 0
    public private(set) var done = 0
    public private(set) var notSucceeded = 0
    private var samples: [(ms: Int64, done: Int)] = []
    /// For a tree (`wait --recursive`): its size, which grows as tasks are submitted into it.
    private var treeTotal: Int?

    public init(ids: [String], nowMs: Int64) {
        self.ids = ids
        last = Array(repeating: nil, count: ids.count)
        pending = Array(ids.indices)
        samples = [(nowMs, 0)]
    }

    /// A tree's progress, from its first listing page's `total` and `pendingCount`.
    public init(treeOf id: String, nowMs: Int64) {
        self.init(ids: [], nowMs: nowMs)
        treeTotal = 1
    }

    public var total: Int { treeTotal ?? ids.count }

    /// The next ids to ask about: at most `limit` of those not seen ended, continuing where
    /// the last query stopped. Empty when all have ended.
    public mutating func query(limit: Int) -> [String] {
        guard !pending.isEmpty else { return [] }
        if cursor >= pending.count { cursor = 0 }
        let slice = pending[cursor..<min(pending.count, cursor + max(1, limit))]
        cursor += slice.count
        return slice.map { ids[$0] }
    }

    /// What the scheduler said of `asked` (a query's ids, in order).
    public mutating func apply(asked: [String], states: [TaskState?], nowMs: Int64) {
        var answer: [String: TaskState] = [:]
        for (id, state) in zip(asked, states) { if let state { answer[id] = state } }
        var still: [Int] = []
        var removedBeforeCursor = 0
        for (index, position) in pending.enumerated() {
            if let state = answer[ids[position]] {
                last[position] = state
                if state.isTerminal {
                    done += 1
                    if state != .succeeded { notSucceeded += 1 }
                    if index < cursor { removedBeforeCursor += 1 }
                    continue
                }
            }
            still.append(position)
        }
        cursor -= removedBeforeCursor
        pending = still
        sample(nowMs)
    }

    /// A tree's counts (`taskTree`'s first page): `total` tasks, `pendingCount` not ended. A
    /// page without them (a tree grown past `TreeLimits.maxTreeTasks`) changes nothing: read
    /// as none pending, it would show the tree all done.
    public mutating func applyTree(total: Int?, pendingCount: Int?, nowMs: Int64) {
        guard let total, let pendingCount else { return }
        treeTotal = max(1, total)
        done = max(0, total - pendingCount)
        sample(nowMs)
    }

    private mutating func sample(_ nowMs: Int64) {
        samples.append((nowMs, done))
        while samples.count > 2, samples[1].ms <= nowMs - Self.rateWindowMs { samples.removeFirst() }
    }

    /// Tasks done per second over the window, nil before it means anything.
    public func rate(nowMs: Int64) -> Double? {
        guard let first = samples.first else { return nil }
        let elapsed = Double(nowMs - first.ms) / 1000
        guard elapsed >= 1, done > first.done else { return nil }
        return Double(done - first.done) / elapsed
    }

    /// The line: `812/1000 done (3 failed), 16 running, 172 queued, 54.1/s, ETA 4 s`.
    public func line(nowMs: Int64) -> String {
        var parts = ["\(done)/\(total) done" + (notSucceeded > 0 ? " (\(notSucceeded) not succeeded)" : "")]
        if treeTotal == nil {
            let running = pending.filter { last[$0] == .running }.count
            parts.append("\(running) running")
            parts.append("\(pending.count - running) queued")
        } else {
            parts.append("\(total - done) pending")
        }
        if let rate = rate(nowMs: nowMs) {
            parts.append(rate >= 10 ? "\(Int(rate.rounded()))/s" : String(format: "%.1f/s", rate))
            parts.append("ETA " + Self.duration(seconds: Int((Double(total - done) / rate).rounded(.up))))
        }
        return parts.joined(separator: ", ")
    }

    /// `4 s`, `2 min 5 s`, `1 h 3 min`.
    public static func duration(seconds: Int) -> String {
        let s = max(0, seconds)
        if s < 60 { return "\(s) s" }
        if s < 3_600 { return "\(s / 60) min" + (s % 60 > 0 ? " \(s % 60) s" : "") }
        return "\(s / 3_600) h" + ((s % 3_600) / 60 > 0 ? " \((s % 3_600) / 60) min" : "")
    }
}
