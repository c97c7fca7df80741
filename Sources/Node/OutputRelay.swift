import SwarmProtocol

/// Task output on its way to the scheduler, and what happens when tasks print faster than the
/// link to the scheduler takes it.
///
/// The worker reads its tasks' pipes at full speed and writes every byte to each task's log
/// file: that file is the complete record. The live copy for the scheduler waits here until
/// the connection's bulk lane has room, at most `Limits.perRunBytes` per run and
/// `Limits.totalBytes` in all (also while the scheduler is away). A chunk that does not fit is
/// dropped whole and counted, and an explicit marker saying how many bytes are missing takes
/// its place in the stream, so a reader of the stream never mistakes a gap for the whole.
/// Chunks come in as whole UTF-8 characters (the runner carries split ones) and are cut into
/// pieces of at most `Limits.pieceBytes` only between characters. Pure: no I/O, no clock.
struct OutputRelay {
    struct Limits: Sendable {
        /// Output of one run waiting for the link: a burst this large (a task printing a file)
        /// passes whole over a link that is merely slower for a moment.
        var perRunBytes = 8 << 20
        /// Output of all runs waiting for the link (the worker's memory for it).
        var totalBytes = 32 << 20
        /// The most output bytes in one `taskOutput` frame (one pipe read at most).
        var pieceBytes = 64 << 10
    }

    /// One `taskOutput` frame's worth: whole characters of one stream, or a marker.
    struct Piece: Equatable, Sendable {
        var run: RunRef
        var stream: OutputChannel
        var bytes: [UInt8]
        var at: Int64
    }

    private enum Segment {
        case output(OutputChannel, [UInt8], at: Int64)
        /// `newlineFirst`: stderr was inside a line, so the marker starts a line of its own.
        case dropped(Int, at: Int64, newlineFirst: Bool)
    }

    private struct Queue {
        var segments: [Segment] = []
        /// Bytes of `segments[0]` already taken.
        var offset = 0
        var bytes = 0
        /// Dropped since the last marker was queued.
        var dropped = 0
        var droppedAt: Int64 = 0
    }

    let limits: Limits
    private var queues: [RunRef: Queue] = [:]
    /// Runs with something queued, served in turn so one loud task does not starve the others.
    private var turn: [RunRef] = []
    private var turnIndex = 0
    /// Output bytes waiting, all runs.
    private(set) var queuedBytes = 0
    /// Output bytes dropped since the relay began (all runs).
    private(set) var droppedBytes = 0
    /// Per run, the streams whose last byte queued was not a newline (until it is drained):
    /// a marker never lands inside a line.
    private var unfinishedLines: [RunRef: Set<OutputChannel>] = [:]

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The text that stands where `count` bytes were dropped. Its own line, on stderr: a
    /// stream inside a line when the drop began gets a newline first (stdout as a piece of
    /// its own, stderr at the marker's start), as the bytes that would have ended it are gone.
    static func marker(_ count: Int) -> [UInt8] {
        Array("[swarm: \(count) bytes of output dropped here: the link to the scheduler was slower than the task; the worker's log file has them]\n".utf8)
    }

    var isEmpty: Bool { turn.isEmpty }

    func hasQueued(_ run: RunRef) -> Bool { queues[run] != nil }

    /// Takes a chunk of `run`'s output, or drops it (whole) when it does not fit.
    mutating func add(_ run: RunRef, _ stream: OutputChannel, _ bytes: [UInt8], at: Int64) {
        guard !bytes.isEmpty else { return }
        // Taken out of the table while it changes: a copy left there would make every append
        // below copy the queue's segments and the merged chunk's bytes.
        let taken = queues.removeValue(forKey: run)
        let isNew = taken == nil
        var queue = taken ?? Queue()
        if queue.bytes + bytes.count > limits.perRunBytes || queuedBytes + bytes.count > limits.totalBytes {
            if queue.dropped == 0 { queue.droppedAt = at }
            queue.dropped += bytes.count
            droppedBytes += bytes.count
        } else {
            if queue.dropped > 0 { queueMarker(&queue, run) }
            if case .output(stream, _, _)? = queue.segments.last, case .output(_, var data, let first) = queue.segments.removeLast() {
                // Merged with the previous chunk of the same stream: fewer, fuller frames
                // (taken out of the array first, so the append does not copy it).
                data.append(contentsOf: bytes)
                queue.segments.append(.output(stream, data, at: first))
            } else {
                queue.segments.append(.output(stream, bytes, at: at))
            }
            queue.bytes += bytes.count
            queuedBytes += bytes.count
            if bytes.last == 0x0A {
                unfinishedLines[run]?.remove(stream)
            } else {
                unfinishedLines[run, default: []].insert(stream)
            }
        }
        queues[run] = queue
        if isNew { turn.append(run) }
    }

    /// Queues the marker of what `run` dropped, after a newline for each stream inside a line.
    private mutating func queueMarker(_ queue: inout Queue, _ run: RunRef) {
        let open = unfinishedLines.removeValue(forKey: run) ?? []
        if open.contains(.stdout) {
            queue.segments.append(.output(.stdout, [0x0A], at: queue.droppedAt))
            queue.bytes += 1
            queuedBytes += 1
        }
        queue.segments.append(.dropped(queue.dropped, at: queue.droppedAt, newlineFirst: open.contains(.stderr)))
        queue.dropped = 0
    }

    /// The next piece to send, from the next run in turn; nil when nothing waits.
    mutating func next() -> Piece? {
        guard !turn.isEmpty else { return nil }
        if turnIndex >= turn.count { turnIndex = 0 }
        let run = turn[turnIndex]
        let piece = take(run)
        if queues[run] == nil {
            turn.remove(at: turnIndex)
        } else {
            turnIndex += 1
        }
        return piece
    }

    /// Everything `run` has waiting, in order, ending with a marker if its last chunks were
    /// dropped; the run is forgotten. For a run that ended: its result follows these pieces.
    mutating func drain(_ run: RunRef) -> [Piece] {
        var pieces: [Piece] = []
        while queues[run] != nil, let piece = take(run) { pieces.append(piece) }
        unfinishedLines[run] = nil
        if let index = turn.firstIndex(of: run) {
            turn.remove(at: index)
            if index < turnIndex { turnIndex -= 1 }
        }
        return pieces
    }

    /// The first piece of `run`'s queue; removes the queue once it is empty.
    private mutating func take(_ run: RunRef) -> Piece? {
        guard var queue = queues.removeValue(forKey: run) else { return nil }  // unshared: no copy below
        defer { queues[run] = queue.segments.isEmpty && queue.dropped == 0 ? nil : queue }
        // Only a drop is left: its marker ends what the run's stream has for now.
        if queue.segments.isEmpty && queue.dropped > 0 { queueMarker(&queue, run) }
        guard let segment = queue.segments.first else { return nil }
        switch segment {
        case .dropped(let count, let at, let newlineFirst):
            queue.segments.removeFirst()
            return Piece(run: run, stream: .stderr, bytes: (newlineFirst ? [0x0A] : []) + Self.marker(count), at: at)
        case .output(let stream, let data, let at):
            var end = min(data.count, queue.offset + limits.pieceBytes)
            if end < data.count {
                let cut = UTF8Carry.boundary(data, atOrBefore: end)
                if cut > queue.offset { end = cut }
            }
            // A whole segment is handed on as it is (no copy): the usual case, one read each.
            let bytes = queue.offset == 0 && end == data.count ? data : Array(data[queue.offset..<end])
            let piece = Piece(run: run, stream: stream, bytes: bytes, at: at)
            queue.bytes -= end - queue.offset
            queuedBytes -= end - queue.offset
            if end == data.count {
                queue.segments.removeFirst()
                queue.offset = 0
            } else {
                queue.offset = end
            }
            return piece
        }
    }
}
