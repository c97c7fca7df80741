/// The last `capacity` bytes of a task's output (stdout and stderr interleaved as they came).
/// The original coordinator kept the FIRST 50k characters; the end is where errors are.
public struct OutputTail: Sendable {
    public let capacity: Int
    private var ring: [UInt8]
    private var start = 0
    public private(set) var count = 0
    public private(set) var totalBytes = 0

    public init(capacity: Int = 64 * 1024) {
        precondition(capacity > 0)
        self.capacity = capacity
        ring = [UInt8](repeating: 0, count: capacity)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        totalBytes += bytes.count
        var slice = bytes[...]
        if slice.count > capacity { slice = slice.suffix(capacity) }
        for byte in slice {
            let end = (start + count) % capacity
            ring[end] = byte
            if count < capacity { count += 1 } else { start = (start + 1) % capacity }
        }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public var bytes: [UInt8] {
        (0..<count).map { ring[(start + $0) % capacity] }
    }

    /// As text; a multi-byte character cut at the start becomes U+FFFD.
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}
