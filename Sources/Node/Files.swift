#if canImport(Glibc)
import Glibc
#endif

/// Small synchronous file helpers. They run on the loop thread: local appends and renames
/// of a few KiB cost microseconds, far below a spawn (~1 ms).
public enum Files {
    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw FileError(path: current, errno: errno)
            }
        }
    }

    /// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: readers
    /// see the old file or the whole new one, never a part.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileError) {
        let temp = "\(path).tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: temp, errno: errno) }
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

/// A task's log: timestamped lines labelled `stdout`, `stderr` or `swarm` (lifecycle).
/// Output is split into lines per stream; a partial line waits for its end (or the close),
/// and a line longer than `maxLine` is cut into several. Past `maxBytes` the log stops taking
/// output (the result still carries the last 64 KiB) so a chatty task cannot fill the disk.
final class TaskLog {
    private var fd: Int32
    private var stdoutPartial: [UInt8] = []
    private var stderrPartial: [UInt8] = []
    private var written = 0
    private var truncated = false
    let maxLine: Int
    let maxBytes: Int

    init(path: String, maxLine: Int = 16 * 1024, maxBytes: Int = 256 * 1024 * 1024) throws(FileError) {
        self.maxLine = maxLine
        self.maxBytes = maxBytes
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, errno: errno) }
    }

    func lifecycle(_ text: String, nowMs: Int64) {
        write(Array("\(Files.isoTimestamp(ms: nowMs)) swarm  \(text)\n".utf8))
    }

    func output(_ stream: OutputChannel, _ bytes: UnsafeRawBufferPointer, nowMs: Int64) {
        guard !truncated else { return }
        let prefix = Array("\(Files.isoTimestamp(ms: nowMs)) \(stream.rawValue) ".utf8)
        var out: [UInt8] = []
        withPartial(stream) { partial in
            var lineStart = 0
            for i in 0..<bytes.count where bytes[i] == 0x0A || partial.count + (i - lineStart) >= maxLine {
                let end = bytes[i] == 0x0A ? i + 1 : i
                out += prefix
                out += partial
                out += bytes[lineStart..<end]
                if bytes[i] != 0x0A { out.append(0x0A) }
                partial.removeAll(keepingCapacity: true)
                lineStart = end
            }
            partial += bytes[lineStart...]
        }
        if !out.isEmpty { emit(out, nowMs: nowMs) }
    }

    /// Writes what is left of a stream's last line.
    func flush(_ stream: OutputChannel, nowMs: Int64) {
        var line: [UInt8] = []
        withPartial(stream) { partial in
            line = partial
            partial = []
        }
        guard !line.isEmpty, !truncated else { return }
        emit(Array("\(Files.isoTimestamp(ms: nowMs)) \(stream.rawValue) ".utf8) + line + [0x0A], nowMs: nowMs)
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func withPartial(_ stream: OutputChannel, _ body: (inout [UInt8]) -> Void) {
        switch stream {
        case .stdout: body(&stdoutPartial)
        case .stderr: body(&stderrPartial)
        }
    }

    /// Output lines, counted against `maxBytes`.
    private func emit(_ bytes: [UInt8], nowMs: Int64) {
        guard !truncated else { return }
        if written + bytes.count > maxBytes {
            truncated = true
            lifecycle("log truncated: output beyond \(maxBytes) bytes is not logged (the result keeps the last 64 KiB)", nowMs: nowMs)
            return
        }
        written += bytes.count
        write(bytes)
    }

    private func write(_ bytes: [UInt8]) {
        guard fd >= 0 else { return }
        bytes.withUnsafeBytes { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
