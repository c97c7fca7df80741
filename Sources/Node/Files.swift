#if canImport(Glibc)
import Glibc
#endif

/// Small synchronous file helpers. They run on the loop thread: local appends and renames
/// of a few KiB cost microseconds, far below a spawn (~1 ms).
public enum Files {
    /// `mkdir -p`. The directory itself is tried first: when its parent exists (a task's work
    /// dir under the work root) that is one `mkdir`, not one per path component.
    public static func makeDirectories(_ path: String) throws(FileError) {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        guard errno == ENOENT else { throw FileError(path: path, errno: errno) }
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw FileError(path: current, errno: errno)
            }
        }
    }

    /// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: readers
    /// see the old file or the whole new one, never a part. `mode` (e.g. 0o755 for a script
    /// to execute) is set whatever the umask; without it the file is 0644 less the umask.
    ///
    /// The descriptor is close-on-exec (Foundation's writers are not): a child spawned by
    /// another thread while the file is open must not keep it open for writing, or exec-ing
    /// the file fails ETXTBSY for as long as that child lives.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t? = nil) throws(FileError) {
        let temp = "\(path).tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: temp, errno: errno) }
        if let mode, fchmod(fd, mode) != 0 {
            let e = errno
            close(fd)
            unlink(temp)
            throw FileError(path: temp, errno: e)
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                unlink(temp)
                throw FileError(path: temp, errno: e)
            }
            offset += n
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw FileError(path: path, errno: e)
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func isoTimestamp(ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }
}

public struct FileError: Error, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    public var description: String { "\(path): \(String(cString: strerror(errno)))" }
}
