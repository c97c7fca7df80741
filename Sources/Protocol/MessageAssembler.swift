/// Why a `blobChunk` header or its raw frame breaks the wire rules. The connection must end:
/// after a bad pairing there is no telling which frame is JSON and which is data.
public struct ChunkError: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Turns frame payloads into messages, pairing each `blobChunk` header with the raw frame
/// that follows it (see `BlobChunk`). Pure: payloads in, messages out.
///
/// The payload after a chunk header with `length > 0` is taken as that chunk's bytes,
/// whatever it holds: a payload of another length is refused. A refused header or raw frame
/// leaves the assembler failed (the connection is to be closed).
public struct MessageAssembler: Sendable {
    /// What one payload gave.
    public enum Output: Equatable, Sendable {
        /// A whole message (a chunk with its bytes in `data`).
        case message(Message)
        /// A chunk header: its raw frame comes next.
        case awaitingData
    }

    /// What went wrong with one payload.
    public enum Failure: Error, Equatable, Sendable {
        /// A JSON payload that is not a message (the caller may decide to go on).
        case undecodable(MessageError)
        /// The chunk pairing is broken: close the connection.
        case chunk(ChunkError)
    }

    private var header: Message.BlobChunk?
    private var failed: ChunkError?

    public init() {}

    /// Whether the next payload is a chunk's raw bytes.
    public var awaitingData: Bool { header != nil }

    /// Takes the next payload.
    public mutating func receive(_ payload: [UInt8]) throws(Failure) -> Output {
        if let failed { throw .chunk(failed) }
        if var chunk = header {
            header = nil
            guard payload.count == chunk.length else {
                return try fail("blobChunk raw frame of \(payload.count) bytes; its header said \(chunk.length)")
            }
            chunk.data = payload
            return .message(.blobChunk(chunk))
        }
        let message: Message
        do { message = try MessageCodec.decode(payload) } catch { throw .undecodable(error) }
        guard case .blobChunk(let chunk) = message else { return .message(message) }
        if let problem = Self.headerProblem(chunk) { return try fail(problem) }
        if chunk.length == 0 { return .message(message) }
        header = chunk
        return .awaitingData
    }

    /// Nil when a chunk header is within the rules, else why not. Every number is bounded:
    /// `0 <= offset`, `offset + length <= total <= Bounds.bytes`, `0 <= length <=
    /// BlobLimits.chunkBytes`, and `length == 0` only for an empty blob.
    public static func headerProblem(_ chunk: Message.BlobChunk) -> String? {
        if let problem = BlobHash.problem(with: chunk.sha256) { return "blobChunk: \(problem)" }
        guard chunk.length >= 0, chunk.length <= BlobLimits.chunkBytes else {
            return "blobChunk length \(chunk.length) is outside 0...\(BlobLimits.chunkBytes)"
        }
        guard chunk.total >= 0, chunk.total <= Int64(Bounds.bytes.upperBound) else {
            return "blobChunk total \(chunk.total) is outside 0...\(Bounds.bytes.upperBound)"
        }
        guard chunk.offset >= 0, chunk.offset <= chunk.total - Int64(chunk.length) else {
            return "blobChunk offset \(chunk.offset) + length \(chunk.length) is outside the blob's \(chunk.total) bytes"
        }
        if chunk.length == 0 && chunk.total != 0 { return "blobChunk of 0 bytes in a blob of \(chunk.total) bytes" }
        return nil
    }

    private mutating func fail(_ reason: String) throws(Failure) -> Output {
        failed = ChunkError(reason)
        throw .chunk(ChunkError(reason))
    }
}

extension MessageAssembler {
    /// Both frames of a chunk (header frame + raw frame; the header alone for an empty
    /// chunk), as one buffer: sent as one unit, so nothing can come between them.
    public static func frames(_ chunk: Message.BlobChunk) -> [UInt8] {
        var header = chunk
        header.length = chunk.data.count
        let json = MessageCodec.encode(.blobChunk(header))
        var out: [UInt8] = []
        out.reserveCapacity(2 * Frame.headerSize + json.count + chunk.data.count)
        appendFrame(json, to: &out)
        if !chunk.data.isEmpty { appendFrame(chunk.data, to: &out) }
        return out
    }

    /// Both frames of a chunk whose bytes are `data`, without building a `BlobChunk` first.
    public static func frames(requestId: Int, sha256: String, offset: Int64, total: Int64,
                              data: UnsafeRawBufferPointer) -> [UInt8] {
        let header = Message.BlobChunk(requestId: requestId, sha256: sha256, offset: offset, total: total, data: [])
        var withLength = header
        withLength.length = data.count
        let json = MessageCodec.encode(.blobChunk(withLength))
        var out: [UInt8] = []
        out.reserveCapacity(2 * Frame.headerSize + json.count + data.count)
        appendFrame(json, to: &out)
        if data.count > 0 { appendFrame(data, to: &out) }
        return out
    }

    private static func appendFrame(_ payload: some Collection<UInt8>, to out: inout [UInt8]) {
        let length = UInt32(payload.count)
        out.append(UInt8(truncatingIfNeeded: length >> 24))
        out.append(UInt8(truncatingIfNeeded: length >> 16))
        out.append(UInt8(truncatingIfNeeded: length >> 8))
        out.append(UInt8(truncatingIfNeeded: length))
        out.append(contentsOf: payload)
    }
}
