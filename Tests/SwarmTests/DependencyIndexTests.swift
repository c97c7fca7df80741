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
}
