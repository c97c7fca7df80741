/// Lowercase hexadecimal, two digits a byte: what proofs, task credentials, nonces and key
/// fingerprints are written as.
///
/// Why not `String(format: "%02x")` per byte: Foundation's formatter (a CFString, a va_list,
/// dynamic casts) cost ~11,000 instructions a byte; a task's credential (32 bytes), made by the
/// scheduler for every task of a cluster with a token, was 338,000 instructions of its ~1 M per
/// task (callgrind), more than TLS itself. This is a few instructions a byte.
public enum Hex {
    /// `bytes` as lowercase hex (2 x their count characters, ASCII).
    public static func lower(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (i, byte) in bytes.enumerated() {
                out[2 * i] = digit(byte >> 4)
                out[2 * i + 1] = digit(byte & 0x0f)
            }
            return bytes.count * 2
        }
    }

    public static func lower<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { lower($0) }
    }

    @inline(__always)
    private static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
}
