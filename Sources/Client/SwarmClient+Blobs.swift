import SwarmProtocol
import SwarmTransport
#if canImport(Glibc)
import Glibc
#endif

/// Blob upload and download (`blobOffer`/`blobChunk`/`blobGet`), blocking like every call of
/// the client. Files are read and written 1 MiB at a time, never whole.
extension SwarmClient {
    /// Bytes of chunks queued unsent at most while uploading.
    static let uploadQueueCap = 4 * BlobLimits.chunkBytes
    /// A transfer making no progress for this long fails.
    static let blobStallSeconds = 60.0

    /// Uploads the file at `path`, whose SHA-256 and size the caller computed. Returns once
    /// the scheduler holds the blob (`blobStored`, or `blobAccept` saying it held it already).
    /// A file that changed meanwhile is refused by the scheduler's hash check.
    public func uploadBlob(file path: String, sha256: String, size: Int64) throws(ClientError) {
        try ensureConnected()
        let id = nextRequestId
        nextRequestId += 1
        streams[id] = []
        defer { streams[id] = nil }
        connection?.send(.blobOffer(.init(requestId: id, sha256: sha256, size: size)))
        let accept = try nextBlobReply(id, what: "for the scheduler to accept blob \(sha256)")
        guard case .blobAccept(let accepted) = accept, accepted.sha256 == sha256 else {
            throw .server(.unexpected, "unexpected reply to blobOffer: \(accept.type)")
        }
        if accepted.offset == size { return }
        guard accepted.offset >= 0, accepted.offset < size else {
            throw .server(.badBlob, "the scheduler asked for blob \(sha256) from offset \(accepted.offset) of \(size)")
        }
        try sendBlobFile(path, requestId: id, sha256: sha256, size: size, from: accepted.offset)
        let stored = try nextBlobReply(id, what: "for the scheduler to store blob \(sha256)")
        guard case .blobStored = stored else { throw .server(.unexpected, "unexpected reply to an upload: \(stored.type)") }
    }

    /// Downloads blob `sha256` of `size` bytes to `path`: written to `path.part`, its size
    /// and hash checked, fsynced, then renamed to `path`. Nothing is left at `path` on failure.
    public func downloadBlob(_ sha256: String, size: Int64, to path: String) throws(ClientError) {
        try ensureConnected()
        let writer: BlobWriter
        do { writer = try BlobWriter(tempPath: path + ".part", sha256: sha256, size: size) } catch {
            throw .server(.badBlob, "\(error)")
        }
        var sealed = false
        defer { if !sealed { writer.discard() } }
        let id = nextRequestId
        nextRequestId += 1
        streams[id] = []
        defer { streams[id] = nil }
        connection?.send(.blobGet(.init(requestId: id, sha256: sha256, offset: 0)))
        var done = false
        while !done {
            try runUntil(timeoutSeconds: Self.blobStallSeconds, what: "downloading blob \(sha256)") { streams[id]?.isEmpty == false }
            let arrived = streams[id] ?? []
            streams[id] = []
            for message in arrived {
                switch message {
                case .blobChunk(let chunk):
                    guard chunk.sha256 == sha256, chunk.total == size, chunk.offset == writer.written else {
                        throw .server(.badBlob, "blob \(sha256): chunk at \(chunk.offset) of \(chunk.total) bytes; expected \(writer.written) of \(size)")
                    }
                    do { try writer.append(chunk.data) } catch { throw .server(.badBlob, "\(error)") }
                    done = writer.written == size
                case .error(let e):
                    throw .server(e.code, e.reason)
                default:
                    throw .server(.unexpected, "unexpected reply to blobGet: \(message.type)")
                }
            }
        }
        do {
            let fd = try writer.seal()
            sealed = true
            if let problem = BlobFile.makeDurable(fd: fd, temp: writer.tempPath, final: path) {
                throw BlobFileError(problem)
            }
        } catch {
            throw .server(.badBlob, "blob \(sha256): \(error)")
        }
    }

    /// The next reply to blob request `id` (an `error` frame is thrown).
    private func nextBlobReply(_ id: Int, what: String) throws(ClientError) -> Message {
        try runUntil(timeoutSeconds: Self.blobStallSeconds, what: "waiting \(what)") { streams[id]?.isEmpty == false }
        let reply = streams[id]!.removeFirst()
        if case .error(let e) = reply { throw .server(e.code, e.reason) }
        return reply
    }

    /// Sends the file from `offset` in chunks, keeping at most `uploadQueueCap` bytes queued.
    private func sendBlobFile(_ path: String, requestId: Int, sha256: String, size: Int64, from offset: Int64) throws(ClientError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .server(.badBlob, BlobFileError(path, errno).description) }
        defer { close(fd) }
        var next = offset
        while next < size {
            try runUntil(timeoutSeconds: Self.blobStallSeconds, what: "uploading blob \(sha256)") {
                (connection?.bulkQueuedBytes ?? 0) < Self.uploadQueueCap || streams[requestId]?.isEmpty == false
            }
            // The scheduler refused on the way (an error frame): stop sending.
            if let reply = streams[requestId]?.first, case .error(let e) = reply { throw .server(e.code, e.reason) }
            guard let connection else { throw .connectionLost("while uploading blob \(sha256)") }
            while next < size, connection.bulkQueuedBytes < Self.uploadQueueCap {
                let count = Int(min(Int64(BlobLimits.chunkBytes), size - next))
                let bytes: [UInt8]
                do { bytes = try BlobFile.read(fd: fd, offset: next, count: count, path: path) } catch {
                    throw .server(.badBlob, "\(error)")
                }
                connection.sendChunk(.init(requestId: requestId, sha256: sha256, offset: next, total: size, data: bytes))
                next += Int64(count)
            }
        }
    }
}
