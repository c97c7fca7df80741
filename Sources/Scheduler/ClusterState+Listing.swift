import SwarmProtocol

/// Bounds of one page of the task listing. A page holds at least one task (a single task
/// always fits a frame: submit refuses one that would not), then stops at `limit` tasks,
/// at `maxBytes` of encoded tasks, or after looking at `maxScan` tasks, whichever comes first.
public struct TaskPageLimits: Sendable {
    /// Tasks per page at most (a request may ask for fewer).
    public var limit = 1_000
    /// Encoded tasks per page at most: a quarter of the 16 MiB frame limit.
    public var maxBytes = 4 * 1024 * 1024
    /// Tasks looked at per page at most (a filter, or a task credential's listing, skips tasks;
    /// this bounds that work too). 2,000: a page of archived tasks decodes each record, about
    /// 0.4 ms a task in a debug build on a loaded machine, so 20,000 held the loop 7-9 s for a
    /// `--state` filter that matched little; the client follows `next` page by page.
    public var maxScan = 2_000

    public init() {}
}

/// One page of the listing, and where the next one starts (nil: this is the last).
public struct TaskPage: Sendable, Equatable {
    public var tasks: [TaskInfo]
    public var next: String?
}

extension ClusterState {
    /// The page of tasks submitted after task `after` (nil: from the first), in submission
    /// order, without their output, keeping those `include` accepts: the tasks in memory
    /// merged with those of `archive` (finished tasks that left memory), read from it in
    /// chunks as the page needs them. `size` measures a task as it will be sent. Throws
    /// `unknownTask` for an `after` that names no task.
    public func listTasks(after: String?, limits: TaskPageLimits, size: (TaskInfo) -> Int,
                          include: (TaskInfo) -> Bool = { _ in true },
                          archive: TaskArchive = .none) throws(SchedulerError) -> TaskPage {
        var sequence: UInt64 = 0
        if let after {
            guard let found = tasks[after]?.sequence ?? archive.task(after)?.sequence ?? purgedCursors[after] else {
                throw .unknownTask(after)
            }
            sequence = found
        }
        var index = firstIndex(afterSequence: sequence)
        var stored = ArchiveCursor(archive: archive, after: sequence, chunk: min(1_000, max(1, limits.maxScan)))
        var page: [TaskInfo] = []
        var bytes = 0
        var scanned = 0
        var last: String?
        while true {
            if page.count >= max(1, limits.limit) || scanned >= max(1, limits.maxScan) { break }
            while index < order.count, tasks[order[index].id] == nil { index += 1 }
            // The next task in submission order: from memory or from the store, whichever is first.
            let fromMemory = index < order.count ? order[index] : nil
            let old = stored.peek(skipping: { tasks[$0] != nil })
            var info: TaskInfo
            let memoryFirst = fromMemory.map { entry in old.map { entry.sequence < $0.sequence } ?? true } ?? false
            if memoryFirst, let entry = fromMemory {
                info = tasks[entry.id]!.info
            } else if let old {
                info = old.info
            } else {
                break
            }
            scanned += 1
            if include(info) {
                info.output = nil
                let cost = size(info)
                if !page.isEmpty && bytes + cost > limits.maxBytes { break }
                bytes += cost
                page.append(info)
            }
            if memoryFirst { index += 1 } else { stored.advance() }
            last = info.id
        }
        let more = index < order.count || stored.peek(skipping: { tasks[$0] != nil }) != nil
        return TaskPage(tasks: page, next: more ? last : nil)
    }

    /// The position in `order` of the first task submitted after `sequence` (`order` is in
    /// submission order, so its sequences increase).
    private func firstIndex(afterSequence sequence: UInt64) -> Int {
        var low = 0, high = order.count
        while low < high {
            let mid = (low + high) / 2
            if order[mid].sequence <= sequence { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Whether `id` is `root` or descends from it through `parent` links. The walk is
    /// bounded: parents are whatever submitters said, so a chain may loop.
    public func isInSubtree(_ id: String, of root: String, archive: TaskArchive = .none) -> Bool {
        var current: String? = id
        var steps = 0
        while let at = current, steps <= Self.maxSubtreeDepth {
            if at == root { return true }
            current = tasks[at].map { $0.info.parent } ?? archive.parent(at)
            steps += 1
        }
        return false
    }

    /// The deepest chain of sub-agents `isInSubtree` follows.
    public static let maxSubtreeDepth = 1_000
}

// MARK: Rerun

extension ClusterState {
    /// Default ids tried for a rerun: `ID.r1` to `ID.r{maxReruns}`.
    public static let maxReruns = 10_000

    /// `swarm rerun`: finished task `id`'s spec as a new task's, with its stored inputs (the
    /// same `inputBlobs`), named `newId` or `ID.rN` with N the first free. Throws when the task
    /// is unknown or has not finished, or the id is taken or not a valid id. Submit the result
    /// as any spec (`submit`): it is checked again there.
    ///
    /// The rerun keeps `after` and `afterAny`: they have all ended, so it runs at once. A task
    /// that ended `dependency_failed` is not rerun (it would end so again at once): rerun the
    /// dependency that failed, then submit it anew `--after` that rerun.
    public func rerunSpec(of id: String, newId: String?, archive: TaskArchive = .none) throws(SchedulerError) -> TaskSpec {
        guard let record = tasks[id].map({ ($0.spec, $0.info) }) ?? archive.task(id).map({ ($0.spec, $0.info) }) else {
            throw .unknownTask(id)
        }
        guard record.1.state.isTerminal else { throw .notEnded(id, record.1.state) }
        if record.1.state == .dependencyFailed {
            throw .invalidTask("task '\(id)' never ran (\(record.1.reason ?? "dependency_failed")): rerun the dependency that failed, then submit it again with --after naming that rerun")
        }
        var spec = try Self.withoutRemovedDependencies(record.0, of: record.1) { tasks[$0] != nil || archive.contains($0) }
        if let newId {
            if let problem = TaskID.problem(with: newId) { throw .invalidTask(problem) }
            if tasks[newId] != nil || archive.contains(newId) { throw .duplicateId(newId) }
            spec.id = newId
            return spec
        }
        for n in 1...Self.maxReruns {
            let candidate = "\(id).r\(n)"
            if TaskID.problem(with: candidate) != nil {
                throw .invalidTask("task id '\(candidate)' would be over \(TaskID.maxLength) characters: name the rerun with --id")
            }
            if tasks[candidate] == nil && !archive.contains(candidate) {
                spec.id = candidate
                return spec
            }
        }
        throw .invalidTask("task '\(id)' has been rerun \(Self.maxReruns) times: name the rerun with --id")
    }

    /// The spec of finished task `info` for a rerun, without the dependencies no longer known
    /// (`exists` false: removed by retention). A task that ran had every dependency met before
    /// its first run (an `after` one succeeded, an `afterAny` one ended), and an end is final:
    /// those it names that are gone are dropped, the others kept. One that never ran (cancelled
    /// while it waited) cannot tell whether a dependency that is gone was met: refused.
    static func withoutRemovedDependencies(_ spec: TaskSpec, of info: TaskInfo,
                                           exists: (String) -> Bool) throws(SchedulerError) -> TaskSpec {
        guard spec.hasDependencies else { return spec }
        let gone = spec.dependencies.filter { !exists($0.id) }.map(\.id)
        guard let first = gone.first else { return spec }
        guard info.attempts > 0 else {
            throw .invalidTask("cannot rerun task '\(info.id)': its dependency '\(first)' was removed by retention before '\(info.id)' ever ran, so whether it succeeded is no longer known; submit it again with --after naming what it should wait for")
        }
        let removed = Set(gone)
        var kept = spec
        kept.after = spec.after?.filter { !removed.contains($0) }
        kept.afterAny = spec.afterAny?.filter { !removed.contains($0) }
        if kept.after?.isEmpty == true { kept.after = nil }
        if kept.afterAny?.isEmpty == true { kept.afterAny = nil }
        return kept
    }
}

/// Reads an archive's tasks in submission order, a chunk at a time.
struct ArchiveCursor {
    let archive: TaskArchive
    var after: UInt64
    let chunk: Int
    private var buffer: [TaskSnapshot] = []
    private var position = 0
    private var exhausted = false

    init(archive: TaskArchive, after: UInt64, chunk: Int) {
        self.archive = archive
        self.after = after
        self.chunk = chunk
    }

    /// The next task not `skipping` (those still in memory), or nil at the end.
    mutating func peek(skipping: (String) -> Bool) -> TaskSnapshot? {
        while true {
            while position < buffer.count {
                if !skipping(buffer[position].info.id) { return buffer[position] }
                position += 1
            }
            guard !exhausted else { return nil }
            buffer = archive.page(after, chunk)
            position = 0
            exhausted = buffer.count < chunk
            guard let last = buffer.last else { return nil }
            after = last.sequence
        }
    }

    mutating func advance() { position += 1 }
}

/// The submission sequences of the last `capacity` tasks retention deleted: a listing whose
/// cursor (`--cursor ID`, or the page it is walking) names one of them goes on after its
/// place, as if it were there. Retention deletes the oldest tasks, exactly where a listing
/// of a busy cluster pages through; without this the listing failed with "unknown task".
/// A cursor more than `capacity` deletions old is unknown.
struct PurgedCursors: Sendable {
    static let capacity = 10_000
    private var sequences: [String: UInt64] = [:]
    private var order: [String] = []
    private var head = 0

    subscript(id: String) -> UInt64? { sequences[id] }

    var count: Int { sequences.count }

    mutating func remember(_ id: String, sequence: UInt64) {
        guard sequences.updateValue(sequence, forKey: id) == nil else { return }
        order.append(id)
        while order.count - head > Self.capacity {
            sequences[order[head]] = nil
            head += 1
        }
        if head > 1_024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
