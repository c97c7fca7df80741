#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole file that someone else named or can replace, never more than a limit: a
/// user's `--prompt-file`, `--secret-env K=FILE`, `--file`, `cluster.json`, a token file, a
/// worktree's `.git`. `FileManager.contents(atPath:)` reads until end of file, so `/dev/zero`
/// (or a link to it) grew memory until the process was killed, and a directory or a FIFO
/// without a writer gave a vague or no answer. Here every read stops one byte past `limit`.
public enum BoundedFile {
    /// Why a file was not read, in a few words (`no such file`, `it is over 16384 bytes`).
    public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// Which files are read.
    public enum Kinds: Sendable {
        /// Anything that reads to an end: regular files, pipes and FIFOs (`<(cmd)`, `/dev/stdin`),
        /// character devices (what they give is bounded). A FIFO without a writer waits for one,
        /// as `cat` does: the user named it.
        case any
        /// Regular files only, opened without following a link and without waiting on a FIFO:
        /// for paths a task can replace (the worker must never block on what a task left).
        case regularOnly
    }

    /// The bytes of `path`, at most `limit`; throws when there are more, when it is a
    /// directory, or when it cannot be opened or read. `waiting` (with `.any`) is called once
    /// before the read blocks on a named FIFO nothing has written to yet, e.g. to tell the
    /// user why nothing happens: the wait itself is the same as without it.
    public static func read(_ path: String, limit: Int, kinds: Kinds = .any,
                            waiting: (() -> Void)? = nil) throws(Failure) -> [UInt8] {
        var flags = O_RDONLY | O_CLOEXEC
        if case .regularOnly = kinds { flags |= O_NOFOLLOW | O_NONBLOCK }
        // A FIFO's open waits for a writer: opened without waiting, the wait is a poll below.
        var before = stat()
        let fifo = waiting != nil && stat(path, &before) == 0 && before.st_mode & S_IFMT == S_IFIFO
        let fd = open(path, fifo ? flags | O_NONBLOCK : flags)
        guard fd >= 0 else { throw Failure(openFailure(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(String(cString: strerror(errno))) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: throw Failure("it is a directory")
        case S_IFREG: break
        case S_IFIFO where fifo: waitForWriter(fd, waiting)
        default: if case .regularOnly = kinds { throw Failure("it is not a regular file") }
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= limit {
            let want = min(chunk.count, limit + 1 - bytes.count)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(String(cString: strerror(errno)))
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
        throw Failure("it is over \(limit) bytes")
    }

    /// A FIFO opened without waiting: until a writer has come (poll: data or its hang-up),
    /// `waiting` once (a named FIFO only: an anonymous pipe, `<(cmd)`, has its writer), then
    /// blocking reads as a plain open gives them.
    private static func waitForWriter(_ fd: Int32, _ waiting: (() -> Void)?) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var link = [CChar](repeating: 0, count: 16)
        let anonymous = readlink("/proc/self/fd/\(fd)", &link, link.count - 1) > 0 && String(cString: link).hasPrefix("pipe:")
        if !anonymous && poll(&poller, 1, 0) == 0 {
            waiting?()
            while poll(&poller, 1, -1) < 0 && errno == EINTR {}
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    }

    private static func openFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES: "not readable (permission denied)"
        case ELOOP: "a symbolic link (not followed here) or a loop of links"
        default: String(cString: strerror(code))
        }
    }
}
