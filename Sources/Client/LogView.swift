import SwarmProtocol

/// What `swarm logs` and `swarm submit --wait` print of a task's `logChunk`s. Pure: chunks
/// in, pieces of text for stdout or stderr out, in order.
///
/// - Lines of the worker's log file (`stream` `log`): output lines as the task printed them,
///   the worker's lifecycle lines only with `lifecycle` (but that the log was truncated always,
///   on stderr).
/// - The scheduler's copy (`stream` nil): lines as kept there (stderr labelled `[stderr] `).
/// - Live pieces (`stdout`/`stderr`): as they came.
/// stderr output goes to stderr with `splitStreams`, else to stdout with each line labelled
/// `[stderr] `. `tail` keeps only the last N lines of what was stored before any live piece.
/// A chunk's `notice` goes to stderr at once, prefixed `swarm: `.
public struct LogView {
    public enum Sink: Sendable, Equatable { case stdout, stderr }

    public struct Options: Sendable, Equatable {
        public var tail: Int?
        public var lifecycle = false
        public var splitStreams = false
        public init(tail: Int? = nil, lifecycle: Bool = false, splitStreams: Bool = false) {
            self.tail = tail; self.lifecycle = lifecycle; self.splitStreams = splitStreams
        }
    }

    /// `--tail` takes 1 to this many lines.
    public static let maxTail = 1_000_000
    /// The most of an unfinished line kept waiting for its newline: past this it is printed
    /// as a line of its own (a peer sending text without newlines never grows memory here,
    /// and what it sent is shown).
    public static let maxPartialUTF8 = 64 << 10

    public let options: Options
    /// The unfinished last line of stored text, by kind (`log` or the scheduler's copy).
    private var partial: [String: String] = [:]
    /// The last `tail` rendered lines, oldest at `ringStart`.
    private var ring: [(Sink, String)] = []
    private var ringStart = 0
    private var live = false
    /// Where the live text printed so far ends (labels at line starts, per stream).
    private var labeler = StreamLabeler()

    public init(options: Options = Options()) {
        self.options = options
    }

    /// What to print for `chunk`.
    public mutating func feed(_ chunk: Message.LogChunk) -> [(Sink, String)] {
        var out: [(Sink, String)] = []
        if let notice = chunk.notice { out.append((.stderr, "swarm: \(notice)\n")) }
        switch chunk.stream {
        case LogChunkStream.stdout?, LogChunkStream.stderr?:
            if !live {
                // The scheduler's copy may end inside a line that the live pieces continue.
                if let rest = partial[""], !rest.isEmpty {
                    labeler = StreamLabeler(unfinished: rest.hasPrefix(Self.stderrLabel) ? .stderr : .stdout)
                }
                out += flushStored()
                live = true
            }
            out += renderLive(chunk.data, stderr: chunk.stream == LogChunkStream.stderr)
        default:
            let kind = chunk.stream ?? ""
            var lines = chunk.data.split(separator: "\n", omittingEmptySubsequences: false)
            var rest = String(lines.removeLast())
            if let carried = partial.removeValue(forKey: kind) {
                if lines.isEmpty { rest = carried + rest } else { lines[0] = Substring(carried + lines[0]) }
            }
            if rest.utf8.count > Self.maxPartialUTF8 {
                lines.append(Substring(rest))
            } else if !rest.isEmpty {
                partial[kind] = rest
            }
            for line in lines { out += stored(render(line, kind: kind, newline: true)) }
        }
        return out
    }

    /// The end: what is held back (an unfinished last line, the tail).
    public mutating func finish() -> [(Sink, String)] {
        flushStored()
    }

    private mutating func flushStored() -> [(Sink, String)] {
        var out: [(Sink, String)] = []
        for kind in partial.keys.sorted() {
            out += stored(render(Substring(partial[kind]!), kind: kind, newline: false))
        }
        partial = [:]
        out += ring[ringStart...]
        out += ring[..<ringStart]
        ring = []
        ringStart = 0
        return out
    }

    /// A stored line, printed now or kept for the tail.
    private mutating func stored(_ line: (Sink, String)?) -> [(Sink, String)] {
        guard let line else { return [] }
        guard let tail = options.tail, !live else { return [line] }
        if ring.count < tail {
            ring.append(line)
        } else if tail > 0 {
            ring[ringStart] = line
            ringStart = (ringStart + 1) % tail
        }
        return []
    }

    private func render(_ line: Substring, kind: String, newline: Bool) -> (Sink, String)? {
        let end = newline ? "\n" : ""
        if kind != LogChunkStream.log {
            // The scheduler's copy: stderr lines carry their label.
            if options.splitStreams, line.hasPrefix(Self.stderrLabel) {
                return (.stderr, String(line.dropFirst(Self.stderrLabel.count)) + end)
            }
            return (.stdout, String(line) + end)
        }
        guard let parsed = TaskLogLine.parse(line) else { return (.stdout, String(line) + end) }
        let text = String(parsed.text)
        switch parsed.kind {
        case .stdout: return (.stdout, text + end)
        case .stderr: return options.splitStreams ? (.stderr, text + end) : (.stdout, Self.stderrLabel + text + end)
        case .lifecycle:
            // That the log itself is cut short is said even without `lifecycle`.
            if !options.lifecycle && text.hasPrefix("log truncated") { return (.stderr, "swarm: \(text)\(end)") }
            guard options.lifecycle else { return nil }
            return (options.splitStreams ? .stderr : .stdout, "[swarm] \(parsed.timestamp) \(parsed.text)\(end)")
        }
    }

    private mutating func renderLive(_ data: String, stderr: Bool) -> [(Sink, String)] {
        guard !data.isEmpty else { return [] }
        if options.splitStreams { return [(stderr ? .stderr : .stdout, data)] }
        // Merged like the scheduler's copy: labels at stderr's line starts, and a line of one
        // stream never glued to the other's.
        return [(.stdout, labeler.render(data, stderr ? .stderr : .stdout))]
    }

    static let stderrLabel = StreamLabeler.stderrLabel
}
