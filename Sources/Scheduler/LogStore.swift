import SwarmProtocol

/// Task output streamed by workers, kept by the scheduler so `swarm logs` works from any
/// machine: per task the last `capacityPerTask` bytes of the current run's output, as text
/// lines labelled with their stream. In memory (lost on restart; the worker's log file
/// and the result's output tail stay).
///
/// Caps: a log is trimmed back to its capacity once it is twice over; its capacity is
/// `capacityPerTask`, or less, its share of `totalCapacity` when many tasks have logs (but
/// not under `minimumCapacity`): a log that grows stays within twice its share. What a
/// trim removes is replaced by one marker line at the start that counts every byte of log
/// dropped so far; a trim cuts at a line start where it can, and never inside a character.
public struct LogStore: Sendable {
    public let capacityPerTask: Int
    public let totalCapacity: Int
    public static let minimumCapacity = 16 * 1024
    private struct Entry {
        var attempt: Int
        var text = ""
        /// Bytes of log trimmed away (markers not counted), and the marker line's length.
        var dropped = 0
        var markerBytes = 0
        /// Where the text ends: labels go at line starts per stream (`StreamLabeler`).
        var labeler = StreamLabeler()
    }
    private var logs: [String: Entry] = [:]

    public init(capacityPerTask: Int = 1 << 20, totalCapacity: Int = 256 << 20) {
        self.capacityPerTask = capacityPerTask
        self.totalCapacity = totalCapacity
    }

    /// The line that stands for the `count` bytes trimmed from a log's start.
    public static func marker(_ count: Int) -> String {
        "[swarm: \(count) bytes of earlier log dropped: the scheduler keeps only the end of a task's log]\n"
    }

    /// Appends output of run `attempt`; a later attempt replaces an earlier one's text.
    /// Returns the text appended (what followers get), nil when it belongs to an older run.
    @discardableResult
    public mutating func append(id: String, attempt: Int, stream: String, data: String) -> String? {
        if let attempts = logs[id]?.attempt, attempt < attempts { return nil }
        // Taken out of the table while it grows: appending to a text still shared with the
        // table would copy all of it for every chunk.
        var entry = logs.removeValue(forKey: id) ?? Entry(attempt: attempt)
        if attempt > entry.attempt { entry = Entry(attempt: attempt) }
        let piece = entry.labeler.render(data, stream == "stderr" ? .stderr : .stdout)
        entry.text += piece
        // Trimmed back to the capacity only once it is twice over: the copy is amortized
        // over at least `capacity` bytes of output.
        let capacity = min(capacityPerTask, max(Self.minimumCapacity, totalCapacity / (logs.count + 1)))
        if entry.text.utf8.count > 2 * capacity { Self.trim(&entry, to: capacity) }
        logs[id] = entry
        return piece
    }

    /// Keeps the last `capacity` bytes of the log (from a line start, or else a character
    /// start) behind a marker counting everything dropped.
    private static func trim(_ entry: inout Entry, to capacity: Int) {
        let all = Array(entry.text.utf8)
        let tail = all.suffix(capacity)
        var start = tail.startIndex
        if let newline = tail.firstIndex(of: 0x0A), newline + 1 < tail.endIndex {
            start = newline + 1
        } else {
            while start < tail.endIndex, start - tail.startIndex < 3, all[start] & 0xC0 == 0x80 { start += 1 }
        }
        entry.dropped += start - entry.markerBytes
        let marker = marker(entry.dropped)
        entry.markerBytes = marker.utf8.count
        entry.text = marker + String(decoding: all[start...], as: UTF8.self)
    }

    public func text(id: String) -> String { logs[id]?.text ?? "" }

    /// Bytes of `id`'s current log trimmed away so far.
    public func droppedBytes(id: String) -> Int { logs[id]?.dropped ?? 0 }

    public mutating func remove(id: String) { logs[id] = nil }
}
