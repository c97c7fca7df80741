#if canImport(Glibc)
import Glibc
#endif

/// `execvp`'s search of a command name in a `PATH`, and a short-lived cache of its answers.
///
/// Why a cache: a worker spawns the same few commands thousands of times, and each search
/// stats every `PATH` entry up to the one holding the program (`true` is in the 9th here:
/// 9 `stat` and an `access` per spawn, 5% of a worker's CPU under `swarm bench spawn`).
/// Why only for `ttlMs`: a program installed later in an earlier `PATH` directory must win
/// within a second, as it would for `execvp` (a shell's hash table keeps a name until the
/// program is gone). A cached path the spawn then cannot run (ENOENT, EACCES) is forgotten
/// and searched again at once (`UVProcess.spawn`). Pure: the caller passes `nowMs`
/// (monotonic) and holds the cache behind its lock.
struct ExecutableCache {
    struct Key: Hashable {
        let file: String
        let searchPath: String
    }

    /// How long an answer is used before the directories are searched again.
    static let ttlMs: UInt64 = 1_000
    /// Entries kept at most; the whole cache is dropped when a new one would exceed it.
    static let capacity = 256

    private var entries: [Key: (path: String, storedAtMs: UInt64)] = [:]

    var count: Int { entries.count }

    /// The path found for `key` less than `ttlMs` ago, if any.
    func lookup(_ key: Key, nowMs: UInt64) -> String? {
        guard let entry = entries[key], nowMs &- entry.storedAtMs < Self.ttlMs, nowMs >= entry.storedAtMs else {
            return nil
        }
        return entry.path
    }

    mutating func store(_ key: Key, path: String, nowMs: UInt64) {
        if entries[key] == nil, entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = (path, nowMs)
    }

    mutating func forget(_ key: Key) { entries[key] = nil }

    /// Whether answers for `searchPath` may be cached: not when an entry is relative (empty
    /// included), since those count from the child's working directory, which differs per spawn.
    static func cacheable(_ searchPath: String) -> Bool {
        searchPath.split(separator: ":", omittingEmptySubsequences: false).allSatisfy { $0.hasPrefix("/") }
    }
}

enum ExecutableLookup {
    /// The cache shared by every loop of the process (they may run on several threads).
    static let cache = Locked(ExecutableCache())

    /// The `PATH` a name is searched in: the child's when an environment is given (ours
    /// otherwise; glibc's default `/bin:/usr/bin` when there is none), as `execvp` and
    /// `uv_spawn` do.
    static func searchPath(environment: [String]?) -> String {
        if let environment {
            return environment.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) } ?? "/bin:/usr/bin"
        }
        return getenv("PATH").map { String(cString: $0) } ?? "/bin:/usr/bin"
    }

    /// `execvp`'s lookup, uncached: the first entry of `searchPath` holding `file` as an
    /// executable non-directory. Relative entries count from `workingDirectory`. Throws
    /// ENOENT, or EACCES when only non-executable candidates were found.
    static func search(_ file: String, in searchPath: String, workingDirectory: String?) throws(UVError) -> String {
        var sawDenied = false
        for entry in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let dir = entry.isEmpty ? "." : String(entry)
            let candidate = dir.hasSuffix("/") ? dir + file : dir + "/" + file
            let probe = candidate.hasPrefix("/") || workingDirectory == nil
                ? candidate : workingDirectory! + "/" + candidate
            var info = stat()
            guard stat(probe, &info) == 0, info.st_mode & S_IFMT != S_IFDIR else { continue }
            if access(probe, X_OK) == 0 { return candidate }
            sawDenied = true
        }
        throw UVError(sawDenied ? -EACCES : -ENOENT)
    }

    /// The path to run for `file`: itself when it has a slash, else the search's answer,
    /// cached when `searchPath` is all absolute. `cached` tells the caller the answer came
    /// from the cache (and must be forgotten if it cannot be run).
    static func resolve(_ file: String, environment: [String]?, workingDirectory: String?,
                        nowMs: UInt64) throws(UVError) -> (path: String, key: ExecutableCache.Key?, cached: Bool) {
        guard !file.isEmpty else { throw UVError(-ENOENT) }
        if file.contains("/") { return (file, nil, false) }
        let searchPath = searchPath(environment: environment)
        guard ExecutableCache.cacheable(searchPath) else {
            return (try search(file, in: searchPath, workingDirectory: workingDirectory), nil, false)
        }
        let key = ExecutableCache.Key(file: file, searchPath: searchPath)
        if let path = cache.withLock({ $0.lookup(key, nowMs: nowMs) }) { return (path, key, true) }
        let path = try search(file, in: searchPath, workingDirectory: workingDirectory)
        cache.withLock { $0.store(key, path: path, nowMs: nowMs) }
        return (path, key, false)
    }
}
