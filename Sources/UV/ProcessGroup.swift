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
    /// group leader's own exit was handled by its `UVProcess` (which reaps the leader through
    /// its pidfd; this must not steal its status). Returns how many were reaped.
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

    /// Marks every inherited descriptor from 3 up close-on-exec, so tasks do not inherit what
    /// this process was given (a parent's sockets or pipes would keep its reader waiting for
    /// as long as any task runs). Call at the start of a worker process, before any spawn.
    public static func closeInheritedDescriptorsOnExec() {
        let limit = min(Int32(sysconf(Int32(_SC_OPEN_MAX))), 65_536)
        guard limit > 3 else { return }
        for fd in 3..<limit {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
