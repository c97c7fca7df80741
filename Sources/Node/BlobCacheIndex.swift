import SwarmProtocol

/// The bookkeeping of a worker's blob cache (`DATA/blobs/`), pure: which blobs are there,
/// which are being fetched, which tasks wait for which, and what to evict. The shell
/// (`WorkerAgent+Inputs`) fetches, hashes and deletes the files the directives name.
///
/// - **Bounded**: fetched and fetching blobs together hold at most `capacity` bytes. A task
///   is admitted only when all of its missing blobs fit beside the blobs pinned by other
///   tasks; otherwise it waits in line (first come, first admitted) until pins are released.
///   A task whose missing blobs alone exceed `capacity` fails at once.
/// - **Pinned**: a task's blobs are pinned from its request until `release` (after they are
///   unpacked); a pinned or fetching blob is never evicted. Least recently used go first.
/// - **Single flight**: one fetch per blob, however many tasks wait for it.
/// - **Checked**: a blob found on disk at start is hashed again before its first use.
struct BlobCacheIndex: Sendable {
    struct Entry: Sendable, Equatable {
        var size: Int64
        /// Fetched (or found) and hash checked: usable.
        var ready: Bool
        /// Found on disk at start, not hashed since.
        var unverified: Bool
        var lastUse: UInt64
        var pins: Int
    }

    enum Directive: Equatable, Sendable {
        /// Fetch this blob into its cache file, then call `fetched`.
        case fetch(sha256: String, size: Int64)
        /// Hash the cache file: matches -> `fetched(nil)`; else delete it, fetch, then `fetched`.
        case verify(sha256: String, size: Int64)
        /// Delete the cache file.
        case evict(sha256: String)
        /// Every blob of this task is in the cache, checked, and pinned until `release`.
        case ready(RunRef)
        /// This task's inputs cannot be had (`sha256`: the blob that failed, nil: no room);
        /// its pins are released already.
        case failed(RunRef, sha256: String?, reason: String)
    }

    let capacity: Int64
    private(set) var entries: [String: Entry] = [:]
    /// Bytes of ready and fetching entries.
    private(set) var usedBytes: Int64 = 0
    private var useClock: UInt64 = 0
    /// Per admitted task, its blobs (pinned), and those it still waits for.
    private var pinned: [RunRef: [String]] = [:]
    private var waiting: [RunRef: Set<String>] = [:]
    /// Tasks not admitted yet (no room), oldest first.
    private var queue: [(task: RunRef, blobs: [(sha256: String, size: Int64)])] = []

    init(capacity: Int64) { self.capacity = max(0, capacity) }

    var pinnedBytes: Int64 { entries.values.reduce(0) { $0 + ($1.pins > 0 ? $1.size : 0) } }
    var queuedTasks: Int { queue.count }

    /// A blob file found at start (`lastUse`: e.g. its mtime, for the eviction order).
    mutating func found(_ sha256: String, size: Int64, lastUse: UInt64) -> [Directive] {
        guard entries[sha256] == nil else { return [] }
        entries[sha256] = Entry(size: size, ready: true, unverified: true, lastUse: lastUse, pins: 0)
        usedBytes += size
        useClock = max(useClock, lastUse)
        return evictToCapacity()
    }

    /// `task` needs these blobs (duplicates allowed). Answers `ready` at once, or starts
    /// fetches and answers later through `fetched`, or queues the task, or fails it.
    mutating func request(_ task: RunRef, _ blobs: [(sha256: String, size: Int64)]) -> [Directive] {
        var unique: [(sha256: String, size: Int64)] = []
        var seen: Set<String> = []
        for blob in blobs where seen.insert(blob.sha256).inserted { unique.append(blob) }
        let missing = unique.filter { entries[$0.sha256] == nil }.reduce(Int64(0)) { $0 + $1.size }
        if missing > capacity {
            return [.failed(task, sha256: nil, reason: "its inputs need \(missing) bytes the worker's blob cache lacks, and the cache holds at most \(capacity) bytes")]
        }
        if !queue.isEmpty || !fits(missing, keeping: seen) {
            queue.append((task, unique))
            return []
        }
        return admit(task, unique)
    }

    /// The fetch (or check) of `sha256` ended: nil, the file is there and checked; else why not.
    mutating func fetched(_ sha256: String, problem: String?) -> [Directive] {
        guard var entry = entries[sha256], !entry.ready else { return [] }
        var directives: [Directive] = []
        let waiters = waiting.filter { $0.value.contains(sha256) }.map(\.key).sorted { $0.id < $1.id }
        if let problem {
            entries[sha256] = nil
            usedBytes -= entry.size
            for task in waiters {
                directives.append(.failed(task, sha256: sha256, reason: problem))
                directives += release(task)
            }
            return directives + admitQueued()
        }
        useClock += 1
        entry.ready = true
        entry.unverified = false
        entry.lastUse = useClock
        entries[sha256] = entry
        for task in waiters {
            waiting[task]?.remove(sha256)
            if waiting[task]?.isEmpty == true {
                waiting[task] = nil
                directives.append(.ready(task))
            }
        }
        return directives + evictToCapacity()
    }

    /// `task` no longer needs its blobs (unpacked, failed or killed): unpins them, and admits
    /// waiting tasks that fit now.
    mutating func release(_ task: RunRef) -> [Directive] {
        queue.removeAll { $0.task == task }
        waiting[task] = nil
        guard let blobs = pinned.removeValue(forKey: task) else { return [] }
        for sha256 in blobs { entries[sha256]?.pins -= 1 }
        return evictToCapacity() + admitQueued()
    }

    /// Whether `missing` more bytes fit once unpinned ready blobs (but `keeping`) are evicted.
    private func fits(_ missing: Int64, keeping: Set<String>) -> Bool {
        var evictable: Int64 = 0
        for (sha256, entry) in entries where entry.ready && entry.pins == 0 && !keeping.contains(sha256) {
            evictable += entry.size
        }
        return usedBytes - evictable + missing <= capacity
    }

    private mutating func admit(_ task: RunRef, _ blobs: [(sha256: String, size: Int64)]) -> [Directive] {
        var directives: [Directive] = []
        var wait: Set<String> = []
        useClock += 1
        for blob in blobs {
            if var entry = entries[blob.sha256] {
                entry.pins += 1
                entry.lastUse = useClock
                if !entry.ready {
                    wait.insert(blob.sha256)
                } else if entry.unverified {
                    // Checked once, by the first task that uses it: until then it is fetching-like.
                    entry.ready = false
                    wait.insert(blob.sha256)
                    directives.append(.verify(sha256: blob.sha256, size: entry.size))
                }
                entries[blob.sha256] = entry
            } else {
                entries[blob.sha256] = Entry(size: blob.size, ready: false, unverified: false, lastUse: useClock, pins: 1)
                usedBytes += blob.size
                wait.insert(blob.sha256)
                directives.append(.fetch(sha256: blob.sha256, size: blob.size))
            }
        }
        pinned[task] = blobs.map(\.sha256)
        // Room first: evictions come before the fetches that need the space.
        directives = evictToCapacity() + directives
        if wait.isEmpty { directives.append(.ready(task)) } else { waiting[task] = wait }
        return directives
    }

    private mutating func admitQueued() -> [Directive] {
        var directives: [Directive] = []
        while let next = queue.first {
            let missing = next.blobs.filter { entries[$0.sha256] == nil }.reduce(Int64(0)) { $0 + $1.size }
            guard fits(missing, keeping: Set(next.blobs.map(\.sha256))) else { break }
            queue.removeFirst()
            directives += admit(next.task, next.blobs)
        }
        return directives
    }

    /// Least recently used unpinned ready blobs go until the cache is within its capacity.
    private mutating func evictToCapacity() -> [Directive] {
        guard usedBytes > capacity else { return [] }
        let candidates = entries.filter { $0.value.ready && $0.value.pins == 0 }
            .sorted { ($0.value.lastUse, $0.key) < ($1.value.lastUse, $1.key) }
        var directives: [Directive] = []
        for (sha256, entry) in candidates where usedBytes > capacity {
            entries[sha256] = nil
            usedBytes -= entry.size
            directives.append(.evict(sha256: sha256))
        }
        return directives
    }
}
