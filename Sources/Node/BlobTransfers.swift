import Logging
import SwarmProtocol
import SwarmTransport
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// What `BlobTransfers` needs of the connection to the scheduler (a `FramedConnection`, or a
/// fake in tests).
protocol BlobLink: AnyObject {
    func send(_ message: Message)
    @discardableResult func sendChunk(_ chunk: Message.BlobChunk) -> UInt64
    var bulkQueuedBytes: Int { get }
}

extension FramedConnection: BlobLink {}

/// The worker's blob transfers with the scheduler: fetching inputs (`blobGet`) and uploading
/// artifacts (`blobOffer` + chunks). Requests wait while the worker is not registered and
/// (re)start when it is: a fetch resumes from the bytes it has, an upload is offered again.
/// One upload at a time and at most `maxFetches` fetches at a time (the scheduler's rule);
/// a transfer with no progress for `stallMs` while connected fails. Loop thread only.
final class BlobTransfers {
    typealias Done = (String?) -> Void

    private final class Transfer {
        let sha256: String
        let size: Int64
        let path: String
        let isUpload: Bool
        let done: Done
        var requestId = 0
        var active = false
        var lastProgressMs: UInt64 = 0
        /// Fetch: the `.part` file; upload: the next offset to send (nil until accepted).
        var writer: BlobWriter?
        var next: Int64?
        var fd: Int32 = -1
        init(sha256: String, size: Int64, path: String, isUpload: Bool, done: @escaping Done) {
            self.sha256 = sha256; self.size = size; self.path = path; self.isUpload = isUpload; self.done = done
        }
    }

    private let loop: EventLoop
    private let logger: Logger
    private var link: BlobLink?
    private var waiting: [Transfer] = []
    private var active: [Int: Transfer] = [:]
    private var nextRequestId = 1
    private var timer: UVTimer?
    private var jobs: BackgroundJobs?
    var maxFetches = 2
    var stallMs: UInt64 = 60_000
    /// Chunk bytes queued in the bulk lane at most while uploading (task output shares it).
    var uploadQueueCap = 2 * BlobLimits.chunkBytes

    init(loop: EventLoop, logger: Logger) {
        self.loop = loop
        self.logger = logger
    }

    /// Transfers not finished yet (waiting or going).
    var pendingCount: Int { waiting.count + active.count }

    /// Fetches blob `sha256` (`size` bytes) into `path`: written to `path.part`, size and hash
    /// checked, fsynced, renamed. `done` is called exactly once, on the loop, nil on success.
    func fetch(_ sha256: String, size: Int64, to path: String, _ done: @escaping Done) {
        enqueue(Transfer(sha256: sha256, size: size, path: path, isUpload: false, done: done))
    }

    /// Uploads the file at `path` (whose hash and size the caller computed) and calls `done`
    /// once the scheduler replied `blobStored` (nil) or refused (the reason).
    func upload(file path: String, sha256: String, size: Int64, _ done: @escaping Done) {
        enqueue(Transfer(sha256: sha256, size: size, path: path, isUpload: true, done: done))
    }

    /// The worker registered on `link`: waiting transfers start.
    func connected(_ link: BlobLink) {
        self.link = link
        if timer == nil, let t = try? UVTimer(loop: loop) {
            timer = t
            t.start(afterMs: 1_000, repeatMs: 1_000) { [weak self] in self?.checkStalls() }
        }
        startWaiting()
    }

    /// The connection ended: going transfers wait for the next one (a fetch keeps its bytes).
    func disconnected() {
        link = nil
        let going = active.values.sorted { $0.requestId < $1.requestId }
        active = [:]
        for transfer in going {
            transfer.active = false
            transfer.next = nil
        }
        waiting = going + waiting
    }

    /// Handles a message of one of our transfers; false when it is not ours.
    func received(_ message: Message) -> Bool {
        switch message {
        case .blobAccept, .blobChunk, .blobStored, .error: break
        default: return false
        }
        guard let id = message.requestId, let transfer = active[id] else { return false }
        transfer.lastProgressMs = loop.nowMs
        switch message {
        case .blobAccept(let accept) where transfer.isUpload:
            guard accept.offset >= 0, accept.offset <= transfer.size else {
                return finish(transfer, "the scheduler asked for offset \(accept.offset) of \(transfer.size)")
            }
            if accept.offset == transfer.size { return finish(transfer, nil) }
            transfer.next = accept.offset
            pump()
        case .blobStored where transfer.isUpload:
            return finish(transfer, nil)
        case .blobChunk(let chunk) where !transfer.isUpload:
            received(chunk, for: transfer)
        case .error(let error):
            return finish(transfer, "the scheduler refused: \(error.reason)")
        default:
            return finish(transfer, "unexpected '\(message.type)' from the scheduler")
        }
        return true
    }

    /// Sends upload chunks while the bulk lane has room (also on `onBulkSpace`).
    func pump() {
        guard let link else { return }
        for transfer in active.values where transfer.isUpload {
            while let next = transfer.next, next < transfer.size, link.bulkQueuedBytes < uploadQueueCap {
                let count = Int(min(Int64(BlobLimits.chunkBytes), transfer.size - next))
                do {
                    let bytes = try BlobFile.read(fd: transfer.fd, offset: next, count: count, path: transfer.path)
                    link.sendChunk(.init(requestId: transfer.requestId, sha256: transfer.sha256, offset: next,
                                         total: transfer.size, data: bytes))
                    transfer.next = next + Int64(count)
                    transfer.lastProgressMs = loop.nowMs
                } catch {
                    _ = finish(transfer, "\(error)")
                    return
                }
            }
        }
    }

    /// Fails every transfer and closes the handles (the worker is stopping).
    func close() {
        for transfer in Array(active.values) + waiting { _ = finish(transfer, "the worker is stopping") }
        timer?.close(); timer = nil
        jobs?.close(); jobs = nil
    }

    // MARK: Machinery

    private func enqueue(_ transfer: Transfer) {
        waiting.append(transfer)
        startWaiting()
    }

    private func startWaiting() {
        guard let link else { return }
        var kept: [Transfer] = []
        for transfer in waiting {
            let uploads = active.values.filter(\.isUpload).count
            let fetches = active.count - uploads
            guard transfer.isUpload ? uploads == 0 : fetches < maxFetches else { kept.append(transfer); continue }
            start(transfer, on: link)
        }
        waiting = kept
    }

    private func start(_ transfer: Transfer, on link: BlobLink) {
        transfer.requestId = nextRequestId
        nextRequestId += 1
        transfer.active = true
        transfer.lastProgressMs = loop.nowMs
        active[transfer.requestId] = transfer
        if transfer.isUpload {
            if transfer.fd < 0 {
                // A task's file: never through a link, and O_NONBLOCK so a FIFO swapped in
                // after it was hashed cannot block the loop in open(); then it must be a
                // regular file (a FIFO or device is refused before any read).
                transfer.fd = open(transfer.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
                var info = stat()
                if transfer.fd >= 0, fstat(transfer.fd, &info) != 0 || info.st_mode & S_IFMT != S_IFREG {
                    Glibc.close(transfer.fd)
                    transfer.fd = -1
                    _ = finish(transfer, "\(transfer.path) is no longer a regular file")
                    return
                }
            }
            guard transfer.fd >= 0 else { _ = finish(transfer, BlobFileError(transfer.path, errno).description); return }
            link.send(.blobOffer(.init(requestId: transfer.requestId, sha256: transfer.sha256, size: transfer.size)))
        } else {
            if transfer.writer == nil {
                do { transfer.writer = try BlobWriter(tempPath: transfer.path + ".part", sha256: transfer.sha256, size: transfer.size) } catch {
                    _ = finish(transfer, "\(error)")
                    return
                }
            }
            link.send(.blobGet(.init(requestId: transfer.requestId, sha256: transfer.sha256, offset: transfer.writer!.written)))
        }
    }

    private func received(_ chunk: Message.BlobChunk, for transfer: Transfer) {
        guard let writer = transfer.writer else { return }
        guard chunk.sha256 == transfer.sha256, chunk.total == transfer.size, chunk.offset == writer.written else {
            _ = finish(transfer, "chunk at \(chunk.offset) of \(chunk.total) bytes; expected \(writer.written) of \(transfer.size)")
            return
        }
        do { try writer.append(chunk.data) } catch {
            _ = finish(transfer, "\(error)")
            return
        }
        guard writer.written == transfer.size else { return }
        // Whole: checked here, renamed into the cache off the loop; the slot is free meanwhile.
        active[transfer.requestId] = nil
        transfer.active = false
        let fd: Int32
        do { fd = try writer.seal() } catch {
            _ = finish(transfer, "\(error)")
            return
        }
        transfer.writer = nil
        let temp = writer.tempPath, final = transfer.path
        if jobs == nil { jobs = try? BackgroundJobs(loop: loop) }
        guard let jobs else {
            _ = complete(transfer, BlobFile.place(fd: fd, temp: temp, final: final))
            return
        }
        // No fsync: the cache is re-hashed before first use after a restart (`scanBlobCache`).
        jobs.run({ BlobFile.place(fd: fd, temp: temp, final: final) }) { [weak self] problem in
            _ = self?.complete(transfer, problem)
        }
        startWaiting()
    }

    /// Ends a transfer: its files closed (a failed fetch's `.part` removed), `done` called.
    @discardableResult
    private func finish(_ transfer: Transfer, _ problem: String?) -> Bool {
        active[transfer.requestId] = nil
        waiting.removeAll { $0 === transfer }
        transfer.active = false
        transfer.writer?.discard()
        transfer.writer = nil
        let result = complete(transfer, problem)
        startWaiting()
        return result
    }

    private func complete(_ transfer: Transfer, _ problem: String?) -> Bool {
        if transfer.fd >= 0 { Glibc.close(transfer.fd); transfer.fd = -1 }
        if let problem {
            let what = transfer.isUpload ? "upload of \(transfer.path)" : "fetch of blob \(transfer.sha256)"
            logger.warning("\(what) failed: \(problem)")
            transfer.done("\(what) failed: \(problem)")
        } else {
            transfer.done(nil)
        }
        return true
    }

    private func checkStalls() {
        guard link != nil else { return }
        let now = loop.nowMs
        for transfer in Array(active.values) where now >= transfer.lastProgressMs + stallMs {
            finish(transfer, "no progress for \(stallMs / 1000) s")
        }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension BlobTransfers: Sendable {}
