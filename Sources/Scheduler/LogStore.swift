import SwarmProtocol

/// Task output streamed by workers, kept by the scheduler so `swarm logs` works from any
/// machine: per task the last `capacityPerTask` bytes of the current run's output, as text
/// lines labelled with their stream. In memory (lost on restart; the worker's log file
/// and the result's output tail stay).
public struct LogStore: Sendable {
    public let capacityPerTask: Int
    private var logs: [String: (attempt: Int, text: String)] = [:]

    public init(capacityPerTask: Int = 1 << 20) {
        self.capacityPerTask = capacityPerTask
    }

    /// Appends output of run `attempt`; a later attempt replaces an earlier one's text.
    /// Returns the text appended (what followers get), nil when it belongs to an older run.
    @discardableResult
    public mutating func append(id: String, attempt: Int, stream: String, data: String) -> String? {
        var entry = logs[id] ?? (attempt, "")
        if attempt < entry.attempt { return nil }
        if attempt > entry.attempt { entry = (attempt, "") }
        let piece = stream == "stderr" ? Self.label(data, "[stderr] ") : data
        entry.text += piece
        if entry.text.utf8.count > capacityPerTask {
            // Keep the end, cut at a line start where possible.
            var tail = Substring(entry.text.utf8.suffix(capacityPerTask)).description
            if let newline = tail.firstIndex(of: "\n") { tail = String(tail[tail.index(after: newline)...]) }
            entry.text = "[... earlier output dropped ...]\n" + tail
        }
        logs[id] = entry
        return piece
    }

    public func text(id: String) -> String { logs[id]?.text ?? "" }

    public mutating func remove(id: String) { logs[id] = nil }

    static func label(_ text: String, _ prefix: String) -> String {
        var out = ""
        var atLineStart = true
        for ch in text {
            if atLineStart { out += prefix }
            out.append(ch)
            atLineStart = ch == "\n"
        }
        return out
    }
}
