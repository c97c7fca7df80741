/// The reply to a `wait` on many tasks must fit one frame, however large the tasks are (a spec
/// may take 15 MiB: `FrameBudget`). So a `wait` names at most `maxIds` tasks, and a reply for
/// more than one carries each task as a bounded summary (`TaskInfo.waitSummary()`): every key
/// is there, `output` is null, and long text is cut, each cut string ending `…[+N bytes]`.
/// `maxIds` summaries of at most `maxSummaryBytes` each, with the envelope, fit `maxFrame`.
/// Clients wait on longer lists in several requests (`SwarmClient.wait` does).
public enum WaitSummary {
    /// Task ids one `wait` may name (each counted once).
    public static let maxIds = 2_000
    /// The most one task's summary takes, encoded.
    public static let maxSummaryBytes = 8 * 1024
    /// `command` and `labels`, each in all, and `reason`: encoded bytes at most (about).
    public static let maxListBytes = 1024
    /// Every other string (paths, names, the wait reason), encoded bytes at most (about).
    public static let maxStringBytes = 256

    /// How many bytes `text` takes as a JSON string, quotes included (`FastJSONEncoder`).
    public static func encodedBytes(_ text: String) -> Int {
        var n = 2
        for c in text.utf8 {
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { n += 2 } else if c < 0x20 { n += 6 } else { n += 1 }
        }
        return n
    }

    /// `text` as is when it takes at most `limit` bytes encoded; else its longest start of
    /// whole characters that, with the marker `…[+N bytes]` (N: the UTF-8 bytes left out,
    /// plus `omitted`), stays within `limit`.
    public static func cut(_ text: String, limit: Int, omitted: Int = 0) -> String {
        if omitted == 0, encodedBytes(text) <= limit { return text }
        let total = text.utf8.count + omitted
        // The marker's room: its digits at most those of `total`.
        let room = limit - encodedBytes("…[+\(total) bytes]")
        var kept = ""
        var used = 0
        var keptBytes = 0
        for character in text {
            let piece = String(character)
            let cost = encodedBytes(piece) - 2
            if used + cost > room { break }
            kept.append(character)
            used += cost
            keptBytes += piece.utf8.count
        }
        return kept + "…[+\(total - keptBytes) bytes]"
    }

    /// The arguments kept whole while they fit `limit` bytes encoded (with `"",` each); the
    /// first that does not is cut, its marker counting every byte left out after it too.
    static func cutList(_ items: [String], limit: Int) -> [String] {
        var kept: [String] = []
        var used = 2
        for (index, item) in items.enumerated() {
            let cost = encodedBytes(item) + 1
            if used + cost <= limit { kept.append(item); used += cost; continue }
            let later = items[(index + 1)...].reduce(0) { $0 + $1.utf8.count }
            kept.append(cut(item, limit: max(limit - used - 1, 24), omitted: later))
            return kept
        }
        return kept
    }

    /// Labels kept whole, by key, while they fit `limit` bytes encoded; the rest are replaced
    /// by one label `…` saying how many were left out.
    static func cutLabels(_ labels: [String: String], limit: Int) -> [String: String] {
        var kept: [String: String] = [:]
        var used = 2
        let keys = labels.keys.sorted()
        for (index, key) in keys.enumerated() {
            let value = labels[key]!
            let cost = encodedBytes(key) + encodedBytes(value) + 2
            if used + cost <= limit - 48 { kept[key] = value; used += cost; continue }
            let left = keys[index...].reduce(0) { $0 + $1.utf8.count + (labels[$1]?.utf8.count ?? 0) }
            kept["…"] = "+\(keys.count - index) labels (\(left) bytes) left out"
            return kept
        }
        return kept
    }
}

extension TaskInfo {
    /// This task as a reply to a `wait` on many tasks carries it: every field, `output` null,
    /// long text cut (`WaitSummary`). Encoded, at most `WaitSummary.maxSummaryBytes`. Ids and
    /// parents are task ids (at most 128 plain characters), kept as they are.
    public func waitSummary() -> TaskInfo {
        var info = self
        info.output = nil
        info.runs = nil
        let list = WaitSummary.maxListBytes, short = WaitSummary.maxStringBytes
        func cut(_ text: String?, _ limit: Int) -> String? { text.map { WaitSummary.cut($0, limit: limit) } }
        info.command = WaitSummary.cutList(command, limit: list)
        info.labels = labels.map { WaitSummary.cutLabels($0, limit: list) }
        // Up to 1,000 ids each (`Bounds.dependencies`): the first few, the rest counted.
        info.after = after.map { WaitSummary.cutList($0, limit: short) }
        info.afterAny = afterAny.map { WaitSummary.cutList($0, limit: short) }
        info.reason = cut(reason, list)
        info.waitReason = cut(waitReason, short)
        if id.utf8.count > TaskID.maxLength { info.id = WaitSummary.cut(id, limit: short) }
        if let parent, parent.utf8.count > TaskID.maxLength { info.parent = WaitSummary.cut(parent, limit: short) }
        var m = info.metrics
        m.node = cut(m.node, short)
        m.runtime = cut(m.runtime, short)
        m.model = cut(m.model, short)
        m.complexity = cut(m.complexity, short)
        m.contextMode = cut(m.contextMode, short)
        m.contextFile = cut(m.contextFile, short)
        m.workDir = cut(m.workDir, short)
        m.logFile = cut(m.logFile, short)
        info.metrics = m
        return info
    }
}
