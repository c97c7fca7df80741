/// What Linux `execve` accepts, and the share of it a task may claim at submit.
///
/// The kernel (fs/exec.c) refuses with E2BIG when one argument or environment string is over
/// `MAX_ARG_STRLEN` (131,072 bytes counting its NUL), or when all argv and envp strings (with
/// their NULs, plus the program's path) and one 8-byte pointer per string are over the limit
/// it derives from the stack rlimit: a quarter of `RLIMIT_STACK`, at most 6 MiB (3/4 of the
/// kernel's 8 MiB `_STK_LIM`), at least 128 KiB. With the usual 8 MiB stack that is 2 MiB.
public enum ExecLimits {
    /// `MAX_ARG_STRLEN`: the longest single argument or `KEY=VALUE` string, its NUL included.
    public static let maxStringBytes = 131_072
    /// One `char *` in argv or envp.
    public static let pointerBytes = 8
    /// The limit on argv + envp with the usual 8 MiB stack rlimit.
    public static let typicalLimit = 2 * 1024 * 1024
    /// What a task's own command (or runtime prompt in argv) and environment may take at
    /// submit, counted like the kernel does: half of `typicalLimit`. The other 1 MiB is left
    /// for what the worker adds: its own inherited environment, the runtime's argv template
    /// and env, and the `SWARM_*` variables (under 2 KiB). The worker checks the real total
    /// against its real limit before it spawns.
    public static let taskBudget = 1024 * 1024
    /// Kept for the program's resolved path, which the kernel copies too (`PATH_MAX`).
    public static let pathBytes = 4096

    /// What one string costs in exec: its bytes, its NUL and its pointer.
    @inline(__always)
    public static func cost(_ s: String) -> Int { s.utf8.count + 1 + pointerBytes }

    /// What one environment variable costs in exec (`KEY=VALUE`, NUL, pointer).
    @inline(__always)
    public static func cost(key: String, value: String) -> Int { key.utf8.count + 1 + value.utf8.count + 1 + pointerBytes }

    /// The kernel's limit on argv + envp for a stack rlimit of `stackBytes` (nil: unlimited).
    public static func limit(stackRlimit stackBytes: UInt64?) -> Int {
        let cap = 6 * 1024 * 1024
        guard let stackBytes else { return cap }
        return max(128 * 1024, Int(min(UInt64(cap), stackBytes / 4)))
    }

    /// Why exec would refuse `argv` with `environment` (`KEY=VALUE` strings) under `limit`,
    /// naming the sizes; nil when it fits (with `pathBytes` kept for the program's path).
    public static func problem(argv: [String], environment: [String], limit: Int) -> String? {
        var total = pathBytes
        for (index, argument) in argv.enumerated() {
            if argument.utf8.contains(0) { return "argument \(index) contains a NUL byte (exec would cut it there)" }
            if argument.utf8.count + 1 > maxStringBytes {
                return "argument \(index) is \(argument.utf8.count) bytes; exec takes at most \(maxStringBytes - 1) per argument"
            }
            total += cost(argument)
        }
        var environmentBytes = 0
        for entry in environment {
            if entry.utf8.count + 1 > maxStringBytes {
                let name = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                return "environment variable \(name.prefix(64)) is \(entry.utf8.count) bytes; exec takes at most \(maxStringBytes - 1) per variable"
            }
            environmentBytes += cost(entry)
        }
        if total + environmentBytes > limit {
            return "argv (\(argv.count) strings, \(total - pathBytes) bytes) and environment (\(environment.count) variables, \(environmentBytes) bytes), with 8 bytes per pointer and \(pathBytes) for the program's path, come to \(total + environmentBytes) bytes; exec's limit here is \(limit) (a quarter of the stack rlimit)"
        }
        return nil
    }
}
