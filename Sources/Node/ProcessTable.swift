import Foundation
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Reads Linux's `/proc` for what a restarted worker must know about processes it did not
/// spawn itself: whether a task's process group from before is still there, and whether a
/// pid still names the same process (start time and boot id guard against pid reuse).
enum ProcessTable {
    struct Stat: Equatable {
        var pid: Int32
        /// R, S, D, Z, T, ... (`Z`: exited, waiting to be reaped; counts as gone).
        var state: Character
        var processGroup: Int32
        var session: Int32
        /// Field 22: clock ticks after boot at which the process started.
        var startTime: UInt64

        var isGone: Bool { state == "Z" || state == "X" }
    }

    /// This boot's id: a pid and start time from another boot name nothing alive now.
    /// This boot's id; read once (it cannot change while we run), not once per task.
    static func bootId() -> String { currentBootId }

    private static let currentBootId: String = {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// `CLOCK_BOOTTIME` in ms: the clock `/proc/PID/stat`'s start time counts (in ticks).
    static func bootMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Clock ticks per second of `/proc`'s start times (`_SC_CLK_TCK`, 100 on Linux).
    static let ticksPerSecond: Int64 = max(1, Int64(sysconf(Int32(_SC_CLK_TCK))))

    /// Whether `process` started within `fromMs...toMs` (`bootMs` readings). Its start time
    /// is truncated to a tick, so it may read up to one tick before the real start.
    static func startedWithin(_ process: Stat, fromMs: Int64, toMs: Int64) -> Bool {
        let tickMs = max(1, 1000 / ticksPerSecond)
        let startMs = Int64(clamping: process.startTime) * 1000 / ticksPerSecond
        return startMs > fromMs - tickMs && startMs <= toMs
    }

    /// One open and read of `/proc/PID/stat` (it is read for every task started: no
    /// Foundation file reading).
    static func stat(_ pid: Int32) -> Stat? {
        guard pid > 0 else { return nil }
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        var count = 0
        while count < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            count += n
        }
        guard count > 0 else { return nil }
        return buffer.withUnsafeBufferPointer { parse(UnsafeBufferPointer(rebasing: $0[..<count])) }
    }

    /// `parse(_:)` on the bytes as read, without making a string of them.
    static func parse(_ line: UnsafeBufferPointer<UInt8>) -> Stat? {
        guard let open = line.firstIndex(of: UInt8(ascii: "(")),
              let close = line.lastIndex(of: UInt8(ascii: ")")), open < close else { return nil }
        func number<T: FixedWidthInteger>(_ range: Range<Int>, as type: T.Type) -> T? {
            guard !range.isEmpty else { return nil }
            var value: T = 0
            for i in range {
                let c = line[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(T(c - 0x30))
                guard !o1 && !o2 else { return nil }
                value = a
            }
            return value
        }
        var pidStart = 0, pidEnd = open
        while pidStart < pidEnd, line[pidStart] == 0x20 { pidStart += 1 }
        while pidEnd > pidStart, line[pidEnd - 1] == 0x20 { pidEnd -= 1 }
        guard let pid = number(pidStart..<pidEnd, as: Int32.self) else { return nil }
        // Fields after the command name, split on spaces; fields[0] is field 3 (state).
        var fields: [Range<Int>] = []
        var i = close + 1
        while i < line.count, fields.count < 20 {
            while i < line.count, line[i] == 0x20 || line[i] == 0x0A { i += 1 }
            let start = i
            while i < line.count, line[i] != 0x20, line[i] != 0x0A { i += 1 }
            if i > start { fields.append(start..<i) }
        }
        guard fields.count >= 20, fields[0].count == 1, let group = number(fields[2], as: Int32.self),
              let session = number(fields[3], as: Int32.self), let start = number(fields[19], as: UInt64.self) else {
            return nil
        }
        return Stat(pid: pid, state: Character(Unicode.Scalar(line[fields[0].lowerBound])), processGroup: group,
                    session: session, startTime: start)
    }

    /// Parses a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
    /// hold spaces and parentheses itself, so fields are counted after the last ')'.
    static func parse(_ line: String) -> Stat? {
        var line = line
        return line.withUTF8 { parse($0) }
    }

    /// Whether some process has its current directory at or below `dir` (resolved: `/proc`
    /// shows real paths). One `readlink` per process we may read (about 2 µs each: 20 ms at
    /// 10,000 processes); processes of other users we cannot read do not count.
    static func anyProcessWorks(inside dir: String) -> Bool {
        guard let resolved = realpath(dir, nil) else { return false }
        let root = String(cString: resolved)
        free(resolved)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
        var buffer = [CChar](repeating: 0, count: 4096)
        for entry in entries where entry.first?.isNumber == true {
            let n = readlink("/proc/\(entry)/cwd", &buffer, buffer.count - 1)
            guard n > 0 else { continue }
            let cwd = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if cwd == root || cwd.hasPrefix(root + "/") { return true }
        }
        return false
    }

    /// Live (not zombie) processes in process group `group`.
    static func members(ofGroup group: Int32) -> [Int32] {
        guard group > 0, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let stat = stat(pid) else { return false }
            return stat.processGroup == group && !stat.isGone
        }
    }

    /// Signals every process group in `groups`, SIGTERM first and SIGKILL to what is left
    /// after `graceMs`; returns once they are all gone (or SIGKILL had a second to work).
    /// Blocks the calling thread: meant for a worker's start, before it serves anything.
    static func killGroups(_ groups: [Int32], graceMs: UInt64) {
        var left = groups.filter { !members(ofGroup: $0).isEmpty }
        for group in left { kill(-group, SIGTERM) }
        for (signal, waitMs) in [(SIGKILL, graceMs), (0, UInt64(1_000))] {
            let deadline = monotonicMillis() + Int64(waitMs)
            while !left.isEmpty && monotonicMillis() < deadline {
                usleep(20_000)
                left = left.filter { !members(ofGroup: $0).isEmpty }
            }
            if signal != 0 { for group in left { kill(-group, signal) } }
        }
    }
}
