import Testing
@testable import SwarmProtocol
@testable import SwarmNode

/// The worker's blob cache bookkeeping: one fetch per blob, pins, LRU eviction within the
/// byte bound, waiting for room, failures.
@Suite struct BlobCacheIndexTests {
    static func hash(_ c: Character) -> String { String(repeating: c, count: 64) }
    static let a = hash("a"), b = hash("b"), c = hash("c"), d = hash("d")
    static func run(_ id: String) -> RunRef { RunRef(id: id, attempt: 1) }

    @Test func oneFetchPerBlobHoweverManyTasksWait() {
        var index = BlobCacheIndex(capacity: 1_000)
        #expect(index.request(Self.run("t1"), [(Self.a, 100)]) == [.fetch(sha256: Self.a, size: 100)])
        #expect(index.request(Self.run("t2"), [(Self.a, 100)]).isEmpty)
        #expect(index.request(Self.run("t3"), [(Self.a, 100), (Self.a, 100)]).isEmpty, "a blob named twice is one need")
        #expect(index.fetched(Self.a, problem: nil) == [.ready(Self.run("t1")), .ready(Self.run("t2")), .ready(Self.run("t3"))])
        // Ready now: a later task gets it at once.
        #expect(index.request(Self.run("t4"), [(Self.a, 100)]) == [.ready(Self.run("t4"))])
        #expect(index.usedBytes == 100)
    }

    @Test func aTaskIsReadyOnlyWhenAllOfItsBlobsAre() {
        var index = BlobCacheIndex(capacity: 1_000)
        #expect(index.request(Self.run("t1"), [(Self.a, 10), (Self.b, 20)]) == [.fetch(sha256: Self.a, size: 10), .fetch(sha256: Self.b, size: 20)])
        #expect(index.fetched(Self.b, problem: nil).isEmpty)
        #expect(index.fetched(Self.a, problem: nil) == [.ready(Self.run("t1"))])
    }

    @Test func aFailedFetchFailsEveryWaiterAndFreesItsRoom() {
        var index = BlobCacheIndex(capacity: 1_000)
        _ = index.request(Self.run("t1"), [(Self.a, 100), (Self.b, 50)])
        _ = index.request(Self.run("t2"), [(Self.a, 100)])
        let failed = index.fetched(Self.a, problem: "unknown blob")
        #expect(failed == [.failed(Self.run("t1"), sha256: Self.a, reason: "unknown blob"),
                           .failed(Self.run("t2"), sha256: Self.a, reason: "unknown blob")])
        #expect(index.usedBytes == 50, "b is still being fetched")
        #expect(index.fetched(Self.b, problem: nil).isEmpty, "t1 was failed: nobody waits for b")
        #expect(index.pinnedBytes == 0)
    }

    @Test func leastRecentlyUsedUnpinnedBlobsAreEvictedFirst() {
        var index = BlobCacheIndex(capacity: 300)
        for (task, blob) in [("t1", Self.a), ("t2", Self.b), ("t3", Self.c)] {
            _ = index.request(Self.run(task), [(blob, 100)])
            _ = index.fetched(blob, problem: nil)
            _ = index.release(Self.run(task))
        }
        // a is used again: b is now the least recently used.
        #expect(index.request(Self.run("t4"), [(Self.a, 100)]) == [.ready(Self.run("t4"))])
        _ = index.release(Self.run("t4"))
        #expect(index.request(Self.run("t5"), [(Self.d, 100)]) == [.evict(sha256: Self.b), .fetch(sha256: Self.d, size: 100)])
        #expect(index.usedBytes == 300)
        #expect(index.entries[Self.b] == nil)
    }

    @Test func aBlobAPreparingTaskNeedsIsNeverEvictedTheNextTaskWaitsForRoom() {
        var index = BlobCacheIndex(capacity: 250)
        _ = index.request(Self.run("t1"), [(Self.a, 100)])
        _ = index.request(Self.run("t2"), [(Self.b, 100)])
        _ = index.fetched(Self.a, problem: nil)
        // a is ready but t1 has not unpacked it yet (pinned); b is fetching: no room for c.
        #expect(index.request(Self.run("t3"), [(Self.c, 100)]).isEmpty)
        #expect(index.queuedTasks == 1)
        #expect(index.entries[Self.a] != nil)
        // t1 unpacked: a is unpinned, evicted for c, whose fetch starts.
        #expect(index.release(Self.run("t1")) == [.evict(sha256: Self.a), .fetch(sha256: Self.c, size: 100)])
        #expect(index.queuedTasks == 0)
        // Later tasks wait behind the queue, in order.
        #expect(index.fetched(Self.c, problem: nil) == [.ready(Self.run("t3"))])
    }

    @Test func inputsLargerThanTheWholeCacheFailAtOnce() {
        var index = BlobCacheIndex(capacity: 100)
        guard case .failed(let run, nil, let reason)? = index.request(Self.run("t1"), [(Self.a, 60), (Self.b, 60)]).first else {
            Issue.record("not failed"); return
        }
        #expect(run == Self.run("t1"))
        #expect(reason.contains("120 bytes") && reason.contains("at most 100 bytes"))
        #expect(index.request(Self.run("t2"), [(Self.a, 100)]) == [.fetch(sha256: Self.a, size: 100)], "exactly the capacity fits")
    }

    @Test func aKilledTaskReleasesItsPinsAndTheFetchStillFillsTheCache() {
        var index = BlobCacheIndex(capacity: 1_000)
        _ = index.request(Self.run("t1"), [(Self.a, 100)])
        #expect(index.release(Self.run("t1")).isEmpty)
        #expect(index.fetched(Self.a, problem: nil).isEmpty)
        #expect(index.entries[Self.a]?.ready == true && index.entries[Self.a]?.pins == 0)
    }

    @Test func blobsFoundAtStartAreCheckedOnceBeforeTheirFirstUse() {
        var index = BlobCacheIndex(capacity: 250)
        #expect(index.found(Self.a, size: 100, lastUse: 1).isEmpty)
        #expect(index.found(Self.b, size: 100, lastUse: 2).isEmpty)
        #expect(index.found(Self.c, size: 100, lastUse: 3) == [.evict(sha256: Self.a)], "over the bound at start: the oldest goes")
        #expect(index.request(Self.run("t1"), [(Self.b, 100)]) == [.verify(sha256: Self.b, size: 100)])
        #expect(index.request(Self.run("t2"), [(Self.b, 100)]).isEmpty, "one check for both")
        #expect(index.fetched(Self.b, problem: nil) == [.ready(Self.run("t1")), .ready(Self.run("t2"))])
        #expect(index.request(Self.run("t3"), [(Self.b, 100)]) == [.ready(Self.run("t3"))], "checked once")
    }
}
