/// One line of a worker's task log (`DATADIR/logs/ID.stream.txt`), read back.
///
/// The worker writes every line as `TIMESTAMP LABEL TEXT\n`: a 24-byte UTC timestamp
/// (`2026-11-18T11:06:40.123Z`), a space, a 6-byte label (`stdout`, `stderr`, or `swarm ` for
/// its own lifecycle lines: start, warnings, extensions, kills, result), a space, then the
/// text. So the text always starts at byte 32. `parse` is the exact inverse for lines the
/// worker wrote; anything else (a damaged or foreign line) is nil, and readers show it as is.
public struct TaskLogLine: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case stdout
        case stderr
        /// The worker's own lines about the run (`swarm` in the file).
        case lifecycle = "swarm"
    }

    public var timestamp: String
    public var kind: Kind
    /// The line without its prefix and without its newline.
    public var text: Substring

    /// Bytes before the text: timestamp, space, label, space.
    public static let prefixLength = 32
    static let timestampLength = 24

    public init(timestamp: String, kind: Kind, text: Substring) {
        self.timestamp = timestamp
        self.kind = kind
        self.text = text
    }

    /// The line's parts; nil when `line` (without its newline) is not in the log's format.
    public static func parse(_ line: Substring) -> TaskLogLine? {
        let utf8 = line.utf8
        guard utf8.count >= prefixLength else { return nil }
        let stampEnd = utf8.index(utf8.startIndex, offsetBy: timestampLength)
        let labelEnd = utf8.index(stampEnd, offsetBy: 7)
        let textStart = utf8.index(after: labelEnd)
        guard isTimestamp(utf8[utf8.startIndex..<stampEnd]), utf8[stampEnd] == 0x20, utf8[labelEnd] == 0x20 else { return nil }
        let kind: Kind
        switch String(Substring(utf8[utf8.index(after: stampEnd)..<labelEnd])) {
        case "stdout": kind = .stdout
        case "stderr": kind = .stderr
        case "swarm ": kind = .lifecycle
        default: return nil
        }
        return TaskLogLine(timestamp: String(Substring(utf8[utf8.startIndex..<stampEnd])), kind: kind,
                           text: Substring(utf8[textStart...]))
    }

    /// Every line of `text` (the last one may lack its newline), parsed; nil entries for lines
    /// not in the format, with the line itself.
    public static func parseAll(_ text: String) -> [(line: Substring, parsed: TaskLogLine?)] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if text.hasSuffix("\n") { lines.removeLast() }
        return lines.map { ($0, parse($0)) }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`: digits where digits go, and the separators.
    static func isTimestamp(_ bytes: Substring.UTF8View.SubSequence) -> Bool {
        guard bytes.count == timestampLength else { return false }
        for (offset, byte) in bytes.enumerated() {
            let expected: UInt8? = switch offset {
            case 4, 7: 0x2D  // -
            case 10: 0x54  // T
            case 13, 16: 0x3A  // :
            case 19: 0x2E  // .
            case 23: 0x5A  // Z
            default: nil
            }
            if let expected { if byte != expected { return false } } else if !(0x30...0x39).contains(byte) { return false }
        }
        return true
    }
}
