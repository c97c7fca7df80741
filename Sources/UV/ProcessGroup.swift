import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// Process-group housekeeping that libuv does not do: signalling a whole group, reaping the
/// group's orphans that were re-parented to us, and telling whether anything of it is left.
public enum ProcessGroup {
    /// Makes this process a child subreaper: orphaned descendants of our tasks are re-parented
    /// to us instead of PID 1, so we can reap them (PID 1 in a container often does not).
    /// Returns false if the kernel refused.
    @discardableResult
    public static func becomeSubreaper() -> Bool { swarm_set_child_subreaper() == 0 }

    /// `kill(-pgid, signal)`; false when no process of the group exists.
    @discardableResult
    public static func signal(_ pgid: Int32, _ signal: Int32) -> Bool {
        guard pgid > 1 else { return false }
        return kill(-pgid, signal) == 0
    }

    /// Reaps every exited child of ours in the group, without blocking. Call only after the
    /// group leader's own exit was handled by its `UVProcess` (libuv reaps the leader; this
    /// must not steal its status). Returns how many were reaped.
    @discardableResult
    public static func reapExited(_ pgid: Int32) -> Int {
        guard pgid > 1 else { return 0 }
        var count = 0
        var status: Int32 = 0
        while count < 100_000 {
            let pid = waitpid(-pgid, &status, WNOHANG)
            if pid <= 0 { break }
            count += 1
        }
        return count
    }

    /// True when no process of the group exists, running or zombie.
    public static func isEmpty(_ pgid: Int32) -> Bool {
        guard pgid > 1 else { return true }
        return kill(-pgid, 0) != 0 && errno == ESRCH
    }
}
