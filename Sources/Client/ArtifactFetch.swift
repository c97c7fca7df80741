import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Why `swarm fetch` stops: one line, and the exit status. 1: nothing (or not everything) to
/// fetch (the task has not ended, has no artifacts, made no commits, some were skipped);
/// 2: a failure (unknown PATH, a path that would escape DIR, a transfer, the disk, git).
public struct FetchError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public let status: Int32
    public init(_ description: String, status: Int32 = 2) { self.description = description; self.status = status }
}

/// `swarm fetch ID [-o DIR] [PATH...]` and `--git`: which artifacts of a task go where, every
/// path checked before anything is written, then the downloads (`BlobTransport`).
public enum ArtifactFetch {
    /// Artifact `artifact` written to `target` (`DIR/path`).
    public struct Item: Equatable, Sendable {
        public var artifact: ArtifactRef
        public var target: String
    }

    /// The artifacts to fetch into `dir`: every uploaded one, or those named in `paths` (in
    /// that order, each once). Refuses, before anything is written: an unknown PATH, a task
    /// with nothing uploaded, a path that is not a safe relative path (it would land outside
    /// `dir`), a malformed hash.
    public static func plan(_ info: TaskInfo, paths: [String], into dir: String) throws(FetchError) -> [Item] {
        let uploaded = info.artifacts ?? [], skipped = info.skippedArtifacts ?? []
        var chosen: [ArtifactRef] = []
        if paths.isEmpty {
            if uploaded.isEmpty { throw nothingUploaded(info) }
            chosen = uploaded
        } else {
            var seen = Set<String>()
            for path in paths where seen.insert(path).inserted {
                if let artifact = uploaded.first(where: { $0.path == path }) { chosen.append(artifact); continue }
                if let skip = skipped.first(where: { $0.path == path }) {
                    throw FetchError("artifact \(shown(path)) of task \(info.id) was not uploaded: \(PeerText.safe(skip.reason))")
                }
                throw FetchError("task \(info.id) has no artifact \(shown(path))\(uploaded.isEmpty ? "" : " (see 'swarm status \(info.id)')")")
            }
        }
        return try chosen.map { (artifact) throws(FetchError) -> Item in
            if let problem = TaskSpec.relativePathProblem(artifact.path) {
                throw FetchError("refusing artifact \(shown(artifact.path)): it would be written outside \(dir) (\(problem))")
            }
            if let problem = BlobHash.problem(with: artifact.sha256) { throw FetchError("artifact \(shown(artifact.path)): \(problem)") }
            return Item(artifact: artifact, target: dir == "/" ? "/" + artifact.path : dir + "/" + artifact.path)
        }
    }

    /// The line printed for a fetched item. The path is the task's file name, any bytes but
    /// `/` and NUL: control characters are escaped, so a name cannot forge lines or send
    /// escape sequences to the terminal.
    public static func fetchedLine(_ item: Item) -> String {
        "\(PeerText.safe(item.target, limit: 2 * BlobLimits.maxPathBytes))  \(item.artifact.size) bytes  sha256 \(item.artifact.sha256.prefix(12))"
    }

    /// Why there is nothing to fetch (status 1).
    static func nothingUploaded(_ info: TaskInfo) -> FetchError {
        if info.state == .queued || info.state == .running {
            return FetchError("task \(info.id) has not ended (\(info.state.rawValue)): its artifacts are uploaded when it ends", status: 1)
        }
        if let first = info.skippedArtifacts?.first {
            let count = info.skippedArtifacts!.count
            return FetchError("task \(info.id) has no uploaded artifacts: \(count) \(count == 1 ? "was" : "were") skipped (\(shown(first.path)): \(PeerText.safe(first.reason)))", status: 1)
        }
        return FetchError("task \(info.id) has no artifacts", status: 1)
    }

    /// Downloads every item (parents made inside `dir`, see `makeParents`), calling `done`
    /// after each. Stops at the first failure.
    public static func fetch(_ items: [Item], into dir: String, via transport: BlobTransport,
                             done: (Item) -> Void) throws(FetchError) {
        try makeDirectory(dir)
        for item in items {
            try makeParents(of: item.artifact.path, in: dir)
            // A link at the download's temporary name would be written through: take it away.
            var st = stat()
            if lstat(item.target + ".part", &st) == 0 && st.st_mode & S_IFMT == S_IFLNK { unlink(item.target + ".part") }
            if lstat(item.target, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR {
                throw FetchError("cannot write artifact \(shown(item.artifact.path)): \(item.target) is a directory")
            }
            do {
                try transport.downloadBlob(item.artifact.sha256, size: item.artifact.size, to: item.target)
            } catch {
                throw FetchError("artifact \(shown(item.artifact.path)): \(error.description)")
            }
            // The worker's permission bits (a built binary stays executable); never set-id bits.
            if let mode = item.artifact.mode { chmod(item.target, mode_t(mode & 0o777)) }
            done(item)
        }
    }

    /// Makes the directories of `relative`'s parent inside `dir`, one component at a time,
    /// refusing a component that exists and is a link or not a directory: a link there (left
    /// by an earlier fetch, or planted) could lead the write out of `dir`.
    public static func makeParents(of relative: String, in dir: String) throws(FetchError) {
        var current = dir
        for component in relative.split(separator: "/").dropLast() {
            current += "/" + component
            var st = stat()
            if lstat(current, &st) == 0 {
                if st.st_mode & S_IFMT == S_IFLNK {
                    throw FetchError("refusing to write artifact \(shown(relative)): \(current) is a symbolic link (it could lead out of \(dir))")
                }
                if st.st_mode & S_IFMT != S_IFDIR {
                    throw FetchError("cannot write artifact \(shown(relative)): \(current) is not a directory")
                }
                continue
            }
            if mkdir(current, 0o777) != 0 && errno != EEXIST {
                throw FetchError("cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Makes `dir` (and its parents) when missing.
    static func makeDirectory(_ dir: String) throws(FetchError) {
        var st = stat()
        if stat(dir, &st) == 0 {
            if st.st_mode & S_IFMT != S_IFDIR { throw FetchError("\(dir) is not a directory") }
            return
        }
        var current = dir.hasPrefix("/") ? "" : "."
        for component in dir.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o777) != 0 && errno != EEXIST {
                throw FetchError("cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// A `repo` task's bundle artifact, or why there is none (status 1 when the task made no
    /// commits or has not ended; 2 when it should have one).
    public static func bundle(of info: TaskInfo) throws(FetchError) -> ArtifactRef {
        if let bundle = info.artifacts?.first(where: { $0.kind == "gitBundle" }) {
            if let problem = BlobHash.problem(with: bundle.sha256) { throw FetchError("git bundle of task \(info.id): \(problem)") }
            return bundle
        }
        if info.state == .queued || info.state == .running {
            throw FetchError("task \(info.id) has not ended (\(info.state.rawValue)): its branch comes back when it ends", status: 1)
        }
        guard let git = info.git else {
            throw FetchError("task \(info.id) has no git branch (it was not submitted with --repo, or its worktree could not be made)", status: 1)
        }
        if git.commits == 0 {
            throw FetchError("task \(info.id) made no commits (\(git.branch) stays at \(git.base.prefix(12)))", status: 1)
        }
        if let skip = info.skippedArtifacts?.first(where: { $0.path.hasSuffix(".bundle") }) {
            throw FetchError("the git bundle of task \(info.id) was not uploaded: \(PeerText.safe(skip.reason))")
        }
        throw FetchError("task \(info.id) made \(git.commits) commits but has no git bundle")
    }

    static func shown(_ text: String) -> String { "'\(PeerText.safe(text, limit: 200))'" }
}
