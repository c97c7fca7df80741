#if canImport(Glibc)
import Glibc
#endif

/// A private temporary directory (`$TMPDIR/swarm-XXXXXX`, mode 0700) of numbered files: the
/// packed inputs of a submit, a downloaded git bundle. `remove()` deletes it; so does the
/// process being stopped by SIGINT, SIGTERM or SIGHUP while it exists (the handler unlinks the
/// numbered files and the directory, then lets the signal end the process as it would have).
/// The signal handler knows the latest one made (a CLI makes one at a time); not thread-safe.
public final class ScratchDirectory {
    public let path: String
    private var removed = false
    /// Numbered files handed out so far.
    private var count = 0

    public init() throws(TaskOptionsError) {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/swarm-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TaskOptionsError("cannot make a temporary directory in \(base): \(String(cString: strerror(errno)))")
        }
        path = cText(template)
        ScratchCleanup.arm(path)
    }

    deinit { remove() }

    /// The path of numbered file `index` (made by the caller). Files must be made in order
    /// 0, 1, 2... for the signal handler to find them.
    public func file(_ index: Int) -> String {
        count = max(count, index + 1)
        ScratchCleanup.grew(path, count: count)
        return "\(path)/\(index)"
    }

    /// Deletes the directory and its numbered files (and any `.part` a download left).
    public func remove() {
        guard !removed else { return }
        removed = true
        for index in 0..<count {
            unlink("\(path)/\(index)")
            unlink("\(path)/\(index).part")
        }
        rmdir(path)
        ScratchCleanup.disarm(path)
    }
}

/// What the signal handler needs, prepared before it is installed: the directory as C bytes
/// and how many numbered files may exist. The handler only calls unlink, rmdir, signal and
/// raise (async-signal-safe) and writes into a buffer allocated beforehand.
enum ScratchCleanup {
    nonisolated(unsafe) static var directory: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var buffer: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var length = 0
    nonisolated(unsafe) static var count = 0
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    nonisolated(unsafe) static var previous: [__sighandler_t?] = []
    nonisolated(unsafe) static var armed: String?

    static func arm(_ path: String) {
        if let armed { disarm(armed) }
        armed = path
        directory = strdup(path)
        length = path.utf8.count
        buffer = .allocate(capacity: length + 32)
        count = 0
        previous = signals.map { signal($0, handle) }
        // A signal the process ignores (SIGHUP under nohup) stays ignored.
        for (sig, action) in zip(signals, previous) where action.map({ unsafeBitCast($0, to: Int.self) }) == 1 {
            signal(sig, action)
        }
    }

    static func grew(_ path: String, count: Int) {
        if armed == path { self.count = count }
    }

    static func disarm(_ path: String) {
        guard armed == path, directory != nil else { return }
        armed = nil
        for (sig, action) in zip(signals, previous) { signal(sig, action) }
        free(directory)
        buffer?.deallocate()
        directory = nil
        buffer = nil
        count = 0
    }

    /// `DIR/N` then `DIR/N.part` for every N, the directory, then the signal's own action.
    private static let handle: @convention(c) (Int32) -> Void = { sig in
        if let directory = ScratchCleanup.directory, let buffer = ScratchCleanup.buffer {
            let n = ScratchCleanup.length
            memcpy(buffer, directory, n)
            buffer[n] = 0x2F  // "/"
            for index in 0..<ScratchCleanup.count {
                var end = ScratchCleanup.writeDecimal(index, to: buffer + n + 1)
                buffer[end] = 0
                unlink(buffer)
                for (offset, byte) in ".part".utf8.enumerated() { (buffer + end + offset).pointee = CChar(bitPattern: byte) }
                end += 5
                buffer[end] = 0
                unlink(buffer)
            }
            rmdir(directory)
        }
        signal(sig, SIG_DFL)
        raise(sig)
    }

    /// Writes `value`'s digits at `to`; returns the index just past them, from `buffer`.
    private static func writeDecimal(_ value: Int, to start: UnsafeMutablePointer<CChar>) -> Int {
        var digits = 1, rest = value
        while rest >= 10 { rest /= 10; digits += 1 }
        rest = value
        for i in stride(from: digits - 1, through: 0, by: -1) {
            start[i] = CChar(0x30 + rest % 10)
            rest /= 10
        }
        return length + 1 + digits
    }
}
