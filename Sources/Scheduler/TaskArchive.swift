import SwarmProtocol

/// Finished tasks that have left the scheduler's memory (`SchedulerSettings.inMemoryFinished`)
/// and live only in its store: the pure cores ask, the shell answers from SQLite
/// (`TaskStore.archivedTask`, `archivedPage`). A task is in memory or here, never in neither
/// while it exists: it leaves memory only once its last state is saved. The default, `none`,
/// knows no task (a scheduler without a store keeps every task in memory).
public struct TaskArchive {
    /// The task `id` with its runs, or nil.
    public var task: (String) -> TaskSnapshot?
    /// Whether a task `id` exists in the store (cheaper than `task`: nothing is decoded).
    public var contains: (String) -> Bool
    /// Up to `limit` tasks submitted after sequence `after`, in submission order, without
    /// their output and runs. Rows of tasks still in memory may be among them (memory wins).
    public var page: (_ after: UInt64, _ limit: Int) -> [TaskSnapshot]
    /// The parent of task `id` (nil: none, or no such task) without decoding its record: what
    /// subtree walks (`isInSubtree`) read, up to `ClusterState.maxSubtreeDepth` per request.
    /// By default taken from `task`.
    public var parent: (String) -> String?

    public init(task: @escaping (String) -> TaskSnapshot?, contains: @escaping (String) -> Bool,
                page: @escaping (UInt64, Int) -> [TaskSnapshot], parent: ((String) -> String?)? = nil) {
        self.task = task
        self.contains = contains
        self.page = page
        self.parent = parent ?? { task($0)?.info.parent }
    }

    /// Knows no task.
    public static var none: TaskArchive {
        TaskArchive(task: { _ in nil }, contains: { _ in false }, page: { _, _ in [] })
    }

    /// An archive of `tasks` held in memory (tests, and the store's stand-in).
    public static func of(_ tasks: [TaskSnapshot]) -> TaskArchive {
        let byId = Dictionary(tasks.map { ($0.info.id, $0) }, uniquingKeysWith: { $1 })
        let ordered = tasks.sorted { $0.sequence < $1.sequence }
        return TaskArchive(task: { byId[$0] }, contains: { byId[$0] != nil }, page: { after, limit in
            var low = 0, high = ordered.count
            while low < high {
                let mid = (low + high) / 2
                if ordered[mid].sequence <= after { low = mid + 1 } else { high = mid }
            }
            return Array(ordered[low..<min(ordered.count, low + max(0, limit))])
        })
    }
}

/// A task's place in submission order (`ClusterState.order`).
struct OrderEntry: Sendable {
    var sequence: UInt64
    var id: String
}
