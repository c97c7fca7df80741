/// Keeps multi-byte UTF-8 characters whole across the reads of one stream.
///
/// A pipe read ends wherever the kernel's buffer did, often inside a character ("€" is 3
/// bytes). Decoded read by read, both halves would become U+FFFD. `take` returns the bytes up
/// to the last complete character and keeps the incomplete end (at most 3 bytes) for the next
/// read; `finish` returns what is left at the end of the stream. Bytes that are not UTF-8 at
/// all pass through unchanged (they decode as U+FFFD, which is what they are).
public struct UTF8Carry: Sendable {
    private var held: [UInt8] = []

    public init() {}

    /// Bytes held back so far (0 to 3).
    public var heldCount: Int { held.count }

    /// `bytes` after what was held, up to the last character that is complete.
    public mutating func take(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var all = held
        all.append(contentsOf: bytes)
        let keep = Self.incompleteSuffix(all)
        held = Array(all[(all.count - keep)...])
        all.removeLast(keep)
        return all
    }

    public mutating func take(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { take($0) }
    }

    /// The held bytes (an incomplete character at the end of the stream), emptied.
    public mutating func finish() -> [UInt8] {
        defer { held = [] }
        return held
    }

    /// How many bytes at the end of `bytes` are the start of a character still incomplete:
    /// a lead byte announcing more continuation bytes than follow it.
    public static func incompleteSuffix(_ bytes: [UInt8]) -> Int {
        // A character has at most 4 bytes: its lead byte is among the last 3 if it is cut.
        for back in stride(from: 1, through: min(3, bytes.count), by: 1) {
            let byte = bytes[bytes.count - back]
            if isContinuation(byte) { continue }
            let length = sequenceLength(lead: byte)
            return length > back ? back : 0
        }
        return 0
    }

    /// The largest index `<= index` that starts a character in `bytes`: a cut there keeps
    /// characters whole. Moves back over at most 3 continuation bytes; on bytes that are not
    /// UTF-8 (more continuation bytes in a row) it returns `index` itself. May return 0.
    public static func boundary(_ bytes: some RandomAccessCollection<UInt8>, atOrBefore index: Int) -> Int {
        guard index > 0, index < bytes.count else { return max(0, min(index, bytes.count)) }
        var cut = index
        while cut > 0, index - cut < 3, isContinuation(bytes[bytes.index(bytes.startIndex, offsetBy: cut)]) { cut -= 1 }
        return isContinuation(bytes[bytes.index(bytes.startIndex, offsetBy: cut)]) ? index : cut
    }

    /// Bytes at the start of `bytes` that continue a character begun before it (0 to 3).
    public static func leadingContinuations(_ bytes: some Collection<UInt8>) -> Int {
        var count = 0
        for byte in bytes.prefix(3) {
            guard isContinuation(byte) else { break }
            count += 1
        }
        return count
    }

    static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    /// Bytes of the character that `lead` starts; 1 for ASCII and for bytes that start none.
    static func sequenceLength(lead: UInt8) -> Int {
        switch lead {
        case 0xC2...0xDF: 2
        case 0xE0...0xEF: 3
        case 0xF0...0xF4: 4
        default: 1
        }
    }
}
