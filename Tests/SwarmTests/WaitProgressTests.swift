import Foundation
import Testing
import SwarmClient
@testable import SwarmScheduler
import SwarmProtocol

/// The live progress line of a wait (issue 15 item 3): the pure `WaitProgress`, the
/// scheduler's `states` request, and the line on a real terminal (a pty from `script`).
@Suite struct WaitProgressTests {
    @Test func tasksSeenEndedAreNotAskedAgainAndQueriesGoRoundRobin() {
        var p = WaitProgress(ids: ["a", "b", "c", "d", "e"], nowMs: 0)
        #expect(p.query(limit: 2) == ["a", "b"])
        p.apply(asked: ["a", "b"], states: [.succeeded, .running], nowMs: 100)
        #expect(p.done == 1)
        #expect(p.query(limit: 2) == ["c", "d"])  // continues after b (a is gone)
        p.apply(asked: ["c", "d"], states: [.failed, nil], nowMs: 200)  // d unknown: still asked
        #expect(p.done == 2 && p.notSucceeded == 1)
        #expect(p.query(limit: 2) == ["e"])
        #expect(p.query(limit: 2) == ["b", "d"])  // wrapped
        #expect(p.line(nowMs: 900) == "2/5 done (1 not succeeded), 1 running, 2 queued")
        p.apply(asked: ["b", "d", "e"], states: [.succeeded, .succeeded, .cancelled], nowMs: 1_000)
        #expect(p.done == 5 && p.query(limit: 10).isEmpty)
    }

    @Test func rateAndETAAppearAfterOneSecondAndOneTaskDoneOverATenSecondWindow() {
        var p = WaitProgress(ids: (1...100).map { "t\($0)" }, nowMs: 0)
        let first = p.query(limit: 10)
        p.apply(asked: first, states: Array(repeating: .succeeded, count: 10), nowMs: 999)
        #expect(p.rate(nowMs: 999) == nil)  // under 1 s: no rate yet
        #expect(p.rate(nowMs: 1_000) == 10)  // 10 done in 1 s
        #expect(p.line(nowMs: 1_000) == "10/100 done, 0 running, 90 queued, 10/s, ETA 9 s")
        // Nothing more for 20 s: the window (10 s) forgets the burst, the rate falls to none.
        p.apply(asked: p.query(limit: 5), states: Array(repeating: .running, count: 5), nowMs: 21_000)
        p.apply(asked: [], states: [], nowMs: 22_000)
        #expect(p.rate(nowMs: 22_000) == nil)
        #expect(p.line(nowMs: 22_000) == "10/100 done, 5 running, 85 queued")
    }

    @Test func durationsAndTreeCounts() {
        #expect(WaitProgress.duration(seconds: 0) == "0 s")
        #expect(WaitProgress.duration(seconds: 59) == "59 s")
        #expect(WaitProgress.duration(seconds: 60) == "1 min")
        #expect(WaitProgress.duration(seconds: 125) == "2 min 5 s")
        #expect(WaitProgress.duration(seconds: 3_600) == "1 h")
        #expect(WaitProgress.duration(seconds: 3_780) == "1 h 3 min")
        var tree = WaitProgress(treeOf: "root", nowMs: 0)
        tree.applyTree(total: 40, pendingCount: 30, nowMs: 2_000)
        #expect(tree.line(nowMs: 2_000) == "10/40 done, 30 pending, 5.0/s, ETA 6 s")
        // A page without counts (the tree grew past TreeLimits.maxTreeTasks) is no news.
        tree.applyTree(total: nil, pendingCount: nil, nowMs: 2_500)
        #expect(tree.line(nowMs: 2_500) == "10/40 done, 30 pending, 4.0/s, ETA 8 s")
    }

    @Test func statesAnswersEachIdInOrderAndIsBoundedAndScoped() throws {
        var state = try ClientRequestsTests.state()
        let outcome = ClientRequestsTests.handle(.states(.init(requestId: 4, ids: ["run", "nope", "done", "o"])), &state)
        #expect(outcome.replies == [.taskStates(.init(requestId: 4, states: [.running, nil, .cancelled, .queued]))])
        let many = (0...WaitSummary.maxIds).map { "x\($0)" }
        let refused = try #require(try ClientRequestsTests.refusal(.states(.init(requestId: 1, ids: many))))
        #expect(refused.reason == "states names \(WaitSummary.maxIds + 1) task ids; at most \(WaitSummary.maxIds) per request")
        let outside = try #require(try ClientRequestsTests.refusal(.states(.init(requestId: 1, ids: ["c", "o"])), as: .task("r")))
        #expect(outside.reason.hasPrefix("task 'o' is outside the subtree of task 'r'"))
    }

    /// On a terminal (a pty made by `script`) `swarm wait` draws the line and erases it
    /// before the results; through a pipe it prints the results alone. `tasks --watch`
    /// redraws in place on a terminal and appends elsewhere.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "script (util-linux) is not installed"))
    func theLineShowsOnATerminalOnlyAndWatchRefreshes() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w1", "--data-dir", "\(harness.dir)/w1"])
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1)
        for i in 1...3 { #expect(try harness.run(["submit", "--id", "s\(i)", "--scheduler", address, "--", "sleep", "1.5"]).status == 0) }
        let command = "\(ProcessHarness.swarmBinary) wait s1 s2 s3 --scheduler \(address)"
        let tty = try Self.script(command, in: harness.dir)
        #expect(tty.contains("\r\u{1B}[K0/3 done"), "no progress line: \(tty.debugDescription)")
        #expect(tty.contains("\r\u{1B}[Ks1 succeeded (exit 0)"))  // erased before the results
        let piped = try harness.run(["wait", "s1", "s2", "s3", "--scheduler", address])
        #expect(piped.status == 0 && !piped.stderr.contains("done") && !piped.stdout.contains("\u{1B}"))
        let watch = try Self.script("timeout 1.5 \(ProcessHarness.swarmBinary) tasks --watch --interval 0.2 --scheduler \(address)", in: harness.dir)
        #expect(watch.components(separatedBy: "\u{1B}[H\u{1B}[2J").count >= 3 && watch.contains("s3"))
        let bad = try harness.run(["tasks", "--watch", "--interval", "0.1", "--scheduler", address])
        #expect(bad.status == 64 && bad.stderr == "swarm: error: --interval must be 0.2 to 3600 seconds, got 0.1\n")
        #expect(try harness.run(["tasks", "--interval", "1", "--scheduler", address]).status == 64)
    }

    /// `command` run under a pseudo-terminal; what the terminal showed.
    static func script(_ command: String, in dir: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", command, "/dev/null"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env["TERM"] = "xterm"
        process.environment = env
        let out = try CapturedRun.run(process, timeout: 30)
        return out.stdout
    }
}

/// What one `states` (or `wait`) frame may cost the scheduler's loop when it names tasks that
/// left memory: a hostile client repeats ids and names the deepest tasks of a long chain.
@Suite struct StatesCostTests {
    /// Counts the archive's reads of whole task records and of single states.
    final class Reads { var records = 0; var states = 0 }

    /// Tasks `a1`...`aN` that left memory, each the child of the one before (`a1` of `r`,
    /// held in memory), with an output worth decoding.
    static func archive(depth: Int, reads: Reads) -> (ClusterState, ClientRequestContext) {
        var snapshots: [TaskSnapshot] = []
        for i in 1...depth {
            var spec = TaskSpec(id: "a\(i)", command: ["true"])
            spec.parent = i == 1 ? "r" : "a\(i - 1)"
            var info = TaskInfo(id: "a\(i)", state: .succeeded, command: ["true"], attempts: 1, submittedAt: 1)
            info.parent = spec.parent
            info.output = String(repeating: "x", count: 1_000)
            snapshots.append(TaskSnapshot(spec: spec, info: info, sequence: UInt64(i + 10)))
        }
        let stored = TaskArchive.of(snapshots)
        let archive = TaskArchive(task: { reads.records += 1; return stored.task($0) }, contains: stored.contains, page: stored.page)
        var context = ClientRequestsTests.context
        context.archive = archive
        context.endedTaskState = { reads.states += 1; return stored.task($0)?.info.state }
        var state = ClusterState()
        _ = try? state.submit(TaskSpec(id: "r", command: ["true"]), at: 1)
        return (state, context)
    }

    @Test func statesReadsEachTaskThatLeftMemoryOnceAndNeverItsWholeRecord() throws {
        let reads = Reads()
        var (state, context) = Self.archive(depth: 3, reads: reads)
        let same = Array(repeating: "a3", count: WaitSummary.maxIds)
        let outcome = ClientRequestsTests.handle(.states(.init(requestId: 1, ids: same + [])), &state, context)
        #expect(outcome.replies == [.taskStates(.init(requestId: 1, states: Array(repeating: .succeeded, count: WaitSummary.maxIds)))])
        #expect(reads.records == 0 && reads.states == 1)
        reads.states = 0
        let mixed = ClientRequestsTests.handle(.states(.init(requestId: 2, ids: ["a1", "r", "nope", "a2", "a1", "nope"])), &state, context)
        #expect(mixed.replies == [.taskStates(.init(requestId: 2, states: [.succeeded, .queued, nil, .succeeded, .succeeded, nil]))])
        #expect(reads.records == 0 && reads.states == 3)
    }

    /// A task's credential naming the deepest task of a chain 2,000 times: each id is judged
    /// once, and a walk up the chain stops where an earlier one has been.
    @Test func aTaskCredentialRepeatingADeepIdWalksTheChainOnce() throws {
        for message in [Message.states(.init(requestId: 1, ids: Array(repeating: "a50", count: WaitSummary.maxIds))),
                        .states(.init(requestId: 1, ids: (1...50).reversed().map { "a\($0)" })),
                        .wait(.init(requestId: 1, ids: Array(repeating: "a50", count: WaitSummary.maxIds)))] {
            let reads = Reads()
            var (state, context) = Self.archive(depth: 50, reads: reads)
            let outcome = ClientRequestsTests.handle(message, as: .task("r"), &state, context)
            #expect(outcome.refusal == nil)
            #expect(reads.records <= 2 * 50 + 2, "\(message.type): \(reads.records) record reads")
        }
    }
}

extension StatesCostTests {
    /// Judging each id once must not change a single answer: an unknown id named first does
    /// not vouch for a task whose parent it would be, nor a walk's memory for another root.
    @Test func rememberedAnswersChangeNoVerdict() throws {
        let reads = Reads()
        var (state, context) = Self.archive(depth: 3, reads: reads)
        var orphan = TaskSpec(id: "orphan", command: ["true"])
        orphan.parent = "gone"
        _ = try state.submit(orphan, at: 2)
        for ids in [["gone", "orphan"], ["a3", "orphan"], ["a1", "a2", "a3", "orphan"]] {
            let outcome = ClientRequestsTests.handle(.states(.init(requestId: 1, ids: ids)), as: .task("r"), &state, context)
            #expect(outcome.refusal?.reason.hasPrefix("task 'orphan' is outside the subtree of task 'r'") == true, "\(ids)")
        }
        let inside = ClientRequestsTests.handle(.states(.init(requestId: 1, ids: ["gone", "a3", "a2", "a1", "r"])), as: .task("a1"), &state, context)
        #expect(inside.refusal?.reason.hasPrefix("task 'r' is outside the subtree of task 'a1'") == true)
        let fine = ClientRequestsTests.handle(.states(.init(requestId: 1, ids: ["gone", "a3", "a2", "a1"])), as: .task("a1"), &state, context)
        #expect(fine.replies == [.taskStates(.init(requestId: 1, states: [nil, .succeeded, .succeeded, .succeeded]))])
    }
}

extension StatesCostTests {
    /// Subtree walks over tasks that left memory read each parent from the store's column of
    /// JSON, not by decoding the record (its output may be megabytes): the answer is the same.
    @Test func theStoreGivesAParentWithoutTheRecord() throws {
        let dir = NSTemporaryDirectory() + "parents-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TaskStore(directory: dir)
        defer { store.close() }
        var snapshots: [TaskSnapshot] = []
        for (i, id) in ["top", "mid", "leaf"].enumerated() {
            var spec = TaskSpec(id: id, command: ["true"])
            spec.parent = i == 0 ? nil : ["top", "mid"][i - 1]
            var info = TaskInfo(id: id, state: .succeeded, command: ["true"], attempts: 1, submittedAt: 1)
            info.parent = spec.parent
            info.output = String(repeating: "o", count: 100_000)
            snapshots.append(TaskSnapshot(spec: spec, info: info, sequence: UInt64(i + 1)))
        }
        try store.save(StateChanges(tasks: snapshots), at: 1)
        let archive = store.archive
        #expect(archive.parent("leaf") == "mid" && archive.parent("mid") == "top")
        #expect(archive.parent("top") == nil && archive.parent("nope") == nil)
        #expect(ClusterState().isInSubtree("leaf", of: "top", archive: archive))
        #expect(!ClusterState().isInSubtree("top", of: "leaf", archive: archive))
        #expect(TaskArchive.of(snapshots).parent("leaf") == "mid")  // the default: from the record
    }
}
