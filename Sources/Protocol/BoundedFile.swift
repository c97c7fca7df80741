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
    /// directory, or when it cannot be opened or read.
    public static func read(_ path: String, limit: Int, kinds: Kinds = .any) throws(Failure) -> [UInt8] {
        var flags = O_RDONLY | O_CLOEXEC
        if case .regularOnly = kinds { flags |= O_NOFOLLOW | O_NONBLOCK }
        let fd = open(path, flags)
        guard fd >= 0 else { throw Failure(openFailure(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(String(cString: strerror(errno))) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: throw Failure("it is a directory")
        case S_IFREG: break
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

    private static func openFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES: "not readable (permission denied)"
        case ELOOP: "a symbolic link (not followed here) or a loop of links"
        default: String(cString: strerror(code))
        }
    }
}
