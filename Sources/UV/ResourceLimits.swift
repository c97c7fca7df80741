import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// Process limits a worker or scheduler raises at start: each supervised task holds several
/// descriptors (pipes, pidfd, log file), so 10,000 tasks need far more than the usual 1,024.
public enum ResourceLimits {
    /// Raises the open-file limit to `wanted` (or as far as allowed: the hard limit, which
    /// root may raise up to the kernel's `nr_open`). Returns the soft limit in force after.
    @discardableResult
    public static func raiseOpenFiles(to wanted: UInt64 = 1 << 20) -> UInt64 {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        if limit.rlim_cur >= wanted { return UInt64(limit.rlim_cur) }
        var raised = limit
        raised.rlim_cur = rlim_t(wanted)
        raised.rlim_max = max(limit.rlim_max, rlim_t(wanted))
        if setrlimit(resource, &raised) == 0 { return wanted }
        // Not root (or above nr_open): the hard limit is as far as we may go.
        raised.rlim_cur = limit.rlim_max
        raised.rlim_max = limit.rlim_max
        if setrlimit(resource, &raised) == 0 { return UInt64(limit.rlim_max) }
        return UInt64(limit.rlim_cur)
    }

    /// Descriptors a running task holds in its worker: stdout and stderr pipes, the pidfd
    /// that reports its exit, its log file (stdin is closed once the prompt is written).
    public static let descriptorsPerTask = 4

    /// How many tasks a process with `limit` open files can supervise at once, keeping room
    /// for its connection, journal and probes.
    public static func taskCapacity(openFileLimit limit: UInt64) -> Int {
        max(1, (Int(min(limit, 1 << 30)) - 256) / descriptorsPerTask)
    }

    /// The hard open-file limit: how far `raiseOpenFiles` can go without privileges.
    public static var openFilesHardLimit: UInt64 {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return UInt64(limit.rlim_max)
    }

    /// The soft stack limit in bytes (exec's argv + environment limit derives from it); nil
    /// when unlimited or unknown.
    public static var stackLimit: UInt64? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_STACK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return UInt64(limit.rlim_cur)
    }

    /// libuv's version, e.g. "1.44.2".
    public static var libuvVersion: String { String(cString: uv_version_string()) }
}
