import Logging
import SwarmProtocol
import SwarmTransport
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// What the scheduler's blob shell holds: the store, the transfer rules (`BlobExchange`),
/// open upload files and the thread for fsyncs. Sessions get a number of their own for it
/// (an `ObjectIdentifier` may be reused while an fsync is still out).
final class BlobServerState {
    var store: BlobStore?
    var exchange = BlobExchange<Int>()
    var writers: [Int: BlobWriter] = [:]
    var keys: [ObjectIdentifier: Int] = [:]
    var peers: [Int: PeerSession] = [:]
    var nextKey = 1
    var jobs: BackgroundJobs?
    /// Bytes queued in a connection's bulk lane past which downloads wait for room.
    var bulkCap = 2 * BlobLimits.chunkBytes
    /// Chunks handled from one connection before the loop gets a turn (each is written to
    /// disk here): one uploader cannot hold the loop for more than this many MiB.
    var chunksPerTurn = 16
    var chunksThisTurn: [Int: Int] = [:]
    /// Blob bytes sent in download chunks and received in upload chunks, in all and per
    /// worker (by name: a worker's reconnections add up), for `stats`. One entry per worker
    /// that ever transferred.
    var bytesOut: Int64 = 0
    var bytesIn: Int64 = 0
    var bytesOutByNode: [String: Int64] = [:]
    var bytesInByNode: [String: Int64] = [:]
    /// Download bytes queued to all peers together (`DownloadBudget`).
    var budget = DownloadBudget<Int>()
    /// Runs while downloads wait for room (every 10 ms) or hold bytes (every second).
    var budgetTimer: UVTimer?
    /// The delay the budget timer was started with (0: not started).
    var budgetTimerMs: UInt64 = 0
    /// Runs every few seconds while uploads are open (`abandonIdleUploads`).
    var uploadIdleTimer: UVTimer?
}

/// Blob transfers (`blobOffer`/`blobChunk`/`blobGet`) with clients and workers alike: the
/// handshake authenticated them. The rules are `BlobExchange`'s; this carries them out.
extension SchedulerServer {
    /// Opens `STATE/blobs` (or a private temporary directory without a durable state).
    func openBlobs() throws(BlobFileError) {
        blobState.store = config.durable ? try BlobStore(root: config.stateDir + "/blobs") : try BlobStore.temporary()
        do { blobState.jobs = try BackgroundJobs(loop: loop) } catch {
            throw BlobFileError("cannot start the blob sync thread: \(error)")
        }
    }

    func closeBlobs() {
        for writer in blobState.writers.values { writer.discard() }
        blobState.writers = [:]
        blobState.jobs?.close()
        blobState.jobs = nil
        blobState.budgetTimer?.close()
        blobState.budgetTimer = nil
        blobState.uploadIdleTimer?.close()
        blobState.uploadIdleTimer = nil
        blobState.store?.close()
        blobState.store = nil
    }

    /// The size of a held blob (nil: not held).
    func heldBlobSize(_ sha256: String) -> Int64? { blobState.store?.heldSize(sha256) }

    /// Handles a blob message; false when `message` is not one.
    func receivedBlobMessage(_ message: Message, session: PeerSession) -> Bool {
        let key: Int
        switch message {
        case .blobOffer, .blobChunk, .blobGet:
            do throws(ClientRefusal) { try ClientPolicy.mayUseBlobs(identity: session.identity, type: message.type) } catch {
                session.connection.refuse(error.code, error.reason)
                return true
            }
            key = blobKey(session)
        case .blobAccept, .blobStored:
            session.connection.refuse(.unexpected, "only the scheduler sends '\(message.type)'")
            return true
        default: return false
        }
        let held = { (sha: String) in self.heldBlobSize(sha) }
        switch message {
        case .blobOffer(let offer):
            let size = held(offer.sha256)
            // Only a new upload needs the disk measured (a held blob's offer is the dedup).
            let disk = size == nil && offer.size > 0 ? blobState.store?.disk() : nil
            runBlobs(blobState.exchange.offer(key, offer, held: size, disk: disk, nowMs: loop.nowMs))
            armUploadIdleTimer()
        case .blobChunk(let chunk):
            runBlobs(blobState.exchange.chunk(key, chunk, nowMs: loop.nowMs))
            let handled = (blobState.chunksThisTurn[key] ?? 0) + 1
            if handled >= blobState.chunksPerTurn {
                session.connection.yieldTurn()
                blobState.chunksThisTurn[key] = nil
            } else {
                blobState.chunksThisTurn[key] = handled
            }
        case .blobGet(let get): runBlobs(blobState.exchange.get(key, get, held: held(get.sha256)))
        default: break
        }
        return true
    }

    /// The session ended: its upload is dropped, its downloads end.
    func blobSessionEnded(_ session: PeerSession) {
        guard let key = blobState.keys.removeValue(forKey: ObjectIdentifier(session)) else { return }
        runBlobs(blobState.exchange.disconnected(key))
        blobState.budget.gone(key)
        blobState.peers[key] = nil
        blobState.chunksThisTurn[key] = nil
    }

    private func blobKey(_ session: PeerSession) -> Int {
        if let key = blobState.keys[ObjectIdentifier(session)] { return key }
        let key = blobState.nextKey
        blobState.nextKey += 1
        blobState.keys[ObjectIdentifier(session)] = key
        blobState.peers[key] = session
        return key
    }

    private func runBlobs(_ directives: [BlobExchange<Int>.Directive]) {
        for directive in directives {
            switch directive {
            case let .send(key, message):
                blobState.peers[key]?.connection.send(message)
            case let .beginUpload(key, sha, size):
                guard let store = blobState.store else { continue }
                do { blobState.writers[key] = try store.writer(for: sha, size: size) } catch {
                    logger.error("cannot receive blob \(sha): \(error)")
                    runBlobs(blobState.exchange.writeFailed(key, problem: "the scheduler cannot store blob \(sha): \(error)"))
                }
            case let .write(key, chunk):
                guard let writer = blobState.writers[key] else { continue }
                blobState.bytesIn += Int64(chunk.data.count)
                if let node = blobState.peers[key]?.nodeName { blobState.bytesInByNode[node, default: 0] += Int64(chunk.data.count) }
                do { try writer.append(chunk.data) } catch {
                    logger.error("cannot write blob \(chunk.sha256): \(error)")
                    runBlobs(blobState.exchange.writeFailed(key, problem: "the scheduler cannot store blob \(chunk.sha256): \(error)"))
                }
            case .finishUpload(let key):
                finishUpload(key)
            case .abortUpload(let key):
                blobState.writers.removeValue(forKey: key)?.discard()
            case let .storeEmpty(key, requestId, sha):
                do {
                    try blobState.store?.storeEmpty()
                    blobState.peers[key]?.connection.send(.blobAccept(.init(requestId: requestId, sha256: sha, offset: 0)))
                } catch {
                    blobState.peers[key]?.connection.send(.error(.init(code: .internalError, reason: "the scheduler cannot store the empty blob: \(error)", requestId: requestId)))
                }
            case .pump(let key):
                pumpDownloads(key)
            }
        }
    }

    /// Checks the hash, then fsyncs and renames on the sync thread: the loop goes on meanwhile.
    private func finishUpload(_ key: Int) {
        guard let writer = blobState.writers.removeValue(forKey: key), let store = blobState.store,
              let jobs = blobState.jobs else { return }
        let fd: Int32
        let final: String
        do {
            fd = try writer.seal()
            do { final = try store.prepareFinal(writer.sha256) } catch {
                close(fd)
                throw error
            }
        } catch {
            writer.discard()
            runBlobs(blobState.exchange.finished(key, problem: "blob \(writer.sha256) refused: \(error)"))
            return
        }
        let temp = writer.tempPath, sha = writer.sha256, size = writer.size
        jobs.run({ BlobFile.makeDurable(fd: fd, temp: temp, final: final) }) { [weak self] problem in
            guard let self else { return }
            if let problem {
                self.logger.error("cannot store blob \(sha): \(problem)")
            } else {
                self.blobState.store?.didStore(sha, size: size)
            }
            self.runBlobs(self.blobState.exchange.finished(key, problem: problem.map { "the scheduler cannot store blob \(sha): \($0)" }))
        }
    }

    /// The blob byte counters in a `stats` reply: every listed worker gets its figures (0
    /// before its first transfer).
    func addBlobFigures(cluster: inout StatsBlock, workers: inout [String: StatsBlock]) {
        cluster.blobBytesOut = blobState.bytesOut
        cluster.blobBytesIn = blobState.bytesIn
        for name in Set(workers.keys).union(blobState.bytesOutByNode.keys).union(blobState.bytesInByNode.keys) {
            workers[name, default: StatsBlock()].blobBytesOut = blobState.bytesOutByNode[name] ?? 0
            workers[name, default: StatsBlock()].blobBytesIn = blobState.bytesInByNode[name] ?? 0
        }
    }

    /// Sends download pieces while the connection's bulk lane has room and the download
    /// budget of all connections too; goes on when the lane drains (`onBulkSpace`) or, when
    /// the budget was out, when it has room (`budgetCheck`).
    private func pumpDownloads(_ key: Int) {
        guard let session = blobState.peers[key], let store = blobState.store else { return }
        let connection = session.connection
        if connection.onBulkSpace == nil {
            connection.onBulkSpace = { [weak self] in self?.pumpDownloads(key) }
        }
        observeHolders()
        while connection.isOpen, connection.bulkQueuedBytes < blobState.bulkCap, blobState.exchange.downloads[key] != nil {
            guard blobState.budget.hasRoom else {
                blobState.budget.wait(key)
                break
            }
            guard let piece = blobState.exchange.nextPiece(key) else { break }
            do {
                let fd = try store.openForReading(piece.sha256)
                defer { close(fd) }
                let bytes = try BlobFile.read(fd: fd, offset: piece.offset, count: piece.length, path: store.path(of: piece.sha256))
                connection.sendChunk(.init(requestId: piece.requestId, sha256: piece.sha256, offset: piece.offset,
                                           total: piece.total, data: bytes))
                blobState.bytesOut += Int64(bytes.count)
                if let node = session.nodeName { blobState.bytesOutByNode[node, default: 0] += Int64(bytes.count) }
                blobState.budget.observe(key, queued: connection.queuedBytes, nowMs: loop.nowMs)
            } catch {
                logger.error("cannot read blob \(piece.sha256): \(error)")
                runBlobs(blobState.exchange.readFailed(key, requestId: piece.requestId, problem: "the scheduler cannot read blob \(piece.sha256): \(error)"))
            }
        }
        armBudgetTimer()
    }

    /// Each holder's queued download bytes as they are now.
    private func observeHolders() {
        let nowMs = loop.nowMs
        for key in Array(blobState.budget.holders.keys) {
            let connection = blobState.peers[key]?.connection
            blobState.budget.observe(key, queued: connection?.isOpen == true ? connection!.queuedBytes : 0, nowMs: nowMs)
        }
    }

    /// Closes connections that read none of their download bytes for the stall time, then
    /// lets the waiting downloads go on while there is room.
    private func budgetCheck() {
        blobState.budgetTimerMs = 0
        observeHolders()
        for key in blobState.budget.stalled(nowMs: loop.nowMs) {
            blobState.budget.gone(key)
            guard let session = blobState.peers[key] else { continue }
            peerLog(session, .notice, "closing \(session.connection.peer): it read none of its \(session.connection.queuedBytes) bytes of blob chunks for \(blobState.budget.stallMs / 1000) s")
            session.connection.close(reason: "not reading its blob downloads")
        }
        if blobState.budget.hasRoom {
            for key in blobState.budget.takeWaiting() { pumpDownloads(key) }
        }
        armBudgetTimer()
    }

    /// While uploads are open, checks every 5 s for ones that went quiet; stops when none are.
    private func armUploadIdleTimer() {
        guard blobState.uploadIdleTimer == nil, !blobState.exchange.uploads.isEmpty,
              let timer = try? UVTimer(loop: loop) else { return }
        blobState.uploadIdleTimer = timer
        timer.start(afterMs: 5_000, repeatMs: 5_000) { [weak self] in
            guard let self else { return }
            self.runBlobs(self.blobState.exchange.abandonIdleUploads(nowMs: self.loop.nowMs))
            if self.blobState.exchange.uploads.isEmpty {
                self.blobState.uploadIdleTimer?.close()
                self.blobState.uploadIdleTimer = nil
            }
        }
    }

    private func armBudgetTimer() {
        let waiting = !blobState.budget.waiting.isEmpty
        guard waiting || !blobState.budget.holders.isEmpty else { return }
        let delay: UInt64 = waiting ? 10 : 1_000
        // Started already, as soon or sooner.
        if blobState.budgetTimerMs != 0 && blobState.budgetTimerMs <= delay { return }
        if blobState.budgetTimer == nil { blobState.budgetTimer = try? UVTimer(loop: loop) }
        guard let timer = blobState.budgetTimer else { return }
        blobState.budgetTimerMs = delay
        timer.start(afterMs: delay) { [weak self] in self?.budgetCheck() }
    }
}
