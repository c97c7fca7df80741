import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Finds a finished run's artifacts: walks the task directory (never following a symbolic
/// link), matches regular files against the patterns (`ArtifactGlob`), hashes them, and
/// applies the per-task limits. Everything matched but not taken is listed with the reason,
/// never dropped silently. Runs on the loop thread: the hashing reads each file once
/// (SHA-256 at over 1 GB/s, so 256 MiB, the default per-task limit, is a fraction of a second).
enum ArtifactCollector {
    struct Limits: Sendable, Equatable {
        /// Bytes uploaded per task (`worker.maxArtifactBytesPerTask`).
        var maxBytes: Int64 = BlobLimits.defaultArtifactBytesPerTask
        var maxCount = BlobLimits.maxArtifactsPerTask
        /// Directory entries looked at before the walk stops (a task that made millions of files).
        var maxEntriesVisited = 200_000
        /// Path text of both lists together, so the result stays far under the frame cap.
        var maxListBytes = 4 << 20
        /// Skipped files listed one by one; the rest are counted in one last entry.
        var maxSkippedListed = 1_000
    }

    struct Found: Sendable, Equatable {
        var uploads: [TaskPipeline.Upload] = []
        var skipped: [SkippedArtifact] = []
    }

    /// The artifacts of the task directory `root` for `patterns` (checked with
    /// `ArtifactGlob.problem`; a bad one is listed as skipped with its problem).
    static func collect(root: String, patterns: [String], limits: Limits = Limits()) -> Found {
        var found = Found()
        var globs: [ArtifactGlob] = []
        for pattern in patterns.prefix(BlobLimits.maxArtifactPatterns) {
            if let glob = ArtifactGlob(pattern) { globs.append(glob) } else {
                found.skipped.append(SkippedArtifact(path: pattern, size: nil, reason: ArtifactGlob.problem(pattern) ?? "bad pattern"))
            }
        }
        var matched: [(path: String, kind: mode_t, size: Int64, mode: Int)] = []
        var badNames: [String] = []
        var visited = 0
        // A task that replaced its own directory by a link (to /etc, say) must not have the
        // link's target collected: the walk never follows links, the root included.
        guard isRealDirectory(root) else {
            found.skipped.append(SkippedArtifact(path: "*", size: nil,
                reason: "the task's directory is no longer a directory (removed, or replaced by a link: links are not followed)"))
            return found
        }
        walk(root, [], globs, &matched, &badNames, &visited, limits.maxEntriesVisited)
        if visited >= limits.maxEntriesVisited {
            found.skipped.append(SkippedArtifact(path: "*", size: nil,
                reason: "the task directory has more than \(limits.maxEntriesVisited) entries; the search stopped there"))
        }
        matched.sort { $0.path < $1.path }
        var bytes: Int64 = 0
        var listBytes = 0
        var unlisted = 0
        func skip(_ path: String, _ size: Int64?, _ reason: String) {
            if found.skipped.count < limits.maxSkippedListed && listBytes + path.utf8.count <= limits.maxListBytes {
                listBytes += path.utf8.count
                found.skipped.append(SkippedArtifact(path: path, size: size, reason: reason))
            } else {
                unlisted += 1
            }
        }
        for path in badNames.sorted() {
            skip(path, nil, "its name is not valid UTF-8 (shown with U+FFFD); artifact paths must be UTF-8")
        }
        for file in matched {
            let full = "\(root)/\(file.path)"
            if file.kind == S_IFLNK { skip(file.path, nil, "a symbolic link (links are not followed)"); continue }
            guard file.kind == S_IFREG else { skip(file.path, nil, "not a regular file"); continue }
            if found.uploads.count >= limits.maxCount { skip(file.path, file.size, "over the limit of \(limits.maxCount) artifacts per task"); continue }
            if bytes + file.size > limits.maxBytes {
                skip(file.path, file.size, "over the limit of \(limits.maxBytes) artifact bytes per task (\(bytes) taken)")
                continue
            }
            if listBytes + file.path.utf8.count > limits.maxListBytes {
                skip(file.path, file.size, "the result's list of artifacts is full"); continue
            }
            // Read at most one byte past what is left: a file a leftover process keeps
            // growing (it was small when listed) must not keep this thread reading for ever.
            switch hashFile(full, maxBytes: limits.maxBytes - bytes) {
            case .failure(let problem): skip(file.path, file.size, problem.description)
            case .success(let (sha256, size)):
                guard bytes + size <= limits.maxBytes else {
                    skip(file.path, size, "over the limit of \(limits.maxBytes) artifact bytes per task (\(bytes) taken)")
                    continue
                }
                bytes += size
                listBytes += file.path.utf8.count
                found.uploads.append(.init(ref: ArtifactRef(path: file.path, size: size, sha256: sha256, mode: file.mode), file: full))
            }
        }
        if unlisted > 0 {
            found.skipped.append(SkippedArtifact(path: "*", size: nil, reason: "\(unlisted) more matched files were skipped (over the limits above)"))
        }
        return found
    }

    /// Depth first, in no particular order (sorted later); descends only where a pattern may
    /// match below, never through a symbolic link.
    /// An entry whose name is not UTF-8 cannot be named in a result: when a pattern would take
    /// it (or something below it), its lossy path goes to `badNames`, to be listed as skipped.
    private static func walk(_ root: String, _ dir: [Substring], _ globs: [ArtifactGlob],
                             _ matched: inout [(path: String, kind: mode_t, size: Int64, mode: Int)],
                             _ badNames: inout [String], _ visited: inout Int, _ maxVisited: Int) {
        let dirPath = dir.isEmpty ? root : root + "/" + dir.joined(separator: "/")
        guard let handle = opendir(dirPath) else { return }
        defer { closedir(handle) }
        while visited < maxVisited, let entry = readdir(handle) {
            let raw = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            let decoded = String(validating: raw, as: UTF8.self)
            let name = decoded ?? String(decoding: raw, as: UTF8.self)
            if name == "." || name == ".." { continue }
            visited += 1
            let path = dir + [Substring(name)]
            guard decoded != nil else {
                if globs.contains(where: { $0.matches(path) || $0.mayMatchBelow(path) }), badNames.count < 10_000 {
                    badNames.append(path.joined(separator: "/"))
                }
                continue
            }
            var info = stat()
            guard lstat(dirPath + "/" + name, &info) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            if kind == S_IFDIR {
                if globs.contains(where: { $0.mayMatchBelow(path) }) {
                    walk(root, path, globs, &matched, &badNames, &visited, maxVisited)
                }
            } else if globs.contains(where: { $0.matches(path) }) {
                matched.append((path.joined(separator: "/"), kind, Int64(info.st_size), Int(info.st_mode & 0o777)))
            }
        }
    }

    /// Whether `path` is a directory itself, not a link to one.
    static func isRealDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The SHA-256 and size of the regular file at `path`, read once (not through a link).
    /// Reading stops after `maxBytes + 1` bytes: the size returned is then over `maxBytes` (and
    /// the hash is of that prefix only), which callers refuse as over their limit.
    static func hashFile(_ path: String, maxBytes: Int64 = .max) -> Result<(sha256: String, size: Int64), FileError> {
        // O_NONBLOCK: a FIFO put in place after the walk's lstat cannot block open().
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(FileError(path: path, errno: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(FileError(path: path, errno: errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(FileError(path: path, errno: EINVAL)) }
        var hasher = BlobHash.Hasher()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var size: Int64 = 0
        while size <= maxBytes {
            let left = maxBytes - size
            let want = left >= Int64(buffer.count) ? buffer.count : Int(left) + 1
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(FileError(path: path, errno: errno))
            }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            size += Int64(n)
        }
        return .success((hasher.finalize(), size))
    }
}
