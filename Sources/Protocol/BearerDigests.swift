import Crypto

/// The scheduler's reading tokens (cluster, submit, read) as a worker knows them: by digest,
/// sent in `welcome` to a worker (`Welcome.readerDigests`), so the worker's `/metrics` takes the
/// same bearer tokens as the scheduler's without the worker ever holding them (issue 16 item 2).
/// A digest is SHA-256 over a label and the token as written, 32 bytes, hex on the wire; it
/// reveals nothing of a random token (a weak one could be guessed offline from it, as from a
/// recorded handshake: use random tokens).
public struct BearerDigests: Sendable, Equatable {
    /// At most this many digests are kept from a `welcome` (the ring holds at most 4 tokens).
    public static let maxCount = 8
    private static let label = Array("swarm-http-bearer-v1|".utf8)

    public private(set) var digests: [[UInt8]] = []

    public init() {}

    /// From `welcome`'s hex digests: only well-formed ones (64 hex digits), the first `maxCount`.
    public init(hex: [String]?) {
        digests = (hex ?? []).prefix(Self.maxCount).compactMap(Self.decode)
    }

    /// The digest of a token as written (what an HTTP client sends after `Bearer `).
    public static func digest(of token: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: label + token))
    }

    /// Hex of `digest(of:)`, for `welcome`.
    public static func hex(of token: ClusterToken) -> String {
        Hex.lower(digest(of: Array(token.text.utf8)))
    }

    /// Whether `bearer` is one of the tokens: its digest is compared with every digest, each
    /// in time independent of where the first difference is.
    public func contains(bearer: [UInt8]) -> Bool {
        guard !digests.isEmpty else { return false }
        let given = Self.digest(of: bearer)
        var matched = false
        for digest in digests {
            var difference: UInt8 = 0
            for (a, b) in zip(given, digest) { difference |= a ^ b }
            if difference == 0 { matched = true }
        }
        return matched
    }

    private static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(chars[i]), let low = nibble(chars[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
