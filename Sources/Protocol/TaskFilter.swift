/// Which tasks a listing keeps (`swarm tasks --state --node --model --parent --since`): a task
/// matches when it matches every field given. Sent inside `listTasks`; the scheduler applies it
/// page by page, so a filtered listing costs the same bounded work per page as a plain one.
public struct TaskFilter: Codable, Sendable, Equatable {
    /// Any of these states.
    public var states: [TaskState]?
    /// Runs or last ran on this worker.
    public var node: String?
    /// Its model (as resolved at submission: the spec's, else the runtime's default).
    public var model: String?
    /// Its `parent` is this task (direct children only).
    public var parent: String?
    /// Submitted at or after this time (unix ms, the wall clock's).
    public var since: Int64?

    /// Longest name a filter may carry (node, model, parent), in bytes.
    public static let maxNameBytes = 256

    public init(states: [TaskState]? = nil, node: String? = nil, model: String? = nil, parent: String? = nil, since: Int64? = nil) {
        self.states = states; self.node = node; self.model = model; self.parent = parent; self.since = since
    }

    /// No field given: every task matches.
    public var isEmpty: Bool { states == nil && node == nil && model == nil && parent == nil && since == nil }

    /// Nil when the filter is within its bounds, else why not (one line).
    public var problem: String? {
        if let states, states.isEmpty || states.count > TaskState.allCases.count {
            return "a task filter names 1 to \(TaskState.allCases.count) states, got \(states.count)"
        }
        for (what, name) in [("node", node), ("model", model), ("parent", parent)] {
            if let name, name.isEmpty || name.utf8.count > Self.maxNameBytes {
                return "a task filter's \(what) must be 1 to \(Self.maxNameBytes) bytes, got \(name.utf8.count)"
            }
        }
        return nil
    }

    public func matches(_ info: TaskInfo) -> Bool {
        if let states, !states.contains(info.state) { return false }
        if let node, info.node != node { return false }
        if let model, info.metrics.model != model { return false }
        if let parent, info.parent != parent { return false }
        if let since, info.submittedAt < since { return false }
        return true
    }
}
