import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The spool directory on disk: `requests/`, `processing/`, `results/`, `done/`, `rejected/`
/// and the lock `.spool.lock`. Blocking system calls on local files; every move keeps what
/// was there (a name already taken gets `~2`, `~3`, ...: nothing is overwritten).
struct SpoolFiles {
    let root: String
    var requests: String { root + "/requests" }
    var processing: String { root + "/processing" }
    var results: String { root + "/results" }
    var done: String { root + "/done" }
    var rejected: String { root + "/rejected" }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ what: String, _ code: Int32 = errno) {
            description = "\(what): \(String(cString: strerror(code)))"
        }
        init(message: String) { description = message }
    }

    /// Creates the directories and takes the lock (held until the process ends): one spool
    /// per directory, since claims by rename are only exclusive among cooperating spools.
    func prepare() throws(Failure) -> Int32 {
        for dir in [root, requests, processing, results, done, rejected] {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw Failure("cannot create \(dir)") }
        }
        let fd = open(root + "/.spool.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw Failure("cannot open \(root)/.spool.lock") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw Failure(message: "another swarm spool serves \(root) (it holds \(root)/.spool.lock)")
        }
        return fd
    }

    /// A regular file's stamp; nil when absent or anything else (links are not followed).
    static func stamp(_ path: String) -> FileStamp? {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return FileStamp(size: Int64(st.st_size), mtimeNs: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Regular files of `dir` (at most `max`; `complete` false when there were more).
    static func list(_ dir: String, max: Int) -> (files: [String: FileStamp], complete: Bool) {
        guard let handle = opendir(dir) else { return ([:], false) }
        defer { closedir(handle) }
        var files: [String: FileStamp] = [:]
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." || name.contains("\u{FFFD}") { continue }
            if files.count >= max { return (files, false) }
            if let stamp = stamp(dir + "/" + name) { files[name] = stamp }
        }
        return (files, true)
    }

    /// Renames `from` into `dir` as `name`, or `name~N` when taken; returns the name used.
    static func move(_ from: String, into dir: String, as name: String) throws(Failure) -> String {
        var chosen = name
        var n = 1
        while exists(dir + "/" + chosen) {
            n += 1
            if n > 10_000 { throw Failure(message: "no free name for \(name) in \(dir)") }
            chosen = "\(name)~\(n)"
        }
        if rename(from, dir + "/" + chosen) != 0 { throw Failure("cannot move \(from) to \(dir)") }
        return chosen
    }

    /// The file's bytes when it has at most `max` (nil: bigger).
    static func read(_ path: String, max: Int) throws(Failure) -> [UInt8]? {
        // Never waits in the open (a FIFO swapped in after the caller's `stamp` would block
        // the spool until a writer came); anything but a regular file fails.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 { throw Failure("cannot open \(path)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw Failure(message: "cannot read \(path): not a regular file")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Failure("cannot read \(path)") }
            if n == 0 { return bytes }
            bytes += buffer.prefix(n)
            if bytes.count > max { return nil }
        }
    }

    /// Writes `bytes` as `dir/name` atomically and durably: a temporary file in `dir`,
    /// fsync, then `link` (which fails when `name` exists: nothing is overwritten) or, with
    /// `replace`, `rename`; then the directory is fsynced. Returns false when `name` existed.
    static func writeAtomically(_ bytes: [UInt8], dir: String, name: String, replace: Bool = false) throws(Failure) -> Bool {
        let temp = "\(dir)/.\(name).\(getpid()).tmp"
        // The temporary name is guessable (the pid): whatever sits there is removed and the
        // file made anew, so a link planted there is never written through.
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0 { throw Failure("cannot create \(temp)") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { let e = errno; close(fd); unlink(temp); throw Failure("cannot write \(temp)", e) }
            offset += n
        }
        if fsync(fd) != 0 { let e = errno; close(fd); unlink(temp); throw Failure("cannot fsync \(temp)", e) }
        close(fd)
        defer { unlink(temp) }
        if replace {
            if rename(temp, "\(dir)/\(name)") != 0 { throw Failure("cannot rename \(temp)") }
        } else if link(temp, "\(dir)/\(name)") != 0 {
            if errno == EEXIST { return false }
            throw Failure("cannot link \(dir)/\(name)")
        }
        syncDirectory(dir)
        return true
    }

    /// Makes renames and new names in `dir` durable.
    static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
