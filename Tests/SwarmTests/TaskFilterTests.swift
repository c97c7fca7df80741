import Foundation
import Testing
@testable import SwarmScheduler
import SwarmProtocol
@testable import swarm

/// `swarm tasks --state --node --model --parent --since --limit --cursor` (issue 14 item 4):
/// the filter, its use by the scheduler page by page, and its bounds.
@Suite struct TaskFilterTests {
    typealias C = ClientRequestsTests

    static func ids(_ outcome: ClientOutcome) -> [String] {
        guard case .taskList(let list)? = outcome.replies.first else { return [] }
        return list.tasks.map(\.id)
    }

    @Test func aFilterMatchesEveryFieldGivenAndNothingElse() throws {
        let state = try C.state()
        let run = try state.task("run"), child = try state.task("c"), done = try state.task("done")
        #expect(TaskFilter().matches(run) && TaskFilter().isEmpty)
        #expect(TaskFilter(states: [.running]).matches(run) && !TaskFilter(states: [.running]).matches(child))
        #expect(TaskFilter(states: [.queued, .cancelled]).matches(done))
        #expect(TaskFilter(node: "w1").matches(run) && !TaskFilter(node: "w1").matches(child) && !TaskFilter(node: "w2").matches(run))
        #expect(TaskFilter(parent: "r").matches(child) && !TaskFilter(parent: "r").matches(run))
        #expect(TaskFilter(since: 3).matches(child) && !TaskFilter(since: 3).matches(run) && TaskFilter(since: 1).matches(run))
        #expect(!TaskFilter(states: [.running], parent: "r").matches(child))  // every field must match
    }

    @Test func theSchedulerAppliesTheFilterPageByPage() throws {
        var state = try C.state()
        let queued = C.handle(.listTasks(.init(requestId: 1, filter: TaskFilter(states: [.queued]))), &state)
        #expect(Self.ids(queued) == ["r", "c", "o"])
        #expect(outcomeYields(queued))
        let firstQueued = C.handle(.listTasks(.init(requestId: 1, limit: 1, filter: TaskFilter(states: [.queued]))), &state)
        #expect(Self.ids(firstQueued) == ["r"])
        guard case .taskList(let page)? = firstQueued.replies.first else { Issue.record("no page"); return }
        let rest = C.handle(.listTasks(.init(requestId: 1, after: page.next, filter: TaskFilter(states: [.queued]))), &state)
        #expect(Self.ids(rest) == ["c", "o"])
        // A task credential still sees only its subtree, filter or not.
        let mine = C.handle(.listTasks(.init(requestId: 1, filter: TaskFilter(states: [.queued]))), as: .task("r"), &state)
        #expect(Self.ids(mine) == ["r", "c"])
    }

    private func outcomeYields(_ outcome: ClientOutcome) -> Bool { outcome.flow.contains(.yieldTurn) }

    @Test func aFilterOutOfBoundsIsRefusedWithOneLine() throws {
        let long = String(repeating: "x", count: TaskFilter.maxNameBytes + 1)
        for filter in [TaskFilter(states: []), TaskFilter(node: long), TaskFilter(model: ""), TaskFilter(parent: long)] {
            let refusal = try #require(try C.refusal(.listTasks(.init(requestId: 1, filter: filter))))
            #expect(refusal.code == .badMessage && refusal.reason.hasPrefix("a task filter") && !refusal.reason.contains("\n"))
        }
        #expect(TaskFilter(node: String(repeating: "x", count: TaskFilter.maxNameBytes)).problem == nil)
    }

    @Test func sinceReadsDurationsAndTimes() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(TasksCommand.time("90s", now: now) == Int64(999_910_000))
        #expect(TasksCommand.time("10m", now: now) == Int64(999_400_000))
        #expect(TasksCommand.time("2h", now: now) == Int64(992_800_000))
        #expect(TasksCommand.time("1d", now: now) == Int64(913_600_000))
        #expect(TasksCommand.time("2026-12-02T10:00:00Z", now: now) == 1_796_205_600_000)
        for bad in ["", "10", "x", "-5m", "10y", "1e400s", "2026-13-02T10:00:00Z", "2026-12-02T25:00:00Z", "2026-02-30", "nans"] {
            #expect(TasksCommand.time(bad, now: now) == nil, "\(bad)")
        }
    }
}

/// `swarm tasks` with filters and pages, through the real CLI and scheduler.
@Suite(.serialized) struct TasksCommandEndToEndTests {
    typealias E = EndToEndTests

    static func ids(_ stdout: String) throws -> [String] {
        let list = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [[String: Any]])
        return list.compactMap { $0["id"] as? String }
    }

    @Test func filtersLimitsAndCursorsThroughTheCLI() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        for i in 1...5 {
            let r = try harness.run(["submit", "--scheduler", address, "--id", "t\(i)", "--", "true"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        for id in ["t2", "t4"] { _ = try harness.run(["cancel", "--scheduler", address, id]) }
        let s = ["--scheduler", address, "--json"]

        let cancelled = try harness.run(["tasks"] + s + ["--state", "cancelled"])
        #expect(try Self.ids(cancelled.stdout) == ["t2", "t4"])
        let both = try harness.run(["tasks"] + s + ["--state", "queued,cancelled", "--since", "1h"])
        #expect(try Self.ids(both.stdout) == ["t1", "t2", "t3", "t4", "t5"])
        let none = try harness.run(["tasks"] + s + ["--node", "nowhere"])
        let noneIds = try Self.ids(none.stdout)
        #expect(none.status == 0 && noneIds.isEmpty)

        let first = try harness.run(["tasks"] + s + ["--limit", "2"])
        #expect(try Self.ids(first.stdout) == ["t1", "t2"])
        #expect(first.stderr.contains("--cursor t2"), "\(first.stderr)")
        let rest = try harness.run(["tasks"] + s + ["--cursor", "t2", "--limit", "0"])
        #expect(try Self.ids(rest.stdout) == ["t3", "t4", "t5"])
        #expect(!rest.stderr.contains("--cursor"))

        for bad in [["--state", "done"], ["--state", ""], ["--state", ","], ["--since", "yesterday"], ["--limit", "-1"], ["--cursor", "../x"]] {
            let r = try harness.run(["tasks"] + s + bad)
            #expect(r.status != 0, "\(bad)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(bad): \(r.stderr)")
        }
        let unknown = try harness.run(["tasks"] + s + ["--cursor", "t9"])
        #expect(unknown.status != 0 && unknown.stderr.contains("t9"))
    }
}
