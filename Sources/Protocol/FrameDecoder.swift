/// Why a byte stream is not a valid sequence of frames. Raised before any payload memory is
/// allocated, so a hostile length header costs nothing.
public enum FrameError: Error, Equatable, CustomStringConvertible, Sendable {
    case zeroLength
    case tooLarge(length: UInt32, limit: Int)

    public var description: String {
        switch self {
        case .zeroLength: return "frame length 0 (a frame carries one JSON object)"
        case let .tooLarge(length, limit): return "frame length \(length) exceeds the limit of \(limit) bytes"
        }
    }
}

/// Frame = 4-byte big-endian payload length + payload (one UTF-8 JSON object).
public enum Frame {
    public static let defaultMaxPayload = 16 * 1024 * 1024
    public static let headerSize = 4

    /// Header and payload, ready to write.
    public static func encode(_ payload: some Collection<UInt8>) -> [UInt8] {
        let length = UInt32(payload.count)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + payload.count)
        bytes.append(UInt8(truncatingIfNeeded: length >> 24))
        bytes.append(UInt8(truncatingIfNeeded: length >> 16))
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length))
        bytes.append(contentsOf: payload)
        return bytes
    }
}

/// A pure frame decoder: feed it byte chunks of any size, take complete payloads out.
///
/// It never touches a socket. After an error it stays failed: the connection must be closed,
/// since there is no way to find the next frame boundary.
public struct FrameDecoder: Sendable {
    /// The largest payload accepted; may be raised once a peer is trusted (after its handshake).
    public var maxPayload: Int { didSet { precondition(maxPayload > 0) } }
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var failure: FrameError?

    public init(maxPayload: Int = Frame.defaultMaxPayload) {
        precondition(maxPayload > 0)
        self.maxPayload = maxPayload
    }

    /// Bytes held that do not yet form a whole frame.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Appends received bytes.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard failure == nil else { return }
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete payload, nil when more bytes are needed; throws on a bad length.
    public mutating func next() throws(FrameError) -> [UInt8]? {
        if let failure { throw failure }
        guard bufferedByteCount >= Frame.headerSize else { compact(); return nil }
        let h = readIndex
        let length = UInt32(buffer[h]) << 24 | UInt32(buffer[h + 1]) << 16
            | UInt32(buffer[h + 2]) << 8 | UInt32(buffer[h + 3])
        if length == 0 { return try fail(.zeroLength) }
        if Int(length) > maxPayload { return try fail(.tooLarge(length: length, limit: maxPayload)) }
        let total = Frame.headerSize + Int(length)
        guard bufferedByteCount >= total else { compact(); return nil }
        let payload = Array(buffer[(h + Frame.headerSize)..<(h + total)])
        readIndex += total
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            readIndex = 0
        }
        return payload
    }

    /// Every complete payload now available.
    public mutating func drain() throws(FrameError) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = try next() { frames.append(frame) }
        return frames
    }

    private mutating func fail(_ error: FrameError) throws(FrameError) -> [UInt8]? {
        failure = error
        buffer = []
        readIndex = 0
        throw error
    }

    /// Drops consumed bytes once they dominate the buffer, keeping appends amortised O(1).
    private mutating func compact() {
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
    }
}
