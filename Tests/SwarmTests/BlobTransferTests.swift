import Foundation
import Logging
import Testing
import SwarmClient
@testable import SwarmNode
@testable import SwarmProtocol
@testable import SwarmScheduler
import SwarmTransport
import SwarmUV

/// Blob transfers through a real scheduler in this process: `SwarmClient` uploads, a
/// worker-side `BlobTransfers` and a second client download, over loopback.
@Suite(.serialized) struct BlobTransferTests {
    /// A scratch directory removed at the end of the test.
    final class Scratch {
        let path: String
        init() {
            path = NSTemporaryDirectory() + "/swarm-blob-test-\(UUID().uuidString)"
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func write(_ name: String, _ bytes: [UInt8]) -> String {
            let p = path + "/" + name
            FileManager.default.createFile(atPath: p, contents: Data(bytes))
            return p
        }
        func read(_ name: String) -> [UInt8]? { FileManager.default.contents(atPath: path + "/" + name).map { Array($0) } }
    }

    static func bytes(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 12)) }
    }

    static func held(_ scheduler: InProcessScheduler, _ sha: String) -> Int64? {
        scheduler.onLoop { $0.heldBlobSize(sha) } ?? nil
    }

    static func tempFiles(_ scheduler: InProcessScheduler) -> [String] {
        let root = scheduler.onLoop { $0.blobState.store?.root } ?? nil
        return (try? FileManager.default.contentsOfDirectory(atPath: (root ?? "/nonexistent") + "/tmp")) ?? []
    }

    @Test func uploadDownloadDedupAndRefusals() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        let scratch = Scratch()
        let data = Self.bytes(3 * BlobLimits.chunkBytes + 12_345)
        let sha = BlobHash.of(data)
        let file = scratch.write("in.bin", data)
        do {
            let client = try SwarmClient(address: scheduler.address, token: nil)
            try client.uploadBlob(file: file, sha256: sha, size: Int64(data.count))
            #expect(Self.held(scheduler, sha) == Int64(data.count))
            // Dedup: held already, so the offer is answered at its end and the file is never read.
            try client.uploadBlob(file: scratch.path + "/does-not-exist", sha256: sha, size: Int64(data.count))
            // The same hash offered with another size is refused.
            #expect(throws: ClientError.server(.badBlob, "blob \(sha) is held with \(data.count) bytes, not 5")) {
                try client.uploadBlob(file: file, sha256: sha, size: 5)
            }
            // A second client downloads it back.
            let reader = try SwarmClient(address: scheduler.address, token: nil)
            try reader.downloadBlob(sha, size: Int64(data.count), to: scratch.path + "/back.bin")
            #expect(scratch.read("back.bin") == data)
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/back.bin.part"))
            // An unknown blob: an error, nothing left behind.
            let other = BlobHash.of([9])
            #expect(throws: ClientError.self) { try reader.downloadBlob(other, size: 1, to: scratch.path + "/none") }
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/none") && !FileManager.default.fileExists(atPath: scratch.path + "/none.part"))
            // The empty blob goes both ways.
            let empty = scratch.write("empty", [])
            try client.uploadBlob(file: empty, sha256: BlobHash.of([]), size: 0)
            try reader.downloadBlob(BlobHash.of([]), size: 0, to: scratch.path + "/empty.back")
            #expect(scratch.read("empty.back") == [])
        }
        #expect(scheduler.stop() == nil)
    }

    @Test func aWrongHashIsRefusedWithNothingHeld() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        let scratch = Scratch()
        let data = Self.bytes(BlobLimits.chunkBytes + 7)
        let claimed = BlobHash.of(Self.bytes(BlobLimits.chunkBytes + 7, seed: 2))
        let file = scratch.write("in.bin", data)
        do {
            let client = try SwarmClient(address: scheduler.address, token: nil)
            do {
                try client.uploadBlob(file: file, sha256: claimed, size: Int64(data.count))
                Issue.record("a wrong hash was accepted")
            } catch let error {
                guard case .server(.badBlob, let reason) = error else { Issue.record("\(error)"); return }
                #expect(reason.contains("hash"))
            }
            #expect(Self.held(scheduler, claimed) == nil)
            #expect(Self.tempFiles(scheduler).isEmpty)
            // The connection goes on: the right hash is then accepted.
            try client.uploadBlob(file: file, sha256: BlobHash.of(data), size: Int64(data.count))
        }
        #expect(scheduler.stop() == nil)
    }

    @Test func aConnectionCutMidUploadLeavesNothingHeld() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        let data = Self.bytes(3 * BlobLimits.chunkBytes)
        let sha = BlobHash.of(data)
        let loop = EventLoop()
        let peer = try RawPeer(loop: loop, port: scheduler.port)
        peer.connection.send(.blobOffer(.init(requestId: 1, sha256: sha, size: Int64(data.count))))
        #expect(runLoop(loop) { peer.received.contains { if case .blobAccept = $0 { true } else { false } } })
        peer.connection.sendChunk(.init(requestId: 1, sha256: sha, offset: 0, total: Int64(data.count),
                                        data: Array(data[0..<BlobLimits.chunkBytes])))
        runLoop(loop, timeoutMs: 200) { false }
        #expect(Self.tempFiles(scheduler).count == 1)
        peer.connection.close(reason: "test cuts the upload")
        // Bounded wait for the scheduler to see the end.
        for _ in 0..<3_000 where !Self.tempFiles(scheduler).isEmpty { usleep(10_000) }
        #expect(Self.tempFiles(scheduler).isEmpty)
        #expect(Self.held(scheduler, sha) == nil)
        try closeLoopCheckingLeaks(loop)
        #expect(scheduler.stop() == nil)
    }

    @Test func aWorkerFetchesAndUploadsThroughBlobTransfers() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        let scratch = Scratch()
        let data = Self.bytes(2 * BlobLimits.chunkBytes + 99, seed: 5)
        let sha = BlobHash.of(data)
        let source = scratch.write("artifact.bin", data)
        let loop = EventLoop()
        let peer = try RawPeer(loop: loop, port: scheduler.port)
        let blobs = BlobTransfers(loop: loop, logger: Logger(label: "test"))
        peer.route = { blobs.received($0) }
        peer.connection.onBulkSpace = { blobs.pump() }
        // Requested before the link is there: they wait for it.
        var uploaded: String?? = .none
        blobs.upload(file: source, sha256: sha, size: Int64(data.count)) { uploaded = .some($0) }
        runLoop(loop, timeoutMs: 100) { false }
        #expect(uploaded == nil && blobs.pendingCount == 1)
        blobs.connected(peer.connection)
        #expect(runLoop(loop, timeoutMs: 10_000) { uploaded != nil })
        #expect(uploaded == .some(nil))
        #expect(Self.held(scheduler, sha) == Int64(data.count))
        var fetched: String?? = .none
        blobs.fetch(sha, size: Int64(data.count), to: scratch.path + "/fetched.bin") { fetched = .some($0) }
        #expect(runLoop(loop, timeoutMs: 10_000) { fetched != nil })
        #expect(fetched == .some(nil))
        #expect(scratch.read("fetched.bin") == data)
        // A blob the scheduler lacks fails with the reason, and leaves no `.part`.
        var missing: String?? = .none
        blobs.fetch(BlobHash.of([1, 2]), size: 2, to: scratch.path + "/missing") { missing = .some($0) }
        #expect(runLoop(loop, timeoutMs: 10_000) { missing != nil })
        #expect(missing??.contains("not held") == true)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/missing.part"))
        blobs.close()
        peer.connection.close(reason: "done")
        try closeLoopCheckingLeaks(loop)
        #expect(scheduler.stop() == nil)
    }
}

/// A bare authenticated connection to the scheduler (no token), for driving the protocol
/// by hand.
final class RawPeer {
    let connection: FramedConnection
    var received: [Message] = []
    /// Messages offered here first; those it takes are not recorded.
    var route: ((Message) -> Bool)?

    init(loop: EventLoop, port: Int, role: PeerRole = .client, name: String = "raw") throws {
        let tcp = try UVTCP(loop: loop)
        var connectDone = false
        var failure: UVError?
        tcp.connect(host: "127.0.0.1", port: port) { error in failure = error; connectDone = true }
        runLoop(loop) { connectDone }
        if let failure { tcp.close(); throw failure }
        connection = FramedConnection(tcp: tcp)
        var handshake = ClientHandshake(role: role, name: name, token: nil)
        var established = false
        connection.onMessage = { [unowned self] message in
            if !established {
                for d in handshake.receive(message) { if case .established = d { established = true } }
                return
            }
            if self.route?(message) == true { return }
            self.received.append(message)
        }
        connection.start()
        for d in handshake.start() { if case .send(let m) = d { connection.send(m) } }
        runLoop(loop) { established }
    }
}

/// Loopback throughput of a large blob (upload + download through the scheduler). Measured,
/// never asserted: runs only with SWARM_BLOB_BENCH_MIB set (the size in MiB).
@Suite struct BlobThroughputProbe {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SWARM_BLOB_BENCH_MIB"] != nil))
    func measureUploadAndDownload() throws {
        let mib = Int(ProcessInfo.processInfo.environment["SWARM_BLOB_BENCH_MIB"] ?? "") ?? 256
        var config = SchedulerConfig()
        let stateDir = NSTemporaryDirectory() + "/swarm-blob-bench-\(UUID().uuidString)"
        config.durable = ProcessInfo.processInfo.environment["SWARM_BLOB_BENCH_DURABLE"] != nil
        config.stateDir = stateDir
        defer { try? FileManager.default.removeItem(atPath: stateDir) }
        let scheduler = InProcessScheduler(config)
        let scratch = BlobTransferTests.Scratch()
        let path = scratch.path + "/big.bin"
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = FileHandle(forWritingAtPath: path)!
        var hasher = BlobHash.Hasher()
        // One MiB of varied bytes, each copy made distinct by its index in front.
        var piece = BlobTransferTests.bytes(1 << 20)
        for i in 0..<mib {
            withUnsafeBytes(of: UInt64(i)) { for (k, b) in $0.enumerated() { piece[k] = b } }
            hasher.update(piece)
            handle.write(Data(piece))
        }
        try handle.close()
        let sha = hasher.finalize()
        let size = Int64(mib) << 20
        do {
            let client = try SwarmClient(address: scheduler.address, token: nil)
            let t0 = Date()
            try client.uploadBlob(file: path, sha256: sha, size: size)
            let t1 = Date()
            try client.downloadBlob(sha, size: size, to: scratch.path + "/back.bin")
            let t2 = Date()
            let up = Double(mib) / t1.timeIntervalSince(t0), down = Double(mib) / t2.timeIntervalSince(t1)
            let both = Double(2 * mib) / t2.timeIntervalSince(t0)
            print("blob throughput (\(mib) MiB, durable: \(config.durable)): upload \(Int(up)) MiB/s, download \(Int(down)) MiB/s, upload+download \(Int(both)) MiB/s")
        }
        #expect(scheduler.stop() == nil)
    }
}

/// Submits naming inputs through a real scheduler: accepted only with the blob held.
@Suite struct SubmitInputBlobsTests {
    @Test func aSubmitNeedsItsInputsHeldAndWithinTheLimit() throws {
        var config = SchedulerConfig()
        config.settings.maxInputBytesPerTask = 2 * Int64(BlobLimits.chunkBytes)
        let scheduler = InProcessScheduler(config)
        let scratch = BlobTransferTests.Scratch()
        let data = BlobTransferTests.bytes(BlobLimits.chunkBytes + 1)
        let sha = BlobHash.of(data)
        do {
            let client = try SwarmClient(address: scheduler.address, token: nil)
            var spec = TaskSpec(id: "with-input", command: ["true"])
            spec.inputBlobs = [InputRef(dest: "src", sha256: sha, size: Int64(data.count))]
            #expect { _ = try client.submit(spec) } throws: { error in
                guard case .server(.invalidTask, let reason) = error as? ClientError else { return false }
                return reason.contains("was not uploaded")
            }
            try client.uploadBlob(file: scratch.write("src.tar", data), sha256: sha, size: Int64(data.count))
            #expect(try client.submit(spec) == "with-input")
            var escaping = spec
            escaping.id = "escaping"
            escaping.inputBlobs = [InputRef(dest: "../x", sha256: sha, size: Int64(data.count))]
            #expect(throws: ClientError.self) { _ = try client.submit(escaping) }
            var twice = spec
            twice.id = "twice"
            twice.inputBlobs = [InputRef(dest: "a", sha256: sha, size: Int64(data.count)), InputRef(dest: "b", sha256: sha, size: Int64(data.count))]
            #expect { _ = try client.submit(twice) } throws: { error in
                "\(error)".contains("maxInputBytesPerTask")
            }
        }
        #expect(scheduler.stop() == nil)
    }
}

/// `BlobTransfers` across a reconnect and against a silent scheduler.
@Suite struct BlobTransfersReconnectTests {
    /// A link that takes everything and answers nothing.
    final class SilentLink: BlobLink {
        var sent: [Message] = []
        func send(_ message: Message) { sent.append(message) }
        func sendChunk(_ chunk: Message.BlobChunk) -> UInt64 { sent.append(.blobChunk(chunk)); return 0 }
        var bulkQueuedBytes: Int { 0 }
    }

    @Test func aFetchCutByADisconnectResumesOnTheNextConnection() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        let scratch = BlobTransferTests.Scratch()
        let data = BlobTransferTests.bytes(6 * BlobLimits.chunkBytes + 3, seed: 9)
        let sha = BlobHash.of(data)
        do {
            let client = try SwarmClient(address: scheduler.address, token: nil)
            try client.uploadBlob(file: scratch.write("big", data), sha256: sha, size: Int64(data.count))
        }
        let loop = EventLoop()
        let blobs = BlobTransfers(loop: loop, logger: Logger(label: "test"))
        var first: RawPeer? = try RawPeer(loop: loop, port: scheduler.port)
        var chunksSeen = 0
        first!.route = { message in
            if case .blobChunk = message { chunksSeen += 1 }
            return blobs.received(message)
        }
        blobs.connected(first!.connection)
        var fetched: String?? = .none
        blobs.fetch(sha, size: Int64(data.count), to: scratch.path + "/back") { fetched = .some($0) }
        #expect(runLoop(loop, timeoutMs: 10_000) { chunksSeen >= 1 })
        first!.connection.close(reason: "test cuts the link")
        blobs.disconnected()
        first = nil
        #expect(fetched == nil)
        // Comes back: the fetch goes on from the bytes it has.
        let second = try RawPeer(loop: loop, port: scheduler.port)
        var offsets: [Int64] = []
        second.route = { message in
            if case .blobChunk(let c) = message { offsets.append(c.offset) }
            return blobs.received(message)
        }
        blobs.connected(second.connection)
        #expect(runLoop(loop, timeoutMs: 10_000) { fetched != nil })
        #expect(fetched == .some(nil))
        #expect(scratch.read("back") == data)
        #expect((offsets.first ?? 0) > 0)
        blobs.close()
        second.connection.close(reason: "done")
        try closeLoopCheckingLeaks(loop)
        #expect(scheduler.stop() == nil)
    }

    /// A task may swap an artifact it wrote for a FIFO or a link after it was hashed: the
    /// upload refuses it at open instead of blocking the loop or reading through the link.
    @Test func anUploadOfAFifoOrALinkFailsAtOnceWithoutBlocking() throws {
        let loop = EventLoop()
        let scratch = BlobTransferTests.Scratch()
        let blobs = BlobTransfers(loop: loop, logger: Logger(label: "test"))
        let link = SilentLink()
        blobs.connected(link)
        #expect(mkfifo(scratch.path + "/fifo", 0o644) == 0)
        symlink(scratch.write("target", [1, 2, 3]), scratch.path + "/link")
        var outcomes: [String: String?] = [:]
        for name in ["fifo", "link"] {
            blobs.upload(file: scratch.path + "/" + name, sha256: BlobHash.of([1, 2, 3]), size: 3) { outcomes[name] = $0 }
        }
        #expect(runLoop(loop, timeoutMs: 5_000) { outcomes.count == 2 })
        #expect(outcomes["fifo"]??.contains("regular file") == true)
        #expect(outcomes["link"]! != nil)
        #expect(!link.sent.contains { if case .blobOffer = $0 { true } else { false } })
        blobs.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aTransferWithNoProgressFails() throws {
        let loop = EventLoop()
        let scratch = BlobTransferTests.Scratch()
        let blobs = BlobTransfers(loop: loop, logger: Logger(label: "test"))
        blobs.stallMs = 300
        let link = SilentLink()
        blobs.connected(link)
        var fetched: String?? = .none
        blobs.fetch(BlobHash.of([1]), size: 1, to: scratch.path + "/x") { fetched = .some($0) }
        #expect(runLoop(loop, timeoutMs: 5_000) { fetched != nil })
        #expect(fetched??.contains("no progress") == true)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/x.part"))
        // While disconnected nothing stalls: the request waits.
        blobs.disconnected()
        var waiting: String?? = .none
        blobs.upload(file: scratch.write("f", [1]), sha256: BlobHash.of([1]), size: 1) { waiting = .some($0) }
        runLoop(loop, timeoutMs: 1_500) { false }
        #expect(waiting == nil)
        blobs.close()
        #expect(waiting != nil)
        try closeLoopCheckingLeaks(loop)
    }
}
