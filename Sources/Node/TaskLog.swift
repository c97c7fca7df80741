#if canImport(Glibc)
import Glibc
#endif

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
