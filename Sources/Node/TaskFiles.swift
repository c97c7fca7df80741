import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A finished task's files on a worker (its log, the work directory the worker made for it,
/// and an older worker's result file), measured and removed for `WorkerRetention`. The
/// blocking parts (`measure`, `removeTrash`) run off the loop. Any of them may be missing: a
/// run that printed nothing has no log, results are in the run journal since.
struct TaskFiles: Sendable {
    let id: String
    let log: String
    /// `results/{id}.json`, written by older workers (this one keeps results in its journal).
    let result: String
    /// `{workRoot}/{id}` when the worker made it (see `WorkerAgent.ownsWorkDir`), else nil.
    let workDir: String?
    /// The mark that says the worker made `workDir` (`{dataDir}/owned/{id}`).
    let mark: String

    /// Entries a walk counts at most: past it the figure is a lower bound (a task that made a
    /// million files is still counted as large, and the walk stays bounded).
    static let maxWalkEntries = 1_000_000

    /// Disk bytes the files hold (allocated blocks), the work directory walked without
    /// following links or leaving its file system.
    func measure() -> Int64 {
        var bytes = Self.allocated(log) + Self.allocated(result)
        if let workDir { bytes += Self.treeBytes(workDir) }
        return bytes
    }

    /// When the files last changed (unix ms, the newest of them), nil when none is there:
    /// a restarted worker dates a task it finds by this, once.
    var modifiedMs: Int64? {
        var newest: Int64?
        for path in [log, result] + (workDir.map { [$0] } ?? []) {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let ms = Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
            newest = max(newest ?? ms, ms)
        }
        return newest
    }

    static func allocated(_ path: String) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        return Int64(info.st_blocks) * 512
    }

    /// The allocated bytes of the tree at `root` (one file system, links not followed, at
    /// most `maxWalkEntries` entries).
    static func treeBytes(_ root: String) -> Int64 {
        var rootInfo = stat()
        guard lstat(root, &rootInfo) == 0 else { return 0 }
        var total = Int64(rootInfo.st_blocks) * 512
        guard rootInfo.st_mode & S_IFMT == S_IFDIR else { return total }
        var stack = [root]
        var seen = 0
        while let dir = stack.popLast(), seen < maxWalkEntries {
            seen += entries(of: dir, limit: maxWalkEntries - seen) { path, _ in
                var info = stat()
                guard lstat(path, &info) == 0 else { return }
                total += Int64(info.st_blocks) * 512
                if info.st_mode & S_IFMT == S_IFDIR && info.st_dev == rootInfo.st_dev { stack.append(path) }
            }
        }
        return total
    }

    /// Removes the log, the result and the mark, and moves the work directory into `trash`
    /// (a rename: instant, so a new run of the same id finds the place free). Runs on the
    /// loop; `removeTrash` deletes the moved trees later, off it.
    func discard(trash: String, serial: Int) {
        unlink(log)
        unlink(result)
        if let workDir {
            guard Self.trashReady(trash) else { return }
            // Only a real directory is moved: a task that replaced it by a link keeps its link
            // target untouched (the link itself goes).
            var info = stat()
            if lstat(workDir, &info) == 0 {
                if info.st_mode & S_IFMT == S_IFDIR {
                    rename(workDir, "\(trash)/\(id).\(serial)")
                } else {
                    unlink(workDir)
                }
            }
        }
        unlink(mark)
    }

    /// Whether `trash` is a real directory (made now if missing). Anything else there (a link
    /// someone planted, a file) is removed first, never followed: emptying the trash through
    /// a link would delete what it points to.
    static func trashReady(_ trash: String) -> Bool {
        var info = stat()
        if lstat(trash, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR { return true }
            guard unlink(trash) == 0 else { return false }
        }
        return mkdir(trash, 0o700) == 0 || errno == EEXIST && isRealDirectory(trash)
    }

    static func isRealDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Deletes everything in `trash` (off the loop); returns what it could not delete. What
    /// resists (a directory a task made unreadable, as a user that is not root) is made
    /// writable and tried again; a tree deeper than PATH_MAX goes through `rm -rf`, which
    /// walks it by directory descriptors. An immutable file stays, and is reported.
    static func removeTrash(_ trash: String) -> [String] {
        guard isRealDirectory(trash) else {
            unlink(trash)  // a link or a file in its place: removed, never followed
            return []
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: trash) else { return [] }
        var left: [String] = []
        for name in names {
            let path = trash + "/" + name
            if (try? FileManager.default.removeItem(atPath: path)) != nil { continue }
            makeWritable(path)
            if (try? FileManager.default.removeItem(atPath: path)) != nil { continue }
            removeWithRm(path)
            var info = stat()
            if lstat(path, &info) == 0 { left.append(name) }
        }
        return left
    }

    /// `rm -rf --one-file-system -- path`, waited for (off the loop).
    private static func removeWithRm(_ path: String) {
        let args = ["rm", "-rf", "--one-file-system", "--", path]
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for arg in cargs { free(arg) } }
        var pid: pid_t = 0
        guard posix_spawnp(&pid, "rm", nil, nil, &cargs, environ) == 0 else { return }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    private static func makeWritable(_ root: String) {
        var stack = [root]
        var seen = 0
        while let dir = stack.popLast(), seen < maxWalkEntries {
            var info = stat()
            guard lstat(dir, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
            chmod(dir, 0o700)
            seen += entries(of: dir, limit: maxWalkEntries - seen) { path, type in
                if type == UInt8(DT_DIR) { stack.append(path) }
            }
        }
    }

    /// Calls `body` with the path and `d_type` of at most `limit` entries of `dir` (not `.`
    /// nor `..`); returns how many it saw.
    private static func entries(of dir: String, limit: Int, _ body: (String, UInt8) -> Void) -> Int {
        guard limit > 0, let handle = opendir(dir) else { return 0 }
        defer { closedir(handle) }
        var seen = 0
        while seen < limit, let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            seen += 1
            body(dir + "/" + name, entry.pointee.d_type)
        }
        return seen
    }
}
