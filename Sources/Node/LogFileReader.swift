import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Answers the scheduler's `readLog`: one chunk of a task's log file (`DATADIR/logs/ID.stream.txt`).
/// Stateless: every request names its offset, so nothing is held between chunks. Runs on the
/// loop thread: one read of at most `LogRead.maxChunkBytes` from a local file.
enum LogFileReader {
    /// The chunk `request` asks for, or a `problem`. The id is checked here again (it becomes a
    /// file name): a request that is out of range never reaches the file system. `ranHere`:
    /// whether the worker has the task's run; then a missing file is an empty log (a run that
    /// printed nothing has no file), else it is a problem (removed by retention, or never here).
    static func answer(_ request: Message.ReadLog, logsDir: String, ranHere: @autoclosure () -> Bool = false) -> Message.LogData {
        func refuse(_ problem: String) -> Message.LogData {
            Message.LogData(readId: request.readId, id: request.id, offset: request.offset, nextOffset: request.offset,
                            data: "", eof: true, problem: problem)
        }
        if let problem = request.problem() { return refuse("refused: \(problem)") }
        let path = TaskLog.path(logsDir: logsDir, id: request.id)
        let bytes: [UInt8]
        switch read(path: path, offset: request.offset, count: request.maxBytes) {
        case .success(let b): bytes = b
        case .failure(let error) where error.errno == ENOENT && ranHere():
            return Message.LogData(readId: request.readId, id: request.id, offset: request.offset,
                                   nextOffset: request.offset, data: "", eof: true)
        case .failure(let error): return refuse(error.description)
        }
        let (consumed, eof) = cut(bytes, asked: request.maxBytes)
        return Message.LogData(readId: request.readId, id: request.id, offset: request.offset,
                               nextOffset: request.offset + consumed,
                               data: String(decoding: bytes[..<consumed], as: UTF8.self), eof: eof)
    }

    /// How much of `bytes` (a read that asked for `asked` bytes) to send, and whether that
    /// reaches the end of the file. A short read is the end: all of it goes. A full read is
    /// cut after its last newline, so every chunk is whole lines (and whole characters); a
    /// chunk without any newline is cut before an incomplete UTF-8 sequence at its end.
    static func cut(_ bytes: [UInt8], asked: Int) -> (consumed: Int, eof: Bool) {
        if bytes.count < asked { return (bytes.count, true) }
        if let newline = bytes.lastIndex(of: 0x0A) { return (newline + 1, false) }
        return (utf8Boundary(bytes), false)
    }

    /// The length of `bytes` without a trailing incomplete UTF-8 sequence (at least 1 when
    /// `bytes` is not empty, so a read always advances).
    static func utf8Boundary(_ bytes: [UInt8]) -> Int {
        var i = bytes.count
        var continuation = 0
        while i > 0, continuation < 3, bytes[i - 1] & 0xC0 == 0x80 {
            i -= 1
            continuation += 1
        }
        guard i > 0 else { return bytes.count }
        let lead = bytes[i - 1]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        // The last sequence is whole (or not UTF-8 at all: then nothing is gained by waiting).
        if length == 1 || continuation + 1 >= length { return bytes.count }
        return i - 1 > 0 ? i - 1 : bytes.count
    }

    /// Up to `count` bytes of the regular file at `path` from `offset` (fewer at its end).
    /// Never follows a symbolic link, never blocks on a FIFO.
    static func read(path: String, offset: Int, count: Int) -> Result<[UInt8], FileError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return .failure(FileError(path: path, errno: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(FileError(path: path, errno: errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(FileError(path: path, errno: EINVAL)) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, count - filled, off_t(offset + filled)) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(FileError(path: path, errno: errno))
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeSubrange(filled...)
        return .success(bytes)
    }
}
