#if canImport(Glibc)
import Glibc
#endif

/// Whether the worker's data dir has room for one more task, decided before the task's
/// first write. A task writes there before and after it runs (its log, its result, the run
/// journal's records, a context file): with no room for those a run would lose its result
/// on a restart and its log at once, so it does not start. It ends `spawn_failed` with a
/// reason naming the directory and the worker, and the worker stays up: the next task is
/// checked again, so tasks start again as soon as there is room.
///
/// Pure: the shell measures (`measure`), this decides, and remembers whether the last
/// check found the disk full so the worker logs each change once, not each task.
struct DiskRoom: Sendable, Equatable {
    /// What a file system has free for this process.
    struct Free: Sendable, Equatable {
        var bytes: Int64
        /// Inodes; nil when the file system does not count them (btrfs reports 0 of 0).
        var files: Int64?
    }

    /// What the last check found, and whether it changed.
    enum Change: Sendable, Equatable {
        /// Room ran out: `problem` says where.
        case filled(problem: String)
        /// Room is back.
        case freed
    }

    /// Free bytes below which no task starts: room for a result (its output tail is up to
    /// 64 KiB), the journal's records and the first part of a log, with margin.
    static let defaultReserveBytes: Int64 = 1 << 20
    /// Free inodes below which no task starts (a task makes a few files and directories).
    static let reserveFiles: Int64 = 64

    var reserveBytes: Int64 = defaultReserveBytes
    /// The last check found no room.
    private(set) var full = false

    init(reserveBytes: Int64 = defaultReserveBytes) {
        self.reserveBytes = reserveBytes
    }

    /// Why a task cannot start for lack of room in `directory` on worker `worker`, or nil.
    /// `free` nil (the file system could not be measured) is no reason: a write that fails
    /// later says why itself.
    func problem(_ free: Free?, directory: String, worker: String) -> String? {
        guard let free else { return nil }
        let need = "a task needs \(Self.bytes(reserveBytes)) to start"
        if free.bytes < reserveBytes {
            return "no space left on device in \(directory) on worker \(worker) (\(Self.bytes(max(0, free.bytes))) free; \(need))"
        }
        if let files = free.files, files < Self.reserveFiles {
            return "no space left on device in \(directory) on worker \(worker) (\(max(0, files)) free inodes; a task needs \(Self.reserveFiles))"
        }
        return nil
    }

    /// Records a check's answer; returns what changed since the last one, if anything.
    mutating func observe(_ problem: String?) -> Change? {
        switch (full, problem) {
        case (false, let problem?):
            full = true
            return .filled(problem: problem)
        case (true, nil):
            full = false
            return .freed
        default:
            return nil
        }
    }

    /// `1.5 MiB`, `12 KiB`, `512 bytes`.
    static func bytes(_ count: Int64) -> String {
        if count >= 1 << 20 {
            let tenths = count * 10 / (1 << 20)
            return tenths % 10 == 0 ? "\(tenths / 10) MiB" : "\(tenths / 10).\(tenths % 10) MiB"
        }
        if count >= 1 << 10 { return "\(count >> 10) KiB" }
        return "\(count) bytes"
    }

    /// What the file system holding `path` has free for this process: as root, the blocks
    /// kept for root count (a root worker and its tasks may write them); nil when `statvfs`
    /// fails.
    static func measure(_ path: String) -> Free? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let root = geteuid() == 0
        let blocks = root ? info.f_bfree : info.f_bavail
        let files = root ? info.f_ffree : info.f_favail
        return Free(bytes: Int64(clamping: blocks) * Int64(clamping: info.f_frsize),
                    files: info.f_files == 0 ? nil : Int64(clamping: files))
    }
}
