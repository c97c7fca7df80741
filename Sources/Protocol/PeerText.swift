/// Text a peer chose (a message type, a name, a reason), made safe for one log line or one
/// error message: it cannot start a line of its own, hide terminal escapes, or grow a log
/// without bound. Every peer string that reaches a log line or an error message goes through
/// `PeerText.safe`.
public enum PeerText {
    /// The most characters kept; longer text is cut and says how much was cut.
    public static let maxCharacters = 200

    /// `text` with control characters escaped (newline as `\n`, others as `\u{1b}`), line and
    /// paragraph separators too, and cut to `limit` characters with a marker such as
    /// `…[+65336 bytes]`. Printable text (any language) is kept as is. Escaping is idempotent:
    /// safe text stays the same when made safe again.
    public static func safe(_ text: some StringProtocol, limit: Int = maxCharacters) -> String {
        // The usual text (every task's lifecycle lines go through here): printable ASCII within
        // the limit is returned as it is, after one pass over its bytes.
        let utf8 = text.utf8
        if utf8.count <= limit, !utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F }) { return String(text) }
        var out = ""
        var kept = 0
        var keptBytes = 0
        for scalar in text.unicodeScalars {
            if kept >= limit {
                return out + "…[+\(utf8.count - keptBytes) bytes]"
            }
            out += escaped(scalar)
            kept += 1
            keptBytes += UTF8.width(scalar)
        }
        return out
    }

    private static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            let v = scalar.value
            // C0 and C1 controls, DEL, the separators some viewers treat as a new line, and
            // the bidirectional overrides that can make a line read other than it is.
            if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
                || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) {
                return "\\u{" + String(v, radix: 16) + "}"
            }
            return String(scalar)
        }
    }
}
