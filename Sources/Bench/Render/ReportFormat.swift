import Foundation

/// Number and text formatting shared by the Markdown, HTML and terminal renderers.
///
/// Every function accepts nil (and non-finite values) and renders them as `–`, so a report
/// with missing data (a remote cluster, a skipped workload) still renders.
enum ReportFormat {
    /// What a missing value looks like.
    static let missing = "–"

    /// `12345` -> `12,345` (locale-independent).
    static func int(_ value: Int?) -> String {
        guard let value else { return missing }
        let digits = String(value.magnitude)
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return value < 0 ? "-" + grouped : grouped
    }

    /// About three significant digits: `1,960`, `196`, `19.6`, `1.96`, `0.42`, `0.004`.
    /// Used for throughput, milliseconds, seconds, microseconds and MiB.
    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return missing }
        let magnitude = abs(value)
        if magnitude == 0 { return "0" }
        if magnitude >= 99.95 {
            guard magnitude < 9e15 else { return String(format: "%.3g", value) }
            return int(Int(value.rounded()))
        }
        if magnitude >= 9.995 { return String(format: "%.1f", value) }
        if magnitude >= 0.01 { return String(format: "%.2f", value) }
        if magnitude >= 0.0005 { return String(format: "%.3f", value) }
        return String(format: "%.1e", value)
    }

    /// An efficiency (a fraction, 1 = ideal): `0.97`.
    static func fraction(_ value: Double?) -> String {
        guard let value, value.isFinite else { return missing }
        return String(format: "%.2f", value)
    }

    /// A ratio between two measurements: `1.12x`.
    static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite else { return missing }
        return String(format: value >= 100 ? "%.0fx" : "%.2fx", value)
    }

    /// A spread as `median [min–max]` (`unit` after the median: `1,960 tasks/s [1,900–2,010]`),
    /// or just the median when every run agreed.
    static func spread(_ spread: Spread?, _ format: (Double?) -> String = number, unit: String = "") -> String {
        guard let spread, format(spread.median) != missing else { return missing }
        let median = format(spread.median) + unit
        let low = format(spread.min)
        let high = format(spread.max)
        if low == high && format(spread.median) == low { return median }
        return "\(median) [\(low)–\(high)]"
    }

    /// A duration for people: `850 ms`, `42.1 s`, `6 min 52 s`, `1 h 05 min`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return missing }
        if seconds < 1 { return "\(number(seconds * 1000)) ms" }
        if seconds < 60 { return "\(number(seconds)) s" }
        let total = Int(seconds.rounded())
        if total < 3600 { return "\(total / 60) min \(total % 60) s" }
        return String(format: "%d h %02d min", total / 3600, (total % 3600) / 60)
    }

    /// `1 task`, `3 tasks`.
    static func count(_ value: Int, _ noun: String) -> String {
        "\(int(value)) \(noun)\(value == 1 ? "" : "s")"
    }

    /// The table mark for a target: met, missed or not measured.
    static func met(_ met: Bool?) -> String {
        switch met {
        case true?: return "✅"
        case false?: return "❌"
        case nil: return missing
        }
    }

    /// Text for a Markdown table cell: `|` escaped, line breaks flattened.
    static func markdownCell(_ text: String) -> String {
        flatten(text).replacingOccurrences(of: "|", with: "\\|")
    }

    /// Text for HTML content or a quoted attribute value: `& < > " '` escaped.
    static func html(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// Line breaks (and tabs) become single spaces.
    static func flatten(_ text: String) -> String {
        text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\t" }).joined(separator: " ")
    }

    /// Shortens `text` to at most `width` characters, ending with `…` when cut.
    static func truncate(_ text: String, to width: Int) -> String {
        guard width > 0 else { return "" }
        guard text.count > width else { return text }
        return String(text.prefix(width - 1)) + "…"
    }
}
