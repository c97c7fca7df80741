import SwarmHTTP

/// Where one event stream goes: an `HTTPStream`, or a recording fake in tests.
public protocol EventSink: AnyObject {
    /// False once the reader left or the stream was finished.
    var isOpen: Bool { get }
    /// Bytes sent and not yet taken by the reader's socket.
    var queuedBytes: Int { get }
    func send(_ bytes: [UInt8])
    /// Ends the stream, `last` sent with the end (one write).
    func finish(last: [UInt8])
}

extension HTTPStream: EventSink {}

/// Server-Sent Events framing (the `text/event-stream` format browsers read).
public enum ServerSentEvent {
    /// One event: `event: NAME`, then one `data:` line per line of `data` (the reader joins
    /// them with newlines, so the text arrives as sent), then a blank line. CRs are left out:
    /// the reader would take each for a line end.
    public static func encode(event: String, data: String) -> [UInt8] {
        var out = eventField
        out.reserveCapacity(eventField.count + event.utf8.count + newData.count + data.utf8.count + 16)
        out += event.utf8
        out += newData
        for byte in data.utf8 {
            switch byte {
            case 0x0A: out += newData
            case 0x0D: continue
            default: out.append(byte)
            }
        }
        out += [0x0A, 0x0A]
        return out
    }

    private static let eventField = Array("event: ".utf8)
    private static let newData = Array("\ndata: ".utf8)
}

/// The dashboard's live log streams (`/api/tasks/ID/log`) on one listener: who follows which
/// task, and the bounds. The scheduler calls `output` where it sends `swarm logs -f` clients
/// their chunks and `ended` where it ends them, so both kinds of follower see the same text.
///
/// Events: `log` (a piece of the log as the task wrote it), `end` (the task ended; data: its
/// state), `dropped` (this reader fell `maxStreamQueuedBytes` behind; data: why). After `end`
/// or `dropped` the stream is finished. Each event goes to the sink at once; the HTTP layer
/// coalesces the writes (`HTTPLimits.streamFlushMs`): a stream of a task that prints a line
/// and ends soon after costs one write.
/// Pure apart from the sinks it is handed.
public final class LogStreams<Sink: EventSink> {
    public let limits: DashboardLimits
    private var byTask: [String: [Sink]] = [:]
    /// Streams in `byTask`, kept as it changes: the cap is checked without a walk.
    private var held = 0
    /// Readers dropped for falling behind, since start (for tests and logs).
    public private(set) var droppedCount = 0

    public init(limits: DashboardLimits = DashboardLimits()) {
        self.limits = limits
    }

    /// Streams open now (readers that left are forgotten first).
    public var count: Int {
        forgetClosed()
        return held
    }

    /// Whether one more stream may open (else the request gets 503). Readers that left are
    /// looked for only at the cap: a walk of every stream per request would make opening
    /// N streams cost N squared.
    public var hasRoom: Bool {
        if held < limits.maxStreams { return true }
        return count < limits.maxStreams
    }

    /// The task ids followed now.
    public var followedIds: [String] { Array(byTask.keys) }

    /// A stream's first event, sent with its head: what the scheduler holds of the log so far
    /// (its end, `backlogBytes` at most); nothing when it holds none.
    public func firstEvent(backlog: String) -> [UInt8] {
        backlog.isEmpty ? [] : ServerSentEvent.encode(event: "log", data: Self.tail(backlog, bytes: backlogBytes))
    }

    /// Follows `id` on `sink` (opened with `firstEvent`): every `output` until `ended`.
    public func add(_ sink: Sink, id: String) {
        byTask[id, default: []].append(sink)
        held += 1
    }

    /// The whole answer for a task that has ended: the end of its log, then `end`. It needs
    /// no stream (and takes none of `maxStreams`).
    public func endedBody(backlog: String, state: String) -> [UInt8] {
        firstEvent(backlog: backlog) + ServerSentEvent.encode(event: "end", data: state)
    }

    /// Half the per-stream allowance: what is already there never fills a reader's queue.
    public var backlogBytes: Int { max(1, limits.maxStreamQueuedBytes / 2) }

    /// A piece of `id`'s log, to everyone following it. A reader more than
    /// `maxStreamQueuedBytes` behind gets `dropped` instead and its stream ends.
    public func output(id: String, data: String) {
        guard let sinks = byTask[id] else { return }
        // Encoded once for every reader: per reader, 128 readers of a task printing fast held
        // the loop 10 s (debug build) re-encoding the same piece.
        var event: [UInt8]?
        var kept: [Sink] = []
        for sink in sinks where sink.isOpen {
            if sink.queuedBytes > limits.maxStreamQueuedBytes {
                droppedCount += 1
                let why = "this reader fell more than \(limits.maxStreamQueuedBytes) bytes behind the log; reload to read it again"
                sink.finish(last: ServerSentEvent.encode(event: "dropped", data: why))
                continue
            }
            if event == nil { event = ServerSentEvent.encode(event: "log", data: data) }
            sink.send(event!)
            kept.append(sink)
        }
        held -= sinks.count - kept.count
        byTask[id] = kept.isEmpty ? nil : kept
    }

    /// `id` ended in `state`: every stream following it gets `end` and is finished.
    public func ended(id: String, state: String) {
        guard let sinks = byTask.removeValue(forKey: id) else { return }
        held -= sinks.count
        let end = ServerSentEvent.encode(event: "end", data: state)
        for sink in sinks where sink.isOpen { sink.finish(last: end) }
    }

    /// Finishes every stream (the listener stops).
    public func finishAll() {
        for sinks in byTask.values { for sink in sinks { sink.finish(last: []) } }
        byTask = [:]
        held = 0
    }

    private func forgetClosed() {
        for (id, sinks) in byTask where sinks.contains(where: { !$0.isOpen }) {
            let open = sinks.filter(\.isOpen)
            held -= sinks.count - open.count
            byTask[id] = open.isEmpty ? nil : open
        }
    }

    /// The last `bytes` of `text`, from a line start where there is one, behind a line saying
    /// how much was left out. Reads only the tail: a stream opened on a long log does not copy
    /// all of it (a native string's UTF-8 view is indexed by offset in constant time).
    static func tail(_ text: String, bytes: Int) -> String {
        let utf8 = text.utf8
        let count = utf8.count
        guard count > bytes else { return text }
        var start = utf8.index(utf8.startIndex, offsetBy: count - bytes)
        if let newline = utf8[start...].firstIndex(of: 0x0A), utf8.index(after: newline) < utf8.endIndex {
            start = utf8.index(after: newline)
        } else {
            while start < utf8.endIndex, utf8[start] & 0xC0 == 0x80 { start = utf8.index(after: start) }
        }
        let skipped = utf8.distance(from: utf8.startIndex, to: start)
        return "[swarm: \(skipped) earlier bytes not shown here; swarm logs ID prints them]\n"
            + String(decoding: utf8[start...], as: UTF8.self)
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension LogStreams: Sendable {}
