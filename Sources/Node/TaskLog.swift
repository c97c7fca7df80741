#if canImport(Glibc)
import Glibc
#endif
import SwarmProtocol

/// A task's log: timestamped lines labelled `stdout`, `stderr` or `swarm` (lifecycle).
/// Output is split into lines per stream; a partial line waits for its end (or the close),
/// and a line longer than `maxLine` is cut into several (between characters, so a cut line
/// stays valid UTF-8). Past `maxBytes` the log stops taking output (the result still carries
/// the last 64 KiB) so a chatty task cannot fill the disk. Best effort on a full disk: a
/// write the disk refuses is lost (the result's output tail and the scheduler's copy of the
/// stream still have the output), and the task goes on; the worker checks for room before
/// a task starts (`DiskRoom`), not for each line.
///
/// A run's log (`deferred`) is created only when it has something to say beyond the routine:
/// its first output, or a lifecycle line that is not routine (a warning, an extension, a kill,
/// a spawn failure). Routine lines (the start, the exit, the result) wait in memory until then
/// and are written first; a run that printed nothing and ended plainly leaves no file at all
/// (one file creation less per task: ext4's inode allocation was most of its cost).
final class TaskLog {
    private var fd: Int32 = -1
    private let path: String
    /// Routine lines held until the file is created (deferred logs only).
    private var held: [UInt8] = []
    /// Whether the file is still to create (deferred and nothing but routine lines so far).
    private(set) var deferred: Bool
    /// The file could not be created: nothing more is tried (best effort, as a full disk).
    private var failed = false
    private var stdoutPartial: [UInt8] = []
    private var stderrPartial: [UInt8] = []
    private var written = 0
    private var truncated = false
    let maxLine: Int
    let maxBytes: Int

    /// The one file of task `id`'s log in `logsDir`: where its runs write, where `swarm logs`
    /// reads (`LogFileReader`), and where a restarted worker notes how an interrupted run ended
    /// (`RunJournal.recover`), so `swarm logs --lifecycle` shows it.
    static func path(logsDir: String, id: String) -> String { "\(logsDir)/\(id).stream.txt" }

    /// Opens (creates) the file at once, or with `deferred` only when needed (see above).
    init(path: String, maxLine: Int = 16 * 1024, maxBytes: Int = 256 * 1024 * 1024, deferred: Bool = false) throws(FileError) {
        self.path = path
        self.maxLine = maxLine
        self.maxBytes = maxBytes
        self.deferred = deferred
        if !deferred { try create() }
    }

    private func create() throws(FileError) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, errno: errno) }
    }

    /// One line, whatever `text` quotes: it may carry the submitter's command (a script with
    /// newlines) or reasons from peers, escaped and cut like any peer text (`PeerText`), so
    /// it can neither forge output lines nor grow past `maxLine` characters. `routine`: a line
    /// every run has (start, exit, result), which alone does not create a deferred log.
    func lifecycle(_ text: String, at: Int64, routine: Bool = false) {
        let line = Array("\(Files.isoTimestamp(ms: at)) swarm  \(PeerText.safe(text, limit: maxLine))\n".utf8)
        if deferred && routine {
            held += line
            return
        }
        write(line)
    }

    func output(_ stream: OutputChannel, _ bytes: UnsafeRawBufferPointer, at: Int64) {
        guard !truncated, let base = bytes.baseAddress else { return }
        let prefix = Array("\(Files.isoTimestamp(ms: at)) \(stream.rawValue) ".utf8)
        let maxLine = self.maxLine
        var out: [UInt8] = []
        withPartial(stream) { partial in
            var lineStart = 0
            while let (end, cut) = Self.lineEnd(base, count: bytes.count, from: lineStart, have: partial.count, maxLine: maxLine) {
                out += prefix
                out += partial
                out += bytes[lineStart..<end]
                if cut { out.append(0x0A) }
                partial.removeAll(keepingCapacity: true)
                lineStart = end
            }
            partial += bytes[lineStart...]
        }
        if !out.isEmpty { emit(out, at: at) }
    }

    /// Where the line that starts at `from` (after `have` bytes of it from earlier chunks)
    /// ends in this chunk: past its newline, or cut (`cut`) once it holds `maxLine` bytes,
    /// but never inside a character (not before a continuation byte, unless 3 of them in a
    /// row show the bytes are not UTF-8). Nil: the line goes on in the next chunk.
    private static func lineEnd(_ base: UnsafeRawPointer, count: Int, from: Int, have: Int, maxLine: Int)
        -> (end: Int, cut: Bool)? {
        guard from < count else { return nil }
        let limit = from + max(0, maxLine - have)  // the first index at which the line may be cut
        let searched = min(count, limit)
        if let newline = memchr(base + from, 0x0A, searched - from) {
            return (base.distance(to: UnsafeRawPointer(newline)) + 1, false)
        }
        var i = limit
        while i < count {
            let byte = base.load(fromByteOffset: i, as: UInt8.self)
            if byte == 0x0A { return (i + 1, false) }
            if !UTF8Carry.isContinuation(byte) || have + (i - from) >= maxLine + 3 { return (i, true) }
            i += 1
        }
        return nil
    }

    /// Writes what is left of a stream's last line.
    func flush(_ stream: OutputChannel, at: Int64) {
        var line: [UInt8] = []
        withPartial(stream) { partial in
            line = partial
            partial = []
        }
        guard !line.isEmpty, !truncated else { return }
        emit(Array("\(Files.isoTimestamp(ms: at)) \(stream.rawValue) ".utf8) + line + [0x0A], at: at)
    }

    /// Closes the file; a deferred log never created stays so (its routine lines dropped).
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        deferred = false
        failed = true
        held = []
    }

    private func withPartial(_ stream: OutputChannel, _ body: (inout [UInt8]) -> Void) {
        switch stream {
        case .stdout: body(&stdoutPartial)
        case .stderr: body(&stderrPartial)
        }
    }

    /// Output lines, counted against `maxBytes`.
    private func emit(_ bytes: [UInt8], at: Int64) {
        guard !truncated else { return }
        if written + bytes.count > maxBytes {
            truncated = true
            lifecycle("log truncated: output beyond \(maxBytes) bytes is not logged (the result keeps the last 64 KiB)", at: at)
            return
        }
        written += bytes.count
        write(bytes)
    }

    private func write(_ bytes: [UInt8]) {
        if fd < 0 {
            guard deferred, !failed else { return }
            deferred = false
            do { try create() } catch {
                failed = true
                return
            }
            let held = self.held
            self.held = []
            if !held.isEmpty { write(held) }
        }
        bytes.withUnsafeBytes { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
