/// A task's stdout and stderr merged into one text (the scheduler's copy of a log, `swarm
/// logs -f` without split streams), each line of stderr labelled `[stderr] `. Labels go at
/// line starts, per stream: a piece that continues its stream's unfinished line gets none.
/// A line of one stream is never glued to the other's: a piece of one stream that comes while
/// the other's line is unfinished ends that line first (its rest comes later on a line of its
/// own, labelled again if it is stderr). Pure value; one per merged text.
public struct StreamLabeler: Sendable, Equatable {
    public enum Stream: Sendable, Equatable { case stdout, stderr }

    public static let stderrLabel = "[stderr] "

    /// The stream whose line the text so far ends inside; nil when it ends at a line start.
    public private(set) var unfinished: Stream?

    public init(unfinished: Stream? = nil) {
        self.unfinished = unfinished
    }

    /// `data` of `stream` as it goes into the merged text.
    public mutating func render(_ data: String, _ stream: Stream) -> String {
        guard let last = data.utf8.last else { return "" }
        // Stdout continuing the text's own line, or starting at a line start: as it is (this
        // runs on the scheduler's loop for every chunk).
        if stream == .stdout && unfinished != .stderr {
            unfinished = last == 0x0A ? nil : .stdout
            return data
        }
        var out: [UInt8] = []
        out.reserveCapacity(data.utf8.count + 16)
        if let open = unfinished, open != stream {
            out.append(0x0A)
            unfinished = nil
        }
        for byte in data.utf8 {
            if unfinished == nil {
                if stream == .stderr { out.append(contentsOf: Self.stderrLabel.utf8) }
                unfinished = stream
            }
            out.append(byte)
            if byte == 0x0A { unfinished = nil }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
