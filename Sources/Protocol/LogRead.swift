/// Reading a task's log file from the worker that has it, for `swarm logs` (the scheduler
/// relays it to the client). The scheduler asks for one chunk at a time (`readLog`), the
/// worker answers each with one `logData`; neither side ever holds more than one chunk of a
/// read, whatever the file's size.
public enum LogRead {
    /// The most a `readLog` may ask for and a `logData` may cover (bytes of the file).
    public static let maxChunkBytes = 1 << 20
    /// Offsets are bytes into one log file, which the worker caps far lower (256 MiB).
    public static let maxOffset = 1 << 40
    /// Read ids are the scheduler's counter: positive, and exact as JSON numbers.
    public static let maxReadId = 1 << 53
    /// A chunk's text may be longer than its bytes: invalid UTF-8 becomes U+FFFD (3 bytes).
    public static let maxDataUTF8 = 3 * maxChunkBytes
    /// Slack over 3 bytes of text per byte of file a chunk covers.
    public static let dataSlackUTF8 = 16

    /// The most text a chunk covering `bytes` of the file may carry: 3 bytes of text per byte
    /// (each invalid byte becomes U+FFFD) and a little slack, never more than `maxDataUTF8`.
    /// Bounded by the progress, not only by the frame: a worker cannot send ever more text
    /// while the read advances by a byte.
    public static func maxData(covering bytes: Int) -> Int {
        min(maxDataUTF8, 3 * max(0, bytes) + dataSlackUTF8)
    }
    public static let maxProblemUTF8 = 1024

    public static func readIdProblem(_ readId: Int) -> String? {
        (1...maxReadId).contains(readId) ? nil : "readId must be 1 to \(maxReadId), got \(readId)"
    }

    static func offsetProblem(_ offset: Int, _ name: String) -> String? {
        (0...maxOffset).contains(offset) ? nil : "\(name) must be 0 to \(maxOffset), got \(offset)"
    }
}

extension Message {
    /// Scheduler -> worker: the bytes of task `id`'s log file from `offset`, at most `maxBytes`.
    public struct ReadLog: Codable, Sendable, Equatable {
        public var readId: Int
        public var id: String
        public var offset: Int
        public var maxBytes: Int
        public init(readId: Int, id: String, offset: Int, maxBytes: Int) {
            self.readId = readId; self.id = id; self.offset = offset; self.maxBytes = maxBytes
        }

        /// Nil when every field is in range (a worker answers nothing else), else why not.
        public func problem() -> String? {
            if let p = LogRead.readIdProblem(readId) { return p }
            if let p = TaskID.problem(with: id) { return p }
            if let p = LogRead.offsetProblem(offset, "offset") { return p }
            guard (1...LogRead.maxChunkBytes).contains(maxBytes) else {
                return "maxBytes must be 1 to \(LogRead.maxChunkBytes), got \(maxBytes)"
            }
            return nil
        }
    }

    /// Worker -> scheduler: the answer to one `readLog`. `data` is the file's bytes
    /// `offset..<nextOffset` as text, cut after a newline unless at the end of the file; `eof`
    /// when nothing followed them. `problem` when the file cannot be read (then no data).
    public struct LogData: Codable, Sendable, Equatable {
        public var readId: Int
        public var id: String
        public var offset: Int
        public var nextOffset: Int
        public var data: String
        public var eof: Bool
        public var problem: String?
        public init(readId: Int, id: String, offset: Int, nextOffset: Int, data: String, eof: Bool, problem: String? = nil) {
            self.readId = readId; self.id = id; self.offset = offset; self.nextOffset = nextOffset
            self.data = data; self.eof = eof; self.problem = problem
        }

        /// Nil when every field is in range, else why not. (Whether it answers a read that
        /// was asked for is the relay's business.)
        public func validationProblem() -> String? {
            if let p = LogRead.readIdProblem(readId) { return p }
            if let p = TaskID.problem(with: id) { return p }
            if let p = LogRead.offsetProblem(offset, "offset") { return p }
            if let p = LogRead.offsetProblem(nextOffset, "nextOffset") { return p }
            guard nextOffset >= offset, nextOffset - offset <= LogRead.maxChunkBytes else {
                return "nextOffset must be offset to offset + \(LogRead.maxChunkBytes), got \(nextOffset) for offset \(offset)"
            }
            let most = LogRead.maxData(covering: nextOffset - offset)
            guard data.utf8.count <= most else {
                return "data is \(data.utf8.count) bytes, over the \(most) that \(nextOffset - offset) bytes of the file can be"
            }
            if let problem, problem.utf8.count > LogRead.maxProblemUTF8 { return "problem is over \(LogRead.maxProblemUTF8) bytes" }
            return nil
        }
    }
}

/// Values of `LogChunk.stream`.
public enum LogChunkStream {
    /// Whole lines of the worker's log file, in its format (`TaskLogLine`).
    public static let log = "log"
    public static let stdout = "stdout"
    public static let stderr = "stderr"
}
