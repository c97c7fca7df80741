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
        // Trimmed back to the capacity only once it is twice over: the copy is amortized
        // over at least `capacityPerTask` bytes of output.
        if entry.text.utf8.count > 2 * capacityPerTask {
            let bytes = Array(entry.text.utf8.suffix(capacityPerTask))
            // Keep the end, cut at a line start where possible.
            let start = bytes.firstIndex(of: 0x0A).map { $0 + 1 } ?? 0
            entry.text = "[... earlier output dropped ...]\n" + String(decoding: bytes[start...], as: UTF8.self)
        }
        logs[id] = entry
        return piece
    }

    public func text(id: String) -> String { logs[id]?.text ?? "" }

    public mutating func remove(id: String) { logs[id] = nil }

    /// `prefix` at the start of every line of `text` (bytes, not characters: this runs on
    /// the scheduler's loop for every chunk of stderr).
    static func label(_ text: String, _ prefix: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        var atLineStart = true
        for byte in text.utf8 {
            if atLineStart { out.append(contentsOf: prefix.utf8) }
            out.append(byte)
            atLineStart = byte == 0x0A
        }
        return String(decoding: out, as: UTF8.self)
    }
}
