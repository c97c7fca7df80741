import Testing
@testable import SwarmScheduler

/// `DependencyIndex` alone: counts, release, failure, and entries left behind by tasks that
/// stopped waiting for another reason.
@Suite struct DependencyIndexTests {
    @Test func aTaskIsReleasedByItsLastDependencyOnly() {
        var index = DependencyIndex()
        index.wait("d", sequence: 4, for: [("b", false), ("c", true)])
        #expect(index.unmetCount("d") == 2 && index.waitingCount == 1 && index.dependencyCount == 2)
        #expect(index.ended("c", succeeded: false) == ([], []))  // afterAny: any end will do
        #expect(index.unmetCount("d") == 1)
        #expect(index.ended("b", succeeded: true) == (["d"], []))
        #expect(index.waitingCount == 0 && index.dependencyCount == 0)
        // Ending again finds nothing: each end is visited once.
        #expect(index.ended("b", succeeded: true) == ([], []))
    }

    @Test func anAfterDependencyThatFailsFailsOnlyItsAfterDependents() {
        var index = DependencyIndex()
        index.wait("x", sequence: 2, for: [("a", false), ("z", false)])
        index.wait("y", sequence: 3, for: [("a", true)])
        #expect(index.ended("a", succeeded: false) == (["y"], ["x"]))
        #expect(index.unmetCount("x") == 0 && index.waitingCount == 0)
        // x's entry under z is stale now: z's end skips it.
        #expect(index.ended("z", succeeded: true) == ([], []))
    }

    @Test func aForgottenTaskIsSkippedAndALaterTaskOfTheSameIdIsNotConfused() {
        var index = DependencyIndex()
        index.wait("t", sequence: 1, for: [("a", false), ("b", false)])
        index.forget("t")
        // A new task named t (a later sequence) waits for b only.
        index.wait("t", sequence: 9, for: [("b", false)])
        #expect(index.ended("a", succeeded: false) == ([], []))
        #expect(index.unmetCount("t") == 1)
        #expect(index.ended("b", succeeded: true) == (["t"], []))
    }

    @Test func waitingForNothingAddsNothing() {
        var index = DependencyIndex()
        index.wait("t", sequence: 1, for: [])
        #expect(index.waitingCount == 0 && index.dependencyCount == 0)
    }

    /// Entries hold a slot, not an id: a slot freed by a released, failed or forgotten task
    /// and taken by another task is never confused with it (the sequence tells them apart).
    @Test func aReusedSlotIsNotConfusedWithTheTaskThatHadIt() {
        var index = DependencyIndex()
        index.wait("old", sequence: 1, for: [("a", false), ("b", false)])
        index.forget("old")
        // "new" takes the freed slot; old's entries under a and b are stale.
        index.wait("new", sequence: 2, for: [("b", false)])
        #expect(index.unmetCount("new") == 1 && index.unmetCount("old") == 0 && index.waitingCount == 1)
        #expect(index.ended("a", succeeded: false) == ([], []))
        #expect(index.unmetCount("new") == 1)
        #expect(index.ended("b", succeeded: true) == (["new"], []))
        // A slot freed by a failure is reused too.
        index.wait("x", sequence: 3, for: [("c", false), ("d", false)])
        #expect(index.ended("c", succeeded: false) == ([], ["x"]))
        index.wait("y", sequence: 4, for: [("d", true)])
        #expect(index.ended("d", succeeded: false) == (["y"], []))
        #expect(index.waitingCount == 0 && index.dependencyCount == 0)
    }

    /// A DAG's layers: each task of a layer waits for the whole previous one and is released
    /// by its last end only, in order; the slots of a layer are reused by the next.
    @Test func layersAreReleasedByTheirLastDependencyOnly() {
        var index = DependencyIndex()
        let width = 5
        var sequence: UInt64 = 0
        func layer(_ n: Int) -> [String] { (0..<width).map { "l\(n)-\($0)" } }
        for n in 1...3 {
            for id in layer(n) {
                sequence += 1
                index.wait(id, sequence: sequence, for: layer(n - 1).map { ($0, false) })
            }
        }
        for n in 0..<3 {
            for (i, id) in layer(n).enumerated() {
                let (released, failed) = index.ended(id, succeeded: true)
                #expect(failed.isEmpty)
                #expect(released == (i == width - 1 ? layer(n + 1) : []))
            }
        }
        #expect(index.waitingCount == 0 && index.dependencyCount == 0 && index.entryCount == 0)
    }

    /// Stale entries past `compactionFloor` and half of all are dropped, and the live ones
    /// (in slots that were reused meanwhile) still count.
    @Test func compactionKeepsLiveEntriesInReusedSlots() {
        var index = DependencyIndex()
        let many = DependencyIndex.compactionFloor + 10
        for i in 0..<many {
            index.wait("t\(i)", sequence: UInt64(i + 1), for: [("long", false), ("other", false)])
        }
        for i in 0..<many { index.forget("t\(i)") }
        index.wait("live", sequence: UInt64(many + 1), for: [("long", false)])
        // Compacted when the stale entries passed the floor: what is left is live.
        #expect(index.entryCount < 2 * many)
        #expect(index.ended("long", succeeded: true) == (["live"], []))
        #expect(index.waitingCount == 0)
    }
}
