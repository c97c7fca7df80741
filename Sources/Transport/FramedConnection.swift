#if canImport(Glibc)
import Glibc
#endif
import SwarmProtocol
import SwarmUV

/// Why a connection ended.
public enum ConnectionEnd: Equatable, CustomStringConvertible {
    /// The peer closed its side.
    case eof
    /// A socket error (reset, refused, ...).
    case error(UVError)
    /// The peer sent bytes that are not frames or not messages; it was told why.
    case protocolError(String)
    /// We closed it.
    case local(String)

    public var description: String {
        switch self {
        case .eof: "closed by peer"
        case .error(let e): "\(e)"
        case .protocolError(let reason): "protocol error: \(reason)"
        case .local(let reason): reason
        }
    }
}

/// A TCP connection that speaks frames of JSON messages.
///
/// Bad input from the peer (a bad length, bytes that are not a message) gets an `error` frame
/// and a close of this connection only. Loop thread only.
///
/// Two lanes: `send`/`sendFrame` (control: results, heartbeats, replies) are written at the
/// next flush; `sendBulk` frames (streamed task output) are handed to the socket only while
/// its write queue holds under `bulkWriteThreshold` bytes, and always after the control frames
/// of the same flush. A control frame therefore waits behind at most that threshold plus one
/// bulk frame, however large the bulk backlog, and bulk volume never closes the connection:
/// its sender bounds the lane with `bulkQueuedBytes`.
public final class FramedConnection {
    public let tcp: UVTCP
    var decoder: FrameDecoder
    /// Pairs each `blobChunk` header with its raw frame.
    private var assembler = MessageAssembler()
    var ended = false
    var closing = false
    /// Each decoded message, in order.
    public var onMessage: ((Message) -> Void)?
    /// Fires once, when the connection ends for any reason.
    public var onEnd: ((ConnectionEnd) -> Void)?
    /// A whole frame that is not a message we can read: return true when it was handled (the
    /// connection goes on); otherwise, or when unset, the peer is refused and the connection
    /// closed. (A worker refuses just the assignment it could not read.)
    public var onUndecodable: ((_ payload: [UInt8], _ error: MessageError) -> Bool)?
    /// A peer that does not read what we send is cut off past this many queued control bytes
    /// (the bulk lane is not counted: its sender bounds it).
    public var maxQueuedBytes = 64 * 1024 * 1024
    /// Bytes read from the peer, and bytes handed to the socket for it, since the start
    /// (what the servers' `/metrics` count as bytes in and out).
    public private(set) var bytesReceived = 0
    public internal(set) var bytesSent = 0
    /// Fires each time a write has reached the socket: `queuedBytes` went down. Lets a
    /// producer that paused for a slow reader (a relayed log) go on.
    public var onWritten: (() -> Void)?
    public let peer: String
    /// Frames sent during this loop iteration, written together right before the loop polls:
    /// one `write` (and one wake-up of the peer) for all of them instead of one each.
    private var pending: [UInt8] = []
    private var flusher: UVPrepare?
    private var flushArmed = false
    /// `written` for each queued write, made once (not a closure per write).
    private(set) lazy var writeEnded: (UVError?) -> Void = { [weak self] error in self?.written(error) }
    /// A `written(nil)` for writes that went at once is due on the next loop iteration.
    private var writtenDue = false
    /// Past this many pending bytes the frames are written at once.
    private static let coalesceLimit = 256 * 1024
    /// Nor are frames held longer than this: a loop busy for seconds in one callback (a
    /// worker starting thousands of tasks) still shows the peer it is alive as it goes.
    private static let coalesceMaxNs: UInt64 = 20_000_000
    private var pendingSince: UInt64 = 0
    /// Bulk frames not yet handed to the socket, oldest first from `bulkHead`.
    private var bulk: [[UInt8]] = []
    private var bulkHead = 0
    /// Bytes in the bulk lane not yet handed to the socket.
    public private(set) var bulkQueuedBytes = 0
    /// Bulk frames queued so far, and of them handed to the socket so far (see `sendBulk`).
    public private(set) var bulkQueuedCount: UInt64 = 0
    public private(set) var bulkHandedOver: UInt64 = 0
    /// Bulk frames go to the socket only while its write queue is under this many bytes.
    public static let bulkWriteThreshold = 64 * 1024
    /// Runs after bulk frames were handed to the socket: there is room in the lane again.
    public var onBulkSpace: (() -> Void)?

    // Read flow control: how much this connection may make us do before its replies are read.
    /// Messages handled at most before the loop gets a turn; the rest wait (already read) for
    /// the next turn, and reading stops meanwhile. So one pipelining peer cannot hold the loop.
    public var maxMessagesPerTurn = Int.max
    /// Backpressure: past this many bytes queued to the peer, reading (and handling what was
    /// read) pauses until the queue drains to `resumeReadingBelow`. A peer that does not read
    /// its replies cannot make us build more. nil: never pauses.
    public var pauseReadingAbove: Int?
    public var resumeReadingBelow = 0
    private var handledThisTurn = 0
    private var reading = false
    private var turnTimer: UVTimer?
    private var turnArmed = false
    /// Whether reading is paused because the peer does not read (for tests and stats).
    public private(set) var pausedForBackpressure = false

    /// TLS between the socket and the frames, or nil (plaintext: loopback without a token).
    /// Frames sent before its handshake is done wait in `pending` (bounded by `maxQueuedBytes`).
    public let tls: TLSSession?
    var tlsStarted = false
    /// TLS records decrypted per loop turn (`TLSTurnBudget`).
    public var maxTLSRecordsPerTurn: Int {
        get { tlsTurn.maxRecordsPerTurn }
        set { tlsTurn.maxRecordsPerTurn = newValue }
    }
    private var tlsTurn = TLSTurnBudget()

    /// `tls`: the connection's TLS session (see `TLSContext`), or nil for plaintext. A
    /// plaintext connection refuses a peer whose first byte opens a TLS record, and the
    /// reverse, each with a one-line reason.
    public init(tcp: UVTCP, maxFrame: Int = Frame.defaultMaxPayload, tls: TLSSession? = nil) {
        self.tcp = tcp
        self.tls = tls
        self.decoder = FrameDecoder(maxPayload: maxFrame)
        self.peer = (try? tcp.peerAddress().description) ?? "?"
        tcp.setNoDelay(true)
    }

    public var isOpen: Bool { !ended }

    /// Bytes sent but not yet written to the socket (the peer has not read them), both lanes.
    public var queuedBytes: Int { ended ? 0 : tcp.stream.writeQueueSize + pending.count + bulkQueuedBytes }

    /// The largest frame accepted from the peer from now on.
    public var maxFrame: Int {
        get { decoder.maxPayload }
        set { decoder.maxPayload = newValue }
    }

    /// Starts reading (again, after the stream's reading was stopped directly); messages
    /// arrive through `onMessage`.
    public func start() {
        reading = false
        resumeReading()
    }

    /// Handles no more messages in this loop turn: the rest are handled in the next one.
    /// For an owner that has just done a large piece of work for this peer.
    public func yieldTurn() {
        handledThisTurn = max(handledThisTurn, maxMessagesPerTurn)
    }

    private func resumeReading() {
        guard !ended, !closing, !reading, !tlsTurn.holdsReading(nowMs: tcp.loop.nowMs) else { return }
        guard startTLSIfNeeded() else { return }
        do {
            try tcp.stream.startReading { [weak self] event in self?.handle(event) }
            reading = true
        } catch {
            end(.error(error))
        }
    }

    func pauseReading() {
        guard reading else { return }
        tcp.stream.stopReading()
        reading = false
    }

    private func handle(_ event: StreamReadEvent) {
        switch event {
        case .data(let bytes):
            GapTrace.mark("rd", "\(bytes.count)")
            let first = bytesReceived == 0
            bytesReceived += bytes.count
            if let tls {
                tlsTurn.begin(records: tls.recordsReceived, nowMs: tcp.loop.nowMs)
                receiveTLS(bytes)
                if !ended, !closing, tlsTurn.isSpent(records: tls.recordsReceived) {
                    pauseReading()
                    armNextTurn()
                }
                return
            }
            if first, let byte = bytes.first, TLSSession.looksLikeTLS(byte) {
                refuse(.badFrame, "this side does not use TLS (no cluster token and no --tls-* certificates), but the peer opened a TLS handshake: give both sides the same setting")
                return
            }
            decoder.feed(bytes)
            handleBuffered()
        case .eof:
            reading = false
            end(.eof)
        case .error(let error):
            reading = false
            end(.error(error))
        }
    }

    /// Handles the frames read so far, within this turn's budget and the backpressure limit;
    /// reads more only when all are handled.
    func handleBuffered() {
        while !ended && !closing {
            if let above = pauseReadingAbove, queuedBytes > above {
                pausedForBackpressure = true
                pauseReading()
                return
            }
            if handledThisTurn >= maxMessagesPerTurn {
                pauseReading()
                armNextTurn()
                return
            }
            let payload: [UInt8]
            do {
                guard let next = try decoder.next() else {
                    resumeReading()
                    return
                }
                payload = next
            } catch {
                refuse(.badFrame, error.description)
                return
            }
            let message: Message
            do {
                guard case .message(let whole) = try assembler.receive(payload) else { continue }
                message = whole
            } catch {
                switch error {
                case .chunk(let problem):
                    refuse(.badFrame, PeerText.safe(problem.description, limit: 400))
                    return
                case .undecodable(let error):
                    if onUndecodable?(payload, error) == true {
                        handledThisTurn += 1
                        continue
                    }
                    refuse(.badMessage, PeerText.safe(error.description, limit: 400))
                    return
                }
            }
            handledThisTurn += 1
            onMessage?(message)
        }
    }

    /// Starts a new budget in a later loop turn: 1 ms, not 0, because libuv (1.44) runs a
    /// zero timer started from a timer callback in the same pass, without polling between;
    /// a poll lets every other peer be read first, and this turn's replies be written.
    private func armNextTurn() {
        guard !turnArmed else { return }
        if turnTimer == nil { turnTimer = try? UVTimer(loop: tcp.loop) }
        guard let turnTimer else { return }
        turnArmed = true
        turnTimer.start(afterMs: 1) { [weak self] in
            guard let self else { return }
            self.turnArmed = false
            self.handledThisTurn = 0
            if !self.pausedForBackpressure { self.handleBuffered() }
        }
    }

    /// After a write completed: resume a connection paused for backpressure once drained.
    private func writeCompleted() {
        guard pausedForBackpressure, !ended, queuedBytes <= resumeReadingBelow else { return }
        pausedForBackpressure = false
        handleBuffered()
    }

    /// Tells the peer what was wrong with its input, then closes.
    public func refuse(_ code: ErrorCode, _ reason: String, requestId: Int? = nil) {
        guard !ended else { return }
        send(.error(.init(code: code, reason: reason, requestId: requestId)))
        closeAfterFlush(.protocolError(reason))
    }

    /// Stops reading, lets queued writes reach the peer, then closes.
    public func closeAfterFlush(_ reason: ConnectionEnd) {
        guard !ended, !closing else { return }
        closing = true
        pauseReading()
        // Strong capture on purpose: the connection stays alive until its socket is closed,
        // even if its owner has already let go of it.
        flush()
        // Everything queued still goes out: a closing sender is not refilling the lane.
        pumpBulk(limit: .max)
        tcp.stream.shutdown { _ in self.end(reason) }
    }

    /// Queues a message. Silently dropped when the connection has ended.
    public func send(_ message: Message) {
        guard !ended, !closing else { return }
        // A chunk is two frames and bulk: it never goes on the control lane.
        if case .blobChunk(let chunk) = message { sendChunk(chunk); return }
        sendFrame(MessageCodec.frame(message))
    }

    /// Queues a blob chunk (its header frame and raw frame, as one unit) on the bulk lane.
    /// The caller bounds the lane with `bulkQueuedBytes` and refills on `onBulkSpace`.
    @discardableResult
    public func sendChunk(_ chunk: Message.BlobChunk) -> UInt64 {
        sendBulk(MessageAssembler.frames(chunk))
    }

    /// Sends a frame encoded already (header included), e.g. `MessageCodec.taskFinishedFrame`.
    /// Written with the iteration's other frames, before the loop next polls.
    public func sendFrame(_ frame: [UInt8]) {
        guard !ended, !closing else { return }
        if tcp.stream.writeQueueSize + pending.count > maxQueuedBytes {
            close(reason: "peer is not reading (over \(maxQueuedBytes) bytes queued)")
            return
        }
        let now = monotonicNs()
        if pending.isEmpty { pendingSince = now }
        pending.append(contentsOf: frame)
        if pending.count >= Self.coalesceLimit || now &- pendingSince >= Self.coalesceMaxNs {
            flush()
        } else if !flushArmed {
            armFlush()
        }
    }

    /// Queues a low-priority frame (task output) in the bulk lane; it is written after every
    /// control frame sent before the next flush, and only while the socket's write queue is
    /// under `bulkWriteThreshold`. Never closes the connection, whatever the volume: the caller
    /// keeps `bulkQueuedBytes` bounded. Returns the frame's ticket: once `bulkHandedOver`
    /// reaches it the frame is in the socket's queue, and a control frame sent from then on
    /// follows it.
    @discardableResult
    public func sendBulk(_ frame: [UInt8]) -> UInt64 {
        guard !ended, !closing else { return bulkHandedOver }
        bulk.append(frame)
        bulkQueuedBytes += frame.count
        bulkQueuedCount += 1
        if !flushArmed { armFlush() }
        return bulkQueuedCount
    }

    private func armFlush() {
        if flusher == nil { flusher = try? UVPrepare(loop: tcp.loop) }
        guard let flusher else { flush(); return }  // no handle: write at once
        flushArmed = true
        flusher.start { [weak self] in self?.flush() }
    }

    /// Writes every pending frame now.
    public func flush() {
        if flushArmed {
            flushArmed = false
            flusher?.stop()
        }
        guard !ended else { return }
        if !pending.isEmpty {
            guard tls?.isEstablished ?? true else { return }  // sent once TLS is up
            let bytes = pending
            pending.removeAll(keepingCapacity: pending.count <= Self.coalesceLimit)
            writeOut(bytes)
        }
        pumpBulk(limit: Self.bulkWriteThreshold)
    }

    /// Hands bulk frames to the socket while its write queue is under `limit` bytes (at least
    /// one frame when the queue is under it), in one write.
    private func pumpBulk(limit: Int) {
        guard bulkHead < bulk.count, !ended, tls?.isEstablished ?? true else { return }
        var batch: [UInt8] = []
        var frames: UInt64 = 0
        let queued = tcp.stream.writeQueueSize
        while bulkHead < bulk.count, queued + batch.count < limit {
            batch.append(contentsOf: bulk[bulkHead])
            bulk[bulkHead] = []
            bulkHead += 1
            frames += 1
        }
        guard !batch.isEmpty else { return }
        bulkQueuedBytes -= batch.count
        bulkHandedOver += frames
        if bulkHead == bulk.count {
            bulk.removeAll(keepingCapacity: true)
            bulkHead = 0
        } else if bulkHead >= 1024 {
            bulk.removeFirst(bulkHead)
            bulkHead = 0
        }
        writeOut(batch)
        onBulkSpace?()
    }

    /// Whether anything waits on the end of a write: more bulk for the socket, reading paused
    /// for backpressure, an `onWritten` producer. When not, a write that went at once needs no
    /// news.
    var waitsOnWrites: Bool { bulkHead < bulk.count || pausedForBackpressure || onWritten != nil }

    /// `written` on the next loop iteration, never inside the write (its caller may be in the
    /// middle of a flush); one per iteration for writes that went at once.
    func writtenSoon(_ error: UVError?) {
        if error == nil {
            guard !writtenDue else { return }
            writtenDue = true
        }
        tcp.loop.soon { [weak self] in
            guard let self else { return }
            if error == nil { self.writtenDue = false }
            self.written(error)
        }
    }

    /// A write finished: the socket's queue shrank, so more bulk may go.
    func written(_ error: UVError?) {
        guard !ended else { return }
        if let error { end(.error(error)); return }
        if bulkHead < bulk.count { flush() }
        writeCompleted()
        onWritten?()
    }

    public func close(reason: String) {
        end(.local(reason))
    }

    /// Ends the connection with a reset: nothing queued goes out, and what the kernel still
    /// held to send is dropped. For a peer declared lost: an `assign` sent while it was cut off
    /// must not reach it once the path is back (it would run a placement already given up).
    public func abort(reason: String) {
        end(.local(reason), reset: true)
    }

    func end(_ reason: ConnectionEnd, reset: Bool = false) {
        guard !ended else { return }
        // What was sent before a local close still goes out (libuv writes at once when it can).
        if case .local = reason, !reset { flush() }
        ended = true
        pending = []
        bulk = []
        bulkHead = 0
        bulkQueuedBytes = 0
        onBulkSpace = nil
        flusher?.close()
        flusher = nil
        turnTimer?.close()
        turnTimer = nil
        if reset { tcp.closeReset() } else { tcp.close() }
        let callback = onEnd
        onEnd = nil
        onMessage = nil
        onWritten = nil
        onUndecodable = nil
        callback?(reason)
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension FramedConnection: Sendable {}

private func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
