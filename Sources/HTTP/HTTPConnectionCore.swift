/// One HTTP connection as a pure state machine: bytes, answers and time in, directives out.
/// The shell (`HTTPServer`) carries the directives out on a socket. One request is handled at a
/// time: a pipelined request waits, unparsed, until the answer to the one before it has been
/// handed to the kernel, so a peer that sends without reading holds at most
/// `HTTPLimits.maxBufferedBytes` here (the shell stops reading above it) and one answer.
public final class HTTPConnectionCore {
    /// What the shell does next, in order.
    public enum Directive: Equatable {
        /// Hand `request` to the application; answer it with `respond`.
        case dispatch(HTTPRequest)
        /// Write these bytes; report `written()` once they are handed to the kernel.
        case write([UInt8])
        case stopReading
        case startReading
        /// Close the connection (after the writes before it).
        case close(reason: String)
        /// A streamed answer holds bytes not yet written: call `flush(nowMs:)` at this loop
        /// time (ms) or later. Only an earlier time than the one last asked for is sent.
        case flushAt(Int64)
    }

    private enum Phase: Equatable {
        /// Reading; no request in hand.
        case reading
        /// A request was dispatched; its answer has not come.
        case awaitingAnswer
        /// An answer is being written.
        case writing
        /// A streamed answer (`beginStream`) is open: chunks go out until `endStream`.
        case streaming
        case closed
    }

    private let limits: HTTPLimits
    private let parser: HTTPRequestParser
    private var phase: Phase = .reading
    private var buffer: [UInt8] = []
    private var readingStopped = false
    private var closeAfterWrite = false
    private var served = 0
    /// Loop time (ms) of the last byte read or answer written: the idle timeout runs from it.
    private var lastActivityMs: Int64
    /// Loop time (ms) at which the request being read began (nil: none being read).
    private var requestStartMs: Int64?
    private var headOnly = false
    /// Writes handed out and not yet reported `written`: the next request waits for all.
    private var pendingWrites = 0
    /// The peer ended its side while a request was in hand: the whole requests it sent before
    /// are still answered, in order, then the connection closes.
    private var peerEnded = false
    /// A streamed answer's bytes held for one write (`HTTPLimits.streamFlushMs`), chunked.
    private var pending: [UInt8] = []
    /// Loop time (ms) by which `pending` is to be written (nil: nothing pending).
    private var flushDueMs: Int64?

    public init(limits: HTTPLimits, nowMs: Int64) {
        self.limits = limits
        self.parser = HTTPRequestParser(limits: limits)
        self.lastActivityMs = nowMs
    }

    public var isClosed: Bool { phase == .closed }

    /// Whether this is a kept-alive connection between two requests: an answer written, no
    /// byte of the next request read (`HTTPLimits.maxIdleConnections` counts these).
    public var isIdleKeptAlive: Bool {
        phase == .reading && served > 0 && requestStartMs == nil && buffer.isEmpty && !parser.inRequest
    }

    /// Bytes read from the peer.
    public func received(_ bytes: UnsafeRawBufferPointer, nowMs: Int64) -> [Directive] {
        guard phase != .closed, bytes.count > 0 else { return [] }
        // Only while reading: bytes trickled in while an answer waits to be taken must not keep
        // a peer that never reads it past the timeout (`tick`).
        if phase == .reading { lastActivityMs = nowMs }
        if requestStartMs == nil { requestStartMs = nowMs }
        buffer.append(contentsOf: bytes)
        var out: [Directive] = []
        if buffer.count > limits.maxBufferedBytes && !readingStopped {
            readingStopped = true
            out.append(.stopReading)
        }
        return out + pump(nowMs: nowMs)
    }

    /// The peer ended its side (or the read failed).
    public func peerClosed() -> [Directive] {
        guard phase != .closed else { return [] }
        switch phase {
        case .reading:
            phase = .closed
            return [.close(reason: "peer closed")]
        case .streaming:
            // A follower that left: nothing more to send it.
            phase = .closed
            _ = takePending()
            return [.close(reason: "peer closed during a streamed answer")]
        default:
            // Answer what is in hand and the whole requests sent before the end (a pipeline
            // sent and half-closed), then close.
            peerEnded = true
            return []
        }
    }

    /// The application's answer to the request last dispatched.
    public func respond(_ response: HTTPResponse, nowMs: Int64) -> [Directive] {
        guard phase == .awaitingAnswer else { return [] }
        phase = .writing
        lastActivityMs = nowMs
        if peerEnded && buffer.isEmpty { closeAfterWrite = true }
        return [write(response.serialized(close: closeAfterWrite, headOnly: headOnly))]
    }

    /// Starts a streamed answer to the request last dispatched (Server-Sent Events, a log
    /// followed live): `head`'s status and headers, with `Transfer-Encoding: chunked`; then
    /// `streamChunk` as data comes and `endStream` at the end. The idle timeout does not apply
    /// while it is open (the application ends it); a peer that leaves closes it. A HEAD
    /// request gets the head only, at once, and the answer is complete.
    ///
    /// Writes are coalesced (`HTTPLimits.streamFlushMs`, `streamHeadDelayMs`): the head waits
    /// for the first piece (`first`, or a later `streamChunk`) at most `streamHeadDelayMs`; a
    /// piece waits at most `streamFlushMs` for others; `endStream` writes all that waits with
    /// the end. A stream whose task ends soon after it opens costs one write.
    public func beginStream(_ head: HTTPResponse, first: [UInt8] = [], nowMs: Int64) -> [Directive] {
        guard phase == .awaitingAnswer else { return [] }
        lastActivityMs = nowMs
        let bytes = Self.streamHead(head, close: closeAfterWrite)
        guard !headOnly else {
            phase = .writing
            return [write(bytes)]
        }
        phase = .streaming
        pending = bytes
        return hold(first, nowMs: nowMs, dueMs: nowMs + (first.isEmpty ? limits.streamHeadDelayMs : limits.streamFlushMs))
    }

    /// One piece of a streamed answer (empty pieces are skipped: an empty chunk would end it),
    /// written with what else comes within `HTTPLimits.streamFlushMs`.
    public func streamChunk(_ bytes: [UInt8], nowMs: Int64) -> [Directive] {
        guard phase == .streaming, !bytes.isEmpty else { return [] }
        return hold(bytes, nowMs: nowMs, dueMs: nowMs + limits.streamFlushMs)
    }

    /// Ends a streamed answer; the connection then goes on with the next request (or closes).
    /// `last`: a last piece, written with the end and whatever waits (one write).
    public func endStream(last: [UInt8] = [], nowMs: Int64) -> [Directive] {
        guard phase == .streaming else { return [] }
        phase = .writing
        lastActivityMs = nowMs
        var bytes = takePending()
        Self.appendChunk(last, to: &bytes)
        bytes += Self.lastChunk
        return [write(bytes)]
    }

    /// Writes what a streamed answer holds when its time has come (`flushAt`); else asks
    /// again for its time.
    public func flush(nowMs: Int64) -> [Directive] {
        guard phase == .streaming, let due = flushDueMs else { return [] }
        guard due <= nowMs else { return [.flushAt(due)] }
        return [write(takePending())]
    }

    /// Bytes of the open stream held here, not yet handed to the socket.
    public var pendingBytes: Int { pending.count }

    /// Loop time (ms) by which the held bytes are to be written (nil: none held).
    public var flushDueAt: Int64? { flushDueMs }

    /// Adds `piece` (as a chunk) to what waits, due by `dueMs` at the latest; written now when
    /// due now.
    private func hold(_ piece: [UInt8], nowMs: Int64, dueMs: Int64) -> [Directive] {
        Self.appendChunk(piece, to: &pending)
        if dueMs <= nowMs { return [write(takePending())] }
        guard flushDueMs.map({ dueMs < $0 }) ?? true else { return [] }
        flushDueMs = dueMs
        return [.flushAt(dueMs)]
    }

    private func takePending() -> [UInt8] {
        flushDueMs = nil
        defer { pending = [] }
        return pending
    }

    /// Built on bytes, not by string interpolation: one per log stream.
    private static func streamHead(_ head: HTTPResponse, close: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        bytes += "HTTP/1.1 ".utf8
        bytes += String(head.status.code).utf8
        bytes.append(0x20)
        bytes += head.status.reason.utf8
        bytes += crlf
        for (name, value) in head.headers {
            bytes += name.utf8
            bytes += ": ".utf8
            bytes += value.utf8
            bytes += crlf
        }
        bytes += close ? closingTail : keptTail
        return bytes
    }

    private static let crlf: [UInt8] = [0x0D, 0x0A]
    private static let keptTail = Array("Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n".utf8)
    private static let closingTail = Array("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
    private static let lastChunk = Array("0\r\n\r\n".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `bytes` as one chunk of a chunked body (nothing for no bytes): its size in hex,
    /// CRLF, the bytes, CRLF.
    static func appendChunk(_ bytes: [UInt8], to out: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        var shift = (Int.bitWidth - bytes.count.leadingZeroBitCount + 3) / 4 * 4
        while shift > 0 {
            shift -= 4
            out.append(hexDigits[(bytes.count >> shift) & 0xF])
        }
        out += crlf
        out += bytes
        out += crlf
    }

    /// Whether a streamed answer is open (what `HTTPStream.isOpen` reports).
    public var isStreaming: Bool { phase == .streaming }

    private func write(_ bytes: [UInt8]) -> Directive {
        pendingWrites += 1
        return .write(bytes)
    }

    /// A `write` was handed to the kernel.
    public func written(nowMs: Int64) -> [Directive] {
        pendingWrites = max(0, pendingWrites - 1)
        guard phase == .writing, pendingWrites == 0 else { return [] }
        lastActivityMs = nowMs
        if closeAfterWrite {
            phase = .closed
            return [.close(reason: "answered")]
        }
        phase = .reading
        let next = pump(nowMs: nowMs)
        guard peerEnded, phase == .reading else { return next }
        // The peer has ended and no whole request is left: nothing more will come.
        phase = .closed
        return next + [.close(reason: "peer closed")]
    }

    /// Checks the timeouts; call now and then (the shell does every `HTTPServer.sweepMs`).
    public func tick(nowMs: Int64) -> [Directive] {
        if phase == .writing, nowMs - lastActivityMs >= limits.idleTimeoutMs {
            // A peer that does not read its answer holds the connection no longer than an idle one.
            phase = .closed
            return [.close(reason: "answer not taken within \(limits.idleTimeoutMs) ms")]
        }
        guard phase == .reading else { return [] }
        if let start = requestStartMs, nowMs - start >= limits.requestTimeoutMs {
            return refuse(.requestTimeout, "request not complete within \(limits.requestTimeoutMs) ms", nowMs: nowMs)
        }
        if requestStartMs == nil, nowMs - lastActivityMs >= limits.idleTimeoutMs {
            phase = .closed
            return [.close(reason: "idle for \(limits.idleTimeoutMs) ms")]
        }
        return []
    }

    /// Parses what is buffered while no request is in hand.
    private func pump(nowMs: Int64) -> [Directive] {
        guard phase == .reading, !buffer.isEmpty else { return [] }
        let outcome = buffer.withUnsafeBytes { parser.parse($0) }
        switch outcome {
        case .needMore:
            buffer.removeAll(keepingCapacity: true)
            return resumeIfStopped()
        case .refused(let status, let reason):
            return refuse(status, reason, nowMs: nowMs)
        case let .request(request, consumed):
            buffer.removeFirst(consumed)
            served += 1
            closeAfterWrite = !request.keepAlive || served >= limits.maxRequestsPerConnection
            headOnly = request.method == "HEAD"
            // The next request's clock starts with its first byte (maybe already here).
            requestStartMs = buffer.isEmpty && !parser.inRequest ? nil : nowMs
            phase = .awaitingAnswer
            return resumeIfStopped() + [.dispatch(request)]
        }
    }

    private func resumeIfStopped() -> [Directive] {
        guard readingStopped, buffer.count <= limits.maxBufferedBytes else { return [] }
        readingStopped = false
        return [.startReading]
    }

    /// Answers `status` itself and closes: the peer sent what this server does not take.
    private func refuse(_ status: HTTPStatus, _ reason: String, nowMs: Int64) -> [Directive] {
        buffer = []
        lastActivityMs = nowMs
        closeAfterWrite = true
        phase = .writing
        return [.stopReading, write(HTTPResponse.text(status, reason).serialized(close: true))]
    }
}

/// Used on one connection's thread only: not Sendable, on purpose.
@available(*, unavailable)
extension HTTPConnectionCore: Sendable {}
