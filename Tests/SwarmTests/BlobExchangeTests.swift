import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler
import SwarmTransport

/// Pure tests of the scheduler's transfer rules (`BlobExchange`) and of the submit and
/// result checks (`TaskBlobRules`).
@Suite struct BlobExchangeTests {
    typealias X = BlobExchange<Int>
    static let data: [UInt8] = (0..<(2 * BlobLimits.chunkBytes + 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    static let sha = BlobHash.of(data)
    static let size = Int64(data.count)

    static func chunk(_ id: Int, offset: Int64, length: Int) -> Message.BlobChunk {
        .init(requestId: id, sha256: sha, offset: offset, total: size, data: Array(data[Int(offset)..<(Int(offset) + length)]))
    }

    static func errorCode(_ directives: [X.Directive]) -> ErrorCode? {
        for d in directives { if case .send(_, .error(let e)) = d { return e.code } }
        return nil
    }

    @Test func anUploadGoesOfferAcceptChunksStored() {
        var x = X()
        let d = x.offer(1, .init(requestId: 5, sha256: Self.sha, size: Self.size), held: nil)
        #expect(d == [.beginUpload(1, sha256: Self.sha, size: Self.size),
                      .send(1, .blobAccept(.init(requestId: 5, sha256: Self.sha, offset: 0)))])
        let mib = BlobLimits.chunkBytes
        #expect(x.chunk(1, Self.chunk(5, offset: 0, length: mib)).count == 1)
        #expect(x.chunk(1, Self.chunk(5, offset: Int64(mib), length: mib)).count == 1)
        let last = x.chunk(1, Self.chunk(5, offset: Int64(2 * mib), length: 10))
        #expect(last.last == .finishUpload(1))
        #expect(x.finished(1, problem: nil) == [.send(1, .blobStored(.init(requestId: 5, sha256: Self.sha)))])
        #expect(x.uploads.isEmpty)
    }

    @Test func aHeldBlobIsAcceptedAtItsEndAndADifferentSizeIsRefused() {
        var x = X()
        #expect(x.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: Self.size)
                == [.send(1, .blobAccept(.init(requestId: 1, sha256: Self.sha, offset: Self.size)))])
        #expect(Self.errorCode(x.offer(1, .init(requestId: 2, sha256: Self.sha, size: 3), held: Self.size)) == .badBlob)
        #expect(x.uploads.isEmpty)
    }

    @Test func oneUploadAtATimePerConnection() {
        var x = X()
        _ = x.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil)
        #expect(Self.errorCode(x.offer(1, .init(requestId: 2, sha256: BlobHash.of([1]), size: 1), held: nil)) == .badBlob)
        // Another connection may upload meanwhile (even the same blob).
        #expect(Self.errorCode(x.offer(2, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil)) == nil)
    }

    @Test func aChunkOutOfOrderEndsTheUpload() {
        var x = X()
        _ = x.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil)
        let d = x.chunk(1, Self.chunk(1, offset: 10, length: 10))
        #expect(d.first == .abortUpload(1))
        #expect(Self.errorCode(d) == .badBlob)
        #expect(x.uploads.isEmpty)
        // A chunk for no upload at all.
        #expect(Self.errorCode(x.chunk(1, Self.chunk(1, offset: 0, length: 10))) == .badBlob)
    }

    @Test(arguments: [Int64(-1), Int64(Bounds.bytes.upperBound) + 1])
    func offersOutOfBoundsAreRefused(size: Int64) {
        var x = X()
        #expect(Self.errorCode(x.offer(1, .init(requestId: 1, sha256: Self.sha, size: size), held: nil)) == .badBlob)
        #expect(Self.errorCode(x.offer(1, .init(requestId: 1, sha256: "nothex", size: 1), held: nil)) == .badBlob)
    }

    /// Uploads never take the disk's last free bytes (the scheduler's state needs them): an
    /// offer must fit beside what the uploads going on still write, keeping the reserve.
    @Test func offersMustFitTheDiskBesideUploadsGoingOn() {
        var x = X()
        x.limits.reserveBytes = 100
        let disk = X.Disk(free: 100 + Self.size + 5, total: 1 << 40)
        #expect(Self.errorCode(x.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil, disk: disk)) == nil)
        #expect(x.promisedBytes == Self.size)
        // Another connection's upload would not fit beside the first one's remaining bytes.
        let other = BlobHash.of([1, 2, 3, 4, 5, 6])
        #expect(Self.errorCode(x.offer(2, .init(requestId: 1, sha256: other, size: 6), held: nil, disk: disk)) == .internalError)
        #expect(x.uploads[2] == nil)
        // What the first has written is no longer promised (the measured free space shows it).
        _ = x.chunk(1, Self.chunk(1, offset: 0, length: BlobLimits.chunkBytes))
        let after = X.Disk(free: disk.free - Int64(BlobLimits.chunkBytes), total: disk.total)
        #expect(Self.errorCode(x.offer(2, .init(requestId: 2, sha256: other, size: 5), held: nil, disk: after)) == nil)
        // A held blob's offer (the dedup) and a small disk's smaller reserve.
        var y = X()
        #expect(Self.errorCode(y.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: Self.size, disk: .init(free: 0, total: 1))) == nil)
        #expect(Self.errorCode(y.offer(2, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil, disk: .init(free: Self.size + 1_000, total: 10_000))) == nil)
    }

    /// An offer followed by silence would hold its disk promise until the connection ends (one
    /// peer could make every other upload hear "no room"): after 60 s without a chunk it is
    /// abandoned, at 59.999 s it is not, a chunk restarts the clock, and a finishing upload
    /// (all bytes in, being synced) is never abandoned.
    @Test func anUploadWithoutChunksForAMinuteIsAbandonedAndItsPromiseFreed() {
        var x = X()
        let idle = X.uploadIdleMs
        #expect(Self.errorCode(x.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil, nowMs: 1_000)) == nil)
        #expect(x.abandonIdleUploads(nowMs: 1_000 + idle - 1).isEmpty)
        _ = x.chunk(1, Self.chunk(1, offset: 0, length: BlobLimits.chunkBytes), nowMs: 30_000)
        #expect(x.abandonIdleUploads(nowMs: 1_000 + idle).isEmpty, "the chunk at 30 s restarted the clock")
        let out = x.abandonIdleUploads(nowMs: 30_000 + idle)
        #expect(out.first == .abortUpload(1))
        #expect(Self.errorCode(out) == .badBlob)
        #expect(x.uploads[1] == nil && x.promisedBytes == 0)
        // All bytes in: the store is checking and syncing; never idle.
        var y = X()
        _ = y.offer(1, .init(requestId: 1, sha256: BlobHash.of([7]), size: 1), held: nil, nowMs: 0)
        _ = y.chunk(1, .init(requestId: 1, sha256: BlobHash.of([7]), offset: 0, total: 1, data: [7]), nowMs: 0)
        #expect(y.abandonIdleUploads(nowMs: 10 * idle).isEmpty)
    }

    /// From the end of a blob there is nothing to send, and a chunk of 0 bytes would break
    /// the wire rule (only an empty blob's chunk is empty): refused. An empty blob from 0 is sent.
    @Test func aGetFromTheEndIsRefusedExceptForTheEmptyBlob() {
        var x = X()
        #expect(Self.errorCode(x.get(1, .init(requestId: 1, sha256: Self.sha, offset: Self.size), held: Self.size)) == .badBlob)
        #expect(Self.errorCode(x.get(1, .init(requestId: 2, sha256: Self.sha, offset: Self.size - 1), held: Self.size)) == nil)
        #expect(x.get(2, .init(requestId: 1, sha256: X.emptyHash, offset: 0), held: 0) == [.pump(2)])
        #expect(x.nextPiece(2)?.length == 0)
    }

    @Test func theEmptyBlobIsStoredWithoutChunks() {
        var x = X()
        #expect(x.offer(1, .init(requestId: 1, sha256: X.emptyHash, size: 0), held: nil) == [.storeEmpty(1, requestId: 1, sha256: X.emptyHash)])
        #expect(Self.errorCode(x.offer(1, .init(requestId: 2, sha256: Self.sha, size: 0), held: nil)) == .badBlob)
    }

    @Test func aDisconnectDropsTheUploadAndDownloads() {
        var x = X()
        _ = x.offer(1, .init(requestId: 1, sha256: Self.sha, size: Self.size), held: nil)
        _ = x.get(1, .init(requestId: 2, sha256: Self.sha), held: Self.size)
        #expect(x.disconnected(1) == [.abortUpload(1)])
        #expect(x.nextPiece(1) == nil)
    }

    @Test func downloadsTakeTurnsAndAreCapped() {
        var x = X()
        #expect(Self.errorCode(x.get(1, .init(requestId: 1, sha256: Self.sha), held: nil)) == .unknownBlob)
        #expect(Self.errorCode(x.get(1, .init(requestId: 1, sha256: Self.sha, offset: Self.size + 1), held: Self.size)) == .badBlob)
        #expect(x.get(1, .init(requestId: 1, sha256: Self.sha), held: Self.size) == [.pump(1)])
        #expect(x.get(1, .init(requestId: 2, sha256: Self.sha, offset: Self.size - 5), held: Self.size) == [.pump(1)])
        for id in 3...4 { _ = x.get(1, .init(requestId: id, sha256: Self.sha), held: Self.size) }
        #expect(Self.errorCode(x.get(1, .init(requestId: 9, sha256: Self.sha), held: Self.size)) == .badBlob)
        var pieces: [X.Piece] = []
        while let p = x.nextPiece(1) { pieces.append(p) }
        // 3 pieces each for requests 1, 3, 4, and one of 5 bytes for request 2.
        #expect(pieces.count == 10)
        #expect(pieces.prefix(4).map(\.requestId) == [1, 2, 3, 4])
        #expect(pieces.first { $0.requestId == 2 }?.length == 5)
        for id in [1, 3, 4] {
            let mine = pieces.filter { $0.requestId == id }
            #expect(mine.map(\.offset) == [0, Int64(BlobLimits.chunkBytes), Int64(2 * BlobLimits.chunkBytes)])
            #expect(mine.last?.length == 10)
        }
    }

    @Test func anEmptyBlobDownloadsAsOneEmptyChunk() {
        var x = X()
        _ = x.get(1, .init(requestId: 1, sha256: X.emptyHash), held: 0)
        #expect(x.nextPiece(1) == .init(requestId: 1, sha256: X.emptyHash, offset: 0, length: 0, total: 0))
        #expect(x.nextPiece(1) == nil)
    }
}

@Suite struct TaskBlobRulesTests {
    static let a = BlobHash.of([1]), b = BlobHash.of([2])

    static func spec(_ inputs: [InputRef]) -> TaskSpec {
        var spec = TaskSpec(command: ["true"])
        spec.inputBlobs = inputs
        return spec
    }

    @Test func heldInputsWithinTheLimitPass() {
        let s = Self.spec([.init(dest: "src", sha256: Self.a, size: 10), .init(dest: "lib/x", sha256: Self.b, size: 20)])
        #expect(TaskBlobRules.inputProblem(s, maxBytes: 30) { $0 == Self.a ? 10 : 20 } == nil)
        #expect(TaskBlobRules.inputProblem(s, maxBytes: 29) { $0 == Self.a ? 10 : 20 }?.contains("over 29 bytes") == true)
    }

    @Test func aMissingOrMisSizedBlobIsRefused() {
        let s = Self.spec([.init(dest: "src", sha256: Self.a, size: 10)])
        #expect(TaskBlobRules.inputProblem(s, maxBytes: 100) { _ in nil }?.contains("not uploaded") == true)
        #expect(TaskBlobRules.inputProblem(s, maxBytes: 100) { _ in 11 }?.contains("has 11") == true)
    }

    @Test(arguments: ["", "/etc", "a/../b", "..", "./a", "a/.", "a//b", "a\u{0}b", String(repeating: "x", count: BlobLimits.maxPathBytes + 1)])
    func unsafeDestsAreRefused(dest: String) {
        #expect(TaskBlobRules.destProblem(dest) != nil)
        #expect(TaskBlobRules.inputProblem(Self.spec([.init(dest: dest, sha256: Self.a, size: 1)]), maxBytes: 10) { _ in 1 } != nil)
    }

    @Test(arguments: ["a", "a/b/c", "..a", "a..", String(repeating: "x/", count: BlobLimits.maxPathBytes / 2 - 1) + "xy"])
    func safeDestsPass(dest: String) {
        #expect(TaskBlobRules.destProblem(dest) == nil)
    }

    @Test func countAndDuplicateDestsAreBounded() {
        let many = (0...BlobLimits.maxInputsPerTask).map { InputRef(dest: "d\($0)", sha256: Self.a, size: 0) }
        #expect(TaskBlobRules.inputProblem(Self.spec(many), maxBytes: 10) { _ in 0 }?.contains("at most") == true)
        let twice = [InputRef(dest: "d", sha256: Self.a, size: 0), InputRef(dest: "d", sha256: Self.b, size: 0)]
        #expect(TaskBlobRules.inputProblem(Self.spec(twice), maxBytes: 10) { _ in 0 } != nil)
    }

    @Test func artifactsNotHeldMoveToSkipped() {
        var result = TaskResult(id: "t", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "", pid: nil, attempt: 1, startedAt: nil, finishedAt: 1)
        result.artifacts = [.init(path: "a.out", size: 1, sha256: Self.a), .init(path: "b.out", size: 1, sha256: Self.b),
                            .init(path: "c.out", size: 2, sha256: Self.a)]
        result.skippedArtifacts = [.init(path: "big", size: 1 << 40, reason: "over the limit")]
        let kept = TaskBlobRules.keepingHeld(result) { $0 == Self.a ? 1 : nil }
        #expect(kept.artifacts?.map(\.path) == ["a.out"])
        #expect(kept.skippedArtifacts?.map(\.path) == ["big", "b.out", "c.out"])
        #expect(kept.skippedArtifacts?.last?.reason == "not uploaded")
    }

    /// A hostile worker's result: paths `swarm fetch` would write outside its directory, a
    /// path twice, more refs than any worker may send. The scheduler names none of them.
    @Test func unsafeDuplicateAndExcessArtifactsAreSkipped() {
        var result = TaskResult(id: "t", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "", pid: nil, attempt: 1, startedAt: nil, finishedAt: 1)
        let bad = ["../../x", "/etc/passwd", "a/../../b", "", "a//b", "./a", "a\u{0}b"]
        result.artifacts = bad.map { ArtifactRef(path: $0, size: 1, sha256: Self.a) }
            + [.init(path: "ok", size: 1, sha256: Self.a), .init(path: "ok", size: 1, sha256: Self.a)]
        let kept = TaskBlobRules.keepingHeld(result) { _ in 1 }
        #expect(kept.artifacts?.map(\.path) == ["ok"])
        #expect(kept.skippedArtifacts?.count == bad.count + 1)
        #expect(kept.skippedArtifacts?.dropLast().allSatisfy { $0.reason.hasPrefix("not a safe relative path") } == true)
        #expect(kept.skippedArtifacts?.last?.reason == "another artifact has this path")

        let many = BlobLimits.maxArtifactsPerTask + 5
        result.artifacts = (0..<many).map { ArtifactRef(path: "f\($0)", size: 1, sha256: Self.a) }
        result.skippedArtifacts = (0..<2_000).map { SkippedArtifact(path: "s\($0)", size: nil, reason: "r") }
        let bounded = TaskBlobRules.keepingHeld(result) { _ in 1 }
        #expect(bounded.artifacts?.count == BlobLimits.maxArtifactsPerTask)
        #expect(bounded.skippedArtifacts?.count == TaskBlobRules.maxSkippedListed + 1)
        #expect(bounded.skippedArtifacts?.last?.reason == "\(2_000 + 5 - TaskBlobRules.maxSkippedListed) more skipped artifacts (not listed one by one)")
    }
}

/// A result's artifacts, skipped artifacts and git outcome reach `TaskInfo` and survive a
/// restart of the scheduler (the SQLite store), and a new run starts without them.
@Suite struct ResultArtifactsTests {
    typealias S = SchedulerStateTests

    @Test func artifactsReachTheInfoAndSurviveTheStore() throws {
        let dir = TaskStoreTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = S.t0
        var state = ClusterState()
        var store: TaskStore? = try TaskStore(directory: dir)
        try S.submit(&state, ["t"])
        _ = try S.register(&state, "a", slots: 1)
        _ = state.schedule(nowMs: t0 + 1, at: t0 + 1)
        var result = S.result("t", at: t0 + 2)
        result.artifacts = [.init(path: "out/a.bin", size: 3, sha256: BlobHash.of([1, 2, 3])),
                            .init(path: "swarm-t.bundle", size: 1, sha256: BlobHash.of([9]), kind: "gitBundle")]
        result.skippedArtifacts = [.init(path: "huge", size: 1 << 40, reason: "not uploaded")]
        result.git = GitOutcome(branch: "swarm/t", base: "abc", head: "def", commits: 2)
        _ = state.taskFinished(node: "a", result: result, at: t0 + 2)
        let info = try state.task("t")
        #expect(info.artifacts == result.artifacts && info.skippedArtifacts == result.skippedArtifacts && info.git == result.git)
        try store!.save(state.takeChanges(), at: t0 + 2)
        store = nil
        let loaded = try TaskStore(directory: dir).loadTasks()
        #expect(loaded.first?.info.artifacts == result.artifacts)
        #expect(loaded.first?.info.skippedArtifacts == result.skippedArtifacts)
        #expect(loaded.first?.info.git == result.git)
    }
}

/// `BlobStore` on real files: held blobs stay held across a reopen, leftovers of uploads do not.
@Suite struct BlobStoreTests {
    @Test func reopeningKeepsHeldBlobsAndEmptiesTmp() throws {
        let dir = TaskStoreTests.tempDir() + "/blobs"
        defer { BlobStore.removeTree(dir); rmdir(String(dir.dropLast(6))) }
        let data: [UInt8] = Array("hello blob".utf8)
        let sha = BlobHash.of(data)
        var store: BlobStore? = try BlobStore(root: dir)
        let writer = try store!.writer(for: sha, size: Int64(data.count))
        try writer.append(data)
        let fd = try writer.seal()
        #expect(BlobFile.makeDurable(fd: fd, temp: writer.tempPath, final: try store!.prepareFinal(sha)) == nil)
        let left = try store!.writer(for: BlobHash.of([1]), size: 5)
        try left.append([1, 2])
        #expect(FileManager.default.fileExists(atPath: left.tempPath))
        store = nil
        let reopened = try BlobStore(root: dir)
        #expect(reopened.heldSize(sha) == Int64(data.count))
        #expect(FileManager.default.contents(atPath: dir + "/\(sha.prefix(2))/\(sha)") == Data(data))
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp")).isEmpty)
        #expect(reopened.heldSize(BlobHash.of([1])) == nil)
    }

    @Test func aWriterRefusesMoreThanItsSizeAndAWrongHash() throws {
        let store = try BlobStore.temporary()
        defer { store.close() }
        let w = try store.writer(for: BlobHash.of([1, 2]), size: 2)
        #expect(throws: BlobFileError.self) { try w.append([1, 2, 3]) }
        try w.append([1, 3])
        #expect(throws: BlobFileError.self) { _ = try w.seal() }
        w.discard()
        #expect(!FileManager.default.fileExists(atPath: w.tempPath))
    }
}
