/// Task trees (issue 13 item 5): a task and its descendants through `parent`, as `swarm tasks
/// --tree`, `swarm cancel --recursive` and `swarm wait --recursive` see them.
///
/// A listing of a tree is its preorder (a task, then each child's subtree, children in
/// submission order), flattened into `TreeEntry`s that carry their depth, and paged like
/// `listTasks`: a page holds at most `TreeLimits.pageEntries` entries and
/// `TreeLimits.pageBytes` of encoded entries, and `next` is the id of its last entry, from
/// which the next page goes on. Each entry's task is a `waitSummary()` (at most
/// `WaitSummary.maxSummaryBytes`), so no page comes near the frame limit however large the
/// tree or its tasks are.
public enum TreeLimits {
    /// The most tasks one `cancelTree`, or the counts of a `listTree`'s first page, take in:
    /// a larger tree is refused (cancel its subtrees), never walked without end.
    public static let maxTreeTasks = 100_000
    /// Entries per `taskTree` page at most.
    public static let pageEntries = 1_000
    /// Encoded entries per page at most (a quarter of the frame limit, as `listTasks`).
    public static let pageBytes = 4 * 1024 * 1024
    /// Ids of pending tasks a `taskTree` first page names at most (as many as one `wait`).
    public static let maxPendingIds = WaitSummary.maxIds
}

/// One task of a tree listing, at its depth (0: the listing's root, or a root of the forest).
public struct TreeEntry: Codable, Sendable, Equatable {
    public var depth: Int
    public var task: TaskInfo
    public init(depth: Int, task: TaskInfo) { self.depth = depth; self.task = task }
}

extension Message {
    /// `swarm tasks --tree [ID]`, `swarm wait --recursive ID`: one page of the tree of `id`
    /// (nil: every root, the tasks without a parent or whose parent is not known), in
    /// preorder, after entry `after` (nil: from the start), at most `limit` entries.
    public struct ListTree: Codable, Sendable, Equatable {
        public var requestId: Int
        public var id: String?
        public var after: String?
        public var limit: Int?
        public init(requestId: Int, id: String? = nil, after: String? = nil, limit: Int? = nil) {
            self.requestId = requestId; self.id = id; self.after = after; self.limit = limit
        }
    }

    /// A page of a tree listing. On the first page of a tree named by id (`after` nil), the
    /// whole tree counted in the same turn: `total` tasks (nil: more than
    /// `TreeLimits.maxTreeTasks`), `pendingCount` of them not ended, and the first
    /// `TreeLimits.maxPendingIds` of those in `pending`.
    public struct TaskTree: Codable, Sendable, Equatable {
        public var requestId: Int
        public var entries: [TreeEntry]
        /// The `after` of the next page; absent on the last.
        public var next: String?
        public var total: Int?
        public var pendingCount: Int?
        public var pending: [String]?
        public init(requestId: Int, entries: [TreeEntry], next: String? = nil, total: Int? = nil,
                    pendingCount: Int? = nil, pending: [String]? = nil) {
            self.requestId = requestId; self.entries = entries; self.next = next
            self.total = total; self.pendingCount = pendingCount; self.pending = pending
        }
    }

    /// The answer to `cancelTree`: the tree's tasks counted by what the cancel did to them.
    public struct TreeCancelled: Codable, Sendable, Equatable {
        public var requestId: Int
        /// The tree's root.
        public var id: String
        /// Every task of the tree (the root included).
        public var total: Int
        /// Queued ones, now `cancelled`.
        public var cancelled: Int
        /// Running ones, being killed on their workers (they end `cancelled`).
        public var killing: Int
        /// Those that had ended before (left as they are).
        public var alreadyEnded: Int
        /// Those an earlier cancel was already ending (an overlapping tree cancel, or a plain
        /// cancel of a running one): not counted again. Absent (nil) from older schedulers.
        public var alreadyCancelling: Int?
        public init(requestId: Int, id: String, total: Int, cancelled: Int, killing: Int, alreadyEnded: Int,
                    alreadyCancelling: Int? = nil) {
            self.requestId = requestId; self.id = id; self.total = total
            self.cancelled = cancelled; self.killing = killing; self.alreadyEnded = alreadyEnded
            self.alreadyCancelling = alreadyCancelling
        }
    }
}
