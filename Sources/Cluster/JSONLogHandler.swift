import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `--log-format json`: one JSON object per line on stderr, for log shippers (journald's
/// JSON mode, Loki, Elasticsearch) that would otherwise have to parse the text lines.
///
/// Each line is `{"time": "2026-12-02T21:00:00.123Z", "level": "info", "label": "swarm",
/// "message": "...", "source": "SwarmScheduler", KEY: VALUE...}`: metadata keys sit beside
/// the fixed ones (a metadata key named like a fixed one is prefixed `meta.`), values as
/// strings (lists and dictionaries in their text form). A line is written with one
/// `write(2)`, so lines of concurrent threads never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        let merged = explicit.map { metadata.merging($0) { _, new in new } } ?? metadata
        Self.writeAll(Self.line(time: Date(), level: level, label: label, message: message.description,
                                source: source, metadata: merged))
    }

    /// One `write(2)` of the whole line to stderr (short writes continued; EINTR retried).
    static func writeAll(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return }
            bytes = bytes.dropFirst(n)
        }
    }

    static let fixedKeys: Set<String> = ["time", "level", "label", "message", "source"]

    /// The line for one event, newline included: pure, for tests.
    static func line(time: Date, level: Logger.Level, label: String, message: String,
                     source: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":\"\(timestamp(time))\",\"level\":\"\(level.rawValue)\",\"label\":"
        out += quoted(label) + ",\"message\":" + quoted(message) + ",\"source\":" + quoted(source)
        for key in metadata.keys.sorted() {
            let name = fixedKeys.contains(key) ? "meta." + key : key
            out += "," + quoted(name) + ":" + quoted(metadata[key]!.description)
        }
        return out + "}\n"
    }

    /// RFC 3339 in UTC with milliseconds: what people and shippers both read.
    static func timestamp(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(ms % 1000))
    }

    /// A JSON string literal: quotes, backslashes and every control character escaped, so a
    /// peer-given text in a message can never break the line or the object.
    static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || (0x2028...0x2029).contains(scalar.value):
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
