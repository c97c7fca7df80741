import SwarmProtocol

/// Task trees (issue 13 item 5): recursive cancel, the tree listing, and waiting for a tree.
extension SwarmClient {
    /// Cancels task `id` and every descendant in one request (`cancelTree` ->
    /// `treeCancelled`): queued ones end `cancelled`, running ones are killed on their
    /// workers. Refused for an unknown id, or a tree over `TreeLimits.maxTreeTasks`.
    public func cancelTree(_ id: String) throws(ClientError) -> Message.TreeCancelled {
        guard case .treeCancelled(let reply) = try request({ .cancelTree(.init(requestId: $0, id: id)) }) else {
            throw .server(.unexpected, "unexpected reply to cancel --recursive")
        }
        return reply
    }

    /// One page of the tree of `id` (nil: every root), in preorder, after entry `after`.
    public func treePage(id: String?, after: String? = nil, limit: Int? = nil) throws(ClientError) -> Message.TaskTree {
        guard case .taskTree(let reply) = try request({ .listTree(.init(requestId: $0, id: id, after: after, limit: limit)) }) else {
            throw .server(.unexpected, "unexpected reply to tasks --tree")
        }
        return reply
    }

    /// The tree of `id` (nil: every root), in preorder, from after entry `start`, at most
    /// `limit` entries (nil: all), page by page. `more`: it stopped at `limit` with entries
    /// left; the next call starts after the last entry returned.
    public func tree(id: String?, after start: String? = nil, limit: Int? = nil) throws(ClientError) -> (entries: [TreeEntry], more: Bool) {
        var entries: [TreeEntry] = []
        var after = start
        var seen = Set<String>()
        while true {
            let remaining = limit.map { max(0, $0 - entries.count) }
            if remaining == 0 { return (entries, true) }
            let page = try treePage(id: id, after: after, limit: remaining.map { min($0, TreeLimits.pageEntries) })
            entries += page.entries
            guard let next = page.next else { return (entries, false) }
            // A cursor seen before would loop for ever: the scheduler must move on.
            guard seen.insert(next).inserted else { throw .server(.unexpected, "the tree listing did not advance past '\(next)'") }
            after = next
        }
    }

    /// Waits until task `id` and every descendant have ended (`RecursiveWait`); nil timeout
    /// waits for ever. Returns the tree's tasks in preorder as summaries (`WaitSummary`).
    /// Throws `waitTimedOut` when the time runs out first.
    public func waitTree(_ id: String, timeoutSeconds: Double? = nil) throws(ClientError) -> [TaskInfo] {
        let deadline = timeoutSeconds.map { monotonicMillis() + Bounds.int64(min(max($0, 0), 1e9) * 1000) }
        let wait = RecursiveWait(root: id)
        // Each round waits for at least one task to end, and a tree has at most
        // `maxTreeTasks`: the rounds are bounded.
        for _ in 0...TreeLimits.maxTreeTasks {
            let first = try treePage(id: id, limit: 1)
            switch wait.next(first) {
            case .done:
                return try tree(id: id).entries.map(\.task)
            case .tooLarge(let reason):
                throw .server(.invalidTask, reason)
            case .wait(let ids):
                let left = deadline.map { Double(max($0 - monotonicMillis(), 0)) / 1000 }
                if let left, left <= 0 { throw .waitTimedOut("waiting for the tree of \(id)") }
                do { _ = try self.wait(ids, timeoutSeconds: left) } catch .waitTimedOut {
                    throw .waitTimedOut("waiting for the tree of \(id)")
                }
            }
        }
        throw .server(.unexpected, "the tree of \(id) kept growing past \(TreeLimits.maxTreeTasks) rounds")
    }
}

/// `swarm wait --recursive ID`, decided: given the first page of the tree (its counts, made in
/// one turn of the scheduler), the wait is over when no task of the tree has not ended; else
/// it waits for those (the first `TreeLimits.maxPendingIds`) and asks again, so children that
/// running descendants submit meanwhile are waited for too. It returns when the task and every
/// descendant known at that moment have ended. Pure.
public struct RecursiveWait: Sendable {
    public enum Step: Equatable, Sendable {
        case done
        case wait([String])
        case tooLarge(String)
    }

    public let root: String
    public init(root: String) { self.root = root }

    public func next(_ first: Message.TaskTree) -> Step {
        guard let count = first.pendingCount, let pending = first.pending, first.total != nil else {
            return .tooLarge("the tree of task '\(root)' has more than \(TreeLimits.maxTreeTasks) tasks, the most one request takes")
        }
        if count == 0 { return .done }
        return pending.isEmpty ? .tooLarge("the scheduler named no pending task of the tree of '\(root)'") : .wait(pending)
    }
}
