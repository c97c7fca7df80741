import SwarmProtocol

/// The rules of blob transfers with the scheduler's peers (clients and workers), per
/// connection `K`: one upload at a time, at most `maxDownloads` downloads at a time, chunks in
/// order and within the offered size. Pure: events in, directives out; what is held comes
/// from the caller (`held`), the bytes never pass through here.
struct BlobExchange<K: Hashable> {
    struct Limits: Sendable {
        /// Downloads one connection may have going at once (more are refused).
        var maxDownloads = 4
        /// The largest blob accepted.
        var maxBlobBytes = Int64(Bounds.bytes.upperBound)
        /// Disk space uploads never take: the scheduler's own state (SQLite, logs) needs it,
        /// and a full disk stops the scheduler. At most this, and at most a tenth of the file
        /// system (a small disk is not refused every upload).
        var reserveBytes: Int64 = 256 << 20
    }

    /// The disk the store is on, as the shell measured it at an offer.
    struct Disk: Equatable {
        var free: Int64
        var total: Int64
    }

    /// One upload: what was offered and how far it has come.
    struct Upload: Equatable {
        var requestId: Int
        var sha256: String
        var size: Int64
        var received: Int64 = 0
        /// All bytes are in; the store is checking and syncing them.
        var finishing = false
        /// When the offer or the last chunk came (monotonic ms).
        var lastActivityMs: UInt64 = 0
    }

    /// An upload with no chunk for this long is abandoned (its disk reservation freed): an
    /// offer followed by silence would otherwise hold its promise until the connection ends,
    /// and one peer could make every other upload hear "no room".
    static var uploadIdleMs: UInt64 { 60_000 }

    /// One download: the next byte to send.
    struct Download: Equatable {
        var requestId: Int
        var sha256: String
        var next: Int64
        var total: Int64
    }

    /// A piece of a download to read from the store and send.
    struct Piece: Equatable {
        var requestId: Int
        var sha256: String
        var offset: Int64
        var length: Int
        var total: Int64
    }

    enum Directive: Equatable {
        case send(K, Message)
        /// Open a new temporary file for this connection's upload.
        case beginUpload(K, sha256: String, size: Int64)
        /// Append the chunk's bytes to this connection's upload.
        case write(K, Message.BlobChunk)
        /// Every byte is in: check the hash, make the blob durable, then report `finished`.
        case finishUpload(K)
        /// Drop this connection's temporary file.
        case abortUpload(K)
        /// Store an empty blob (no chunk ever comes for one).
        case storeEmpty(K, requestId: Int, sha256: String)
        /// Downloads are waiting for room in this connection's bulk lane.
        case pump(K)
    }

    var limits = Limits()
    private(set) var uploads: [K: Upload] = [:]
    private(set) var downloads: [K: [Download]] = [:]
    private var cursor: [K: Int] = [:]

    init(limits: Limits = Limits()) { self.limits = limits }

    static var emptyHash: String { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }

    /// Bytes the uploads going on still have to write: already promised disk space.
    var promisedBytes: Int64 { uploads.values.reduce(0) { $0 + ($1.size - $1.received) } }

    /// `blobOffer`. `held`: the size of the blob if the store holds it. `disk`: the store's
    /// file system (nil: unknown, not checked); a new upload is taken only if it fits in the
    /// free space beside what the uploads going on still write, keeping the reserve.
    mutating func offer(_ key: K, _ offer: Message.BlobOffer, held: Int64?, disk: Disk? = nil, nowMs: UInt64 = 0) -> [Directive] {
        let id = offer.requestId
        if let problem = BlobHash.problem(with: offer.sha256) { return [refuse(key, id, problem)] }
        guard offer.size >= 0, offer.size <= limits.maxBlobBytes else {
            return [refuse(key, id, "blob size \(offer.size) is outside 0...\(limits.maxBlobBytes)")]
        }
        if let current = uploads[key] {
            return [refuse(key, id, "an upload (blob \(current.sha256.prefix(12))…) is still going on this connection: one at a time")]
        }
        if let held {
            guard held == offer.size else {
                return [refuse(key, id, "blob \(offer.sha256) is held with \(held) bytes, not \(offer.size)")]
            }
            return [.send(key, .blobAccept(.init(requestId: id, sha256: offer.sha256, offset: held)))]
        }
        if offer.size == 0 {
            guard offer.sha256 == Self.emptyHash else {
                return [refuse(key, id, "blob \(offer.sha256) of 0 bytes: an empty blob's hash is \(Self.emptyHash)")]
            }
            return [.storeEmpty(key, requestId: id, sha256: offer.sha256)]
        }
        if let disk {
            let reserve = min(limits.reserveBytes, disk.total / 10)
            let room = disk.free - reserve - promisedBytes
            guard offer.size <= room else {
                return [.send(key, .error(.init(code: .internalError, reason:
                    "the scheduler's disk has no room for blob \(offer.sha256.prefix(12))… (\(offer.size) bytes): \(max(0, room)) bytes left for uploads (\(disk.free) free, \(reserve) kept for its state, \(promisedBytes) promised to uploads going on)", requestId: id)))]
            }
        }
        uploads[key] = Upload(requestId: id, sha256: offer.sha256, size: offer.size, lastActivityMs: nowMs)
        return [.beginUpload(key, sha256: offer.sha256, size: offer.size),
                .send(key, .blobAccept(.init(requestId: id, sha256: offer.sha256, offset: 0)))]
    }

    /// A `blobChunk` with its bytes (headers are checked by `MessageAssembler` already).
    mutating func chunk(_ key: K, _ chunk: Message.BlobChunk, nowMs: UInt64 = 0) -> [Directive] {
        guard var upload = uploads[key], !upload.finishing, upload.requestId == chunk.requestId else {
            return [refuse(key, chunk.requestId, "blobChunk for request \(chunk.requestId), which is not this connection's upload")]
        }
        guard chunk.sha256 == upload.sha256, chunk.total == upload.size, chunk.offset == upload.received,
              chunk.data.count == chunk.length, chunk.length > 0 else {
            uploads[key] = nil
            return [.abortUpload(key),
                    refuse(key, chunk.requestId, "blobChunk at offset \(chunk.offset) of \(chunk.total) for \(chunk.sha256.prefix(12))…; expected offset \(upload.received) of \(upload.size) for \(upload.sha256.prefix(12))…")]
        }
        upload.received += Int64(chunk.length)
        upload.lastActivityMs = nowMs
        var out: [Directive] = [.write(key, chunk)]
        if upload.received == upload.size {
            upload.finishing = true
            out.append(.finishUpload(key))
        }
        uploads[key] = upload
        return out
    }

    /// Uploads that had no chunk for `idleMs` end: the partial file goes, the sender hears
    /// why. An upload whose bytes are all in (being checked and synced) is never idle.
    mutating func abandonIdleUploads(nowMs: UInt64, idleMs: UInt64 = Self.uploadIdleMs) -> [Directive] {
        var out: [Directive] = []
        for (key, upload) in uploads where !upload.finishing && nowMs >= upload.lastActivityMs &+ idleMs {
            uploads[key] = nil
            out.append(.abortUpload(key))
            out.append(refuse(key, upload.requestId, "upload of blob \(upload.sha256.prefix(12))… had no chunk for \(idleMs / 1000) s: abandoned (offer it again to restart)"))
        }
        return out
    }

    /// The store wrote, checked and synced the upload (`problem` nil), or could not.
    mutating func finished(_ key: K, problem: String?) -> [Directive] {
        guard let upload = uploads.removeValue(forKey: key) else { return [] }
        if let problem { return [refuse(key, upload.requestId, problem)] }
        return [.send(key, .blobStored(.init(requestId: upload.requestId, sha256: upload.sha256)))]
    }

    /// Writing the upload failed (disk full...): the upload ends with the reason.
    mutating func writeFailed(_ key: K, problem: String) -> [Directive] {
        guard let upload = uploads.removeValue(forKey: key) else { return [] }
        return [.abortUpload(key), .send(key, .error(.init(code: .internalError, reason: problem, requestId: upload.requestId)))]
    }

    /// `blobGet`. `held`: the size of the blob if the store holds it.
    mutating func get(_ key: K, _ get: Message.BlobGet, held: Int64?) -> [Directive] {
        let id = get.requestId
        if let problem = BlobHash.problem(with: get.sha256) { return [refuse(key, id, problem)] }
        guard let held else {
            return [.send(key, .error(.init(code: .unknownBlob, reason: "blob \(get.sha256) is not held by the scheduler", requestId: id)))]
        }
        // A chunk of 0 bytes is only an empty blob's: nothing past the last byte can be sent.
        guard get.offset >= 0, get.offset < held || get.offset == 0 else {
            return [refuse(key, id, "blobGet offset \(get.offset) is outside the blob's \(held) bytes")]
        }
        var list = downloads[key] ?? []
        guard list.count < limits.maxDownloads else {
            return [refuse(key, id, "\(list.count) downloads are going on this connection already; at most \(limits.maxDownloads) at a time")]
        }
        list.append(Download(requestId: id, sha256: get.sha256, next: get.offset, total: held))
        downloads[key] = list
        return [.pump(key)]
    }

    /// The next piece to send on `key`, taking turns between its downloads; nil when all are
    /// sent. A download whose last piece this is ends here.
    mutating func nextPiece(_ key: K) -> Piece? {
        guard var list = downloads[key], !list.isEmpty else { return nil }
        let i = (cursor[key] ?? 0) % list.count
        var d = list[i]
        let length = Int(min(Int64(BlobLimits.chunkBytes), d.total - d.next))
        let piece = Piece(requestId: d.requestId, sha256: d.sha256, offset: d.next, length: length, total: d.total)
        d.next += Int64(length)
        if d.next >= d.total {
            list.remove(at: i)
            cursor[key] = i
        } else {
            list[i] = d
            cursor[key] = i + 1
        }
        downloads[key] = list.isEmpty ? nil : list
        if list.isEmpty { cursor[key] = nil }
        return piece
    }

    /// A download could not be read: it ends with the reason.
    mutating func readFailed(_ key: K, requestId: Int, problem: String) -> [Directive] {
        downloads[key]?.removeAll { $0.requestId == requestId }
        if downloads[key]?.isEmpty == true { downloads[key] = nil }
        return [.send(key, .error(.init(code: .internalError, reason: problem, requestId: requestId)))]
    }

    /// The connection ended: its upload is dropped (nothing partial is held), its downloads end.
    mutating func disconnected(_ key: K) -> [Directive] {
        downloads[key] = nil
        cursor[key] = nil
        guard uploads.removeValue(forKey: key) != nil else { return [] }
        return [.abortUpload(key)]
    }

    private func refuse(_ key: K, _ requestId: Int, _ reason: String) -> Directive {
        .send(key, .error(.init(code: .badBlob, reason: PeerText.safe(reason, limit: 400), requestId: requestId)))
    }
}
