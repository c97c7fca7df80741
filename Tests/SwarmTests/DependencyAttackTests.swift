import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Dependencies under attack (issue 13 item 4), pure: the paths that end or release a task
/// other than a run's result (a refused assignment, a runtime's default model arriving) must
/// keep held tasks held and let every end reach the tasks waiting for it.
@Suite struct DependencyAttackTests {
    typealias S = SchedulerStateTests
    typealias D = DependencyTests
    static let t0 = SchedulerStateTests.t0

    /// A task cancelled while its assignment was on the way, which the worker then refuses
    /// (slots busy, shutting down): the refusal ends it `cancelled`, and that end must reach
    /// its dependents (`after` ends `dependency_failed`, `afterAny` is released) and the
    /// shell (`.taskEnded`: waiters, logs, credential).
    @Test func aRefusedRunOfACancelledTaskEndsItForItsDependentsAndWaiters() throws {
        var state = try D.cluster()
        _ = try state.submitBatch([D.spec("a"), D.spec("b", after: ["a"]), D.spec("c", any: ["a"])], at: Self.t0)
        #expect(D.placed(&state) == ["a"])
        _ = try state.cancel("a", at: Self.t0)
        let ended = RetryTests.ended(state.taskRejected(node: "w", run: RunRef(id: "a", attempt: 1), nowMs: Self.t0, at: Self.t0))
        #expect(try state.task("a").state == .cancelled)
        #expect(ended == ["a", "b"])
        #expect(try state.task("b").state == .dependencyFailed)
        #expect(try state.task("c").state == .queued && state.queuedCount == 1)
        D.check(state)
    }
}
