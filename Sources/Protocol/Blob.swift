import Crypto
import Foundation

/// A blob's name: the lowercase hex SHA-256 of its bytes (64 characters). Inputs (packed
/// archives) and artifacts (single files) are both blobs, stored once however many tasks
/// name them.
public enum BlobHash {
    public static let length = 64

    /// Nil when `text` is a well-formed blob name, else why not (peer text escaped).
    public static func problem(with text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count == length,
              bytes.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            return "invalid blob hash \(PeerText.safe(text, limit: 80)) (64 lowercase hex digits of a SHA-256)"
        }
        return nil
    }

    /// Incremental SHA-256 (swift-crypto: BoringSSL's assembly on Linux, over 1 GB/s with
    /// SHA-NI), giving the blob name.
    public struct Hasher {
        private var inner = SHA256()
        public init() {}
        public mutating func update(_ bytes: UnsafeRawBufferPointer) { inner.update(bufferPointer: bytes) }
        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { inner.update(bufferPointer: $0) } }
        /// The lowercase hex name; the hasher must not be used after.
        public func finalize() -> String {
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            var out: [UInt8] = []
            out.reserveCapacity(BlobHash.length)
            for byte in inner.finalize() { out.append(hex[Int(byte >> 4)]); out.append(hex[Int(byte & 15)]) }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// The name of `bytes`.
    public static func of(_ bytes: [UInt8]) -> String {
        var h = Hasher(); h.update(bytes); return h.finalize()
    }
}

/// Sizes of work moved in and out of tasks. Defaults; the scheduler and workers may be
/// configured lower or higher within `Bounds.bytes`.
public enum BlobLimits {
    /// Bytes of one `blobChunk`'s raw frame: 1 MiB, far under the 16 MiB frame cap so a
    /// transfer never holds a connection's control lane for long.
    public static let chunkBytes = 1 << 20
    /// Total packed input of one task (sum of its `inputBlobs` sizes).
    public static let defaultInputBytesPerTask: Int64 = 256 << 20
    /// Total artifact bytes one run may upload.
    public static let defaultArtifactBytesPerTask: Int64 = 256 << 20
    /// Most inputs / artifact patterns / artifacts one task may name.
    public static let maxInputsPerTask = 256
    public static let maxArtifactPatterns = 256
    public static let maxArtifactsPerTask = 10_000
    /// A relative path inside a task's directory (DEST of an input, an artifact's path).
    public static let maxPathBytes = 4096
}

/// One input of a task as the scheduler and workers see it: the blob (a packed archive,
/// `Archive`) unpacked at `dest`, a relative path inside the task's directory.
public struct InputRef: Codable, Sendable, Equatable, Hashable {
    public var dest: String
    public var sha256: String
    /// The blob's size in bytes (the packed archive).
    public var size: Int64
    public init(dest: String, sha256: String, size: Int64) { self.dest = dest; self.sha256 = sha256; self.size = size }
}

/// A file a run left behind and the worker uploaded: `path` relative to the task's directory.
/// `kind` is nil for a file matched by an `artifacts` pattern, `gitBundle` for the bundle of
/// a `repo` task's new commits.
public struct ArtifactRef: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var sha256: String
    public var kind: String?
    /// The file's permission bits on the worker (e.g. 493, 0o755), which `swarm fetch` gives
    /// the fetched file (a built binary stays executable); null when unknown. Readers use
    /// only `mode & 0o777`.
    public var mode: Int?
    public init(path: String, size: Int64, sha256: String, kind: String? = nil, mode: Int? = nil) {
        self.path = path; self.size = size; self.sha256 = sha256; self.kind = kind; self.mode = mode
    }
    // `kind` and `mode` are null, not missing, when absent (every key always there, as TaskInfo's).
    enum CodingKeys: String, CodingKey { case path, size, sha256, kind, mode }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path); try c.encode(size, forKey: .size)
        try c.encode(sha256, forKey: .sha256); try c.encode(kind, forKey: .kind); try c.encode(mode, forKey: .mode)
    }
}

/// A matched file the worker did not upload, and why (over a limit, not a regular file...).
public struct SkippedArtifact: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64?
    public var reason: String
    public init(path: String, size: Int64?, reason: String) { self.path = path; self.size = size; self.reason = reason }
    // `size` is null, not missing, when unknown.
    enum CodingKeys: String, CodingKey { case path, size, reason }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path); try c.encode(size, forKey: .size); try c.encode(reason, forKey: .reason)
    }
}

/// What a `repo` task's worktree ended with.
public struct GitOutcome: Codable, Sendable, Equatable {
    /// `swarm/ID`.
    public var branch: String
    /// The commit `ref` resolved to when the worktree was made.
    public var base: String
    /// The branch's last commit after the run (and after committing uncommitted changes).
    public var head: String
    /// Commits from base to head (0: nothing new, no bundle).
    public var commits: Int
    public init(branch: String, base: String, head: String, commits: Int) {
        self.branch = branch; self.base = base; self.head = head; self.commits = commits
    }
}

extension Message {
    /// Sender -> scheduler (a client with inputs, a worker with artifacts): "I will upload
    /// this blob". Answered by `blobAccept` or an `error` frame (bad hash, over a limit, disk).
    public struct BlobOffer: Codable, Sendable, Equatable {
        public var requestId: Int
        public var sha256: String
        public var size: Int64
        public init(requestId: Int, sha256: String, size: Int64) { self.requestId = requestId; self.sha256 = sha256; self.size = size }
    }
    /// Scheduler -> sender: send from `offset`. `offset == size`: the blob is held already,
    /// send nothing (that is the dedup); otherwise `blobChunk`s follow, then `blobStored`.
    public struct BlobAccept: Codable, Sendable, Equatable {
        public var requestId: Int
        public var sha256: String
        public var offset: Int64
        public init(requestId: Int, sha256: String, offset: Int64) { self.requestId = requestId; self.sha256 = sha256; self.offset = offset }
    }
    /// A piece of a blob, either way. On the wire: this JSON header frame, then (when
    /// `length > 0`) ONE raw frame of exactly `length` bytes that is not JSON. `data` holds
    /// those bytes after decoding and is never part of the JSON. Chunks of one transfer come
    /// in order, each starting where the last ended; `length <= BlobLimits.chunkBytes`.
    public struct BlobChunk: Codable, Sendable, Equatable {
        public var requestId: Int
        public var sha256: String
        public var offset: Int64
        public var length: Int
        /// The whole blob's size.
        public var total: Int64
        public var data: [UInt8]
        public init(requestId: Int, sha256: String, offset: Int64, total: Int64, data: [UInt8]) {
            self.requestId = requestId; self.sha256 = sha256; self.offset = offset; self.length = data.count
            self.total = total; self.data = data
        }
        enum CodingKeys: String, CodingKey { case requestId, sha256, offset, length, total }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            requestId = try c.decode(Int.self, forKey: .requestId)
            sha256 = try c.decode(String.self, forKey: .sha256)
            offset = try c.decode(Int64.self, forKey: .offset)
            length = try c.decode(Int.self, forKey: .length)
            total = try c.decode(Int64.self, forKey: .total)
            data = []
        }
    }
    /// Scheduler -> sender: the blob is whole, its hash checked, and durable (fsynced).
    public struct BlobStored: Codable, Sendable, Equatable {
        public var requestId: Int
        public var sha256: String
        public init(requestId: Int, sha256: String) { self.requestId = requestId; self.sha256 = sha256 }
    }
    /// Worker or client -> scheduler: send me this blob from `offset`; answered by
    /// `blobChunk`s (the last one ends at `total`) or an `error` frame (`unknownBlob`).
    public struct BlobGet: Codable, Sendable, Equatable {
        public var requestId: Int
        public var sha256: String
        public var offset: Int64
        public init(requestId: Int, sha256: String, offset: Int64 = 0) { self.requestId = requestId; self.sha256 = sha256; self.offset = offset }
    }
}
