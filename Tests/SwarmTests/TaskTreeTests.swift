import Foundation
import Testing
@testable import SwarmClient
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Issue 13 item 5, the pure parts: the children index (submit, forward-named parents, loops,
/// restore), the tree's pages, `cancelTree` and what keeps new tasks out of a cancelled tree,
/// the readiness of `wait --recursive`, and the renderings. No sockets; fixed clocks.
@Suite struct TaskTreeTests {
    typealias S = SchedulerStateTests
    static let t0: Int64 = 1_000

    static func spec(_ id: String, parent: String? = nil) -> TaskSpec {
        var spec = TaskSpec(id: id, command: ["run", id])
        spec.parent = parent
        return spec
    }

    /// r -> (a -> (a1, a2), b); o alone. Submitted in the order given.
    static func state(_ extra: [(String, String?)] = []) throws -> ClusterState {
        var state = ClusterState()
        let tasks: [(String, String?)] = [("r", nil), ("a", "r"), ("o", nil), ("a1", "a"), ("b", "r"), ("a2", "a")] + extra
        for (id, parent) in tasks { _ = try state.submit(spec(id, parent: parent), at: t0) }
        return state
    }

    /// Every entry of a listing as `depth:id`, page by page of `limit`.
    static func preorder(_ state: ClusterState, root: String?, limit: Int = 1_000) throws -> [String] {
        var all: [String] = []
        var after: String?
        for _ in 0..<100 {
            let page = try #require(state.treePage(root: root, after: after, limit: limit, maxBytes: 1 << 20, size: { _ in 1 }))
            all += page.entries.map { "\($0.depth):\($0.task.id)" }
            guard let next = page.next else { return all }
            after = next
        }
        Issue.record("the listing did not end")
        return all
    }

    // MARK: The index

    @Test func theIndexListsChildrenInSubmissionOrderAndATreeCostsItsSize() throws {
        let state = try Self.state()
        #expect(state.tree.children["r"] == ["a", "b"])
        #expect(state.tree.children["a"] == ["a1", "a2"])
        #expect(state.treeIds("r") == ["r", "a", "b", "a1", "a2"])
        #expect(state.treeIds("a") == ["a", "a1", "a2"])
        #expect(state.treeIds("b") == ["b"])
        #expect(state.treeIds("nope") == nil)
        // The bound, at its edge: 5 tasks fit a limit of 5, not of 4.
        #expect(state.treeIds("r", limit: 5)?.count == 5)
        #expect(state.treeIds("r", limit: 4) == nil)
    }

    @Test func aParentSubmittedAfterItsChildAdoptsIt() throws {
        var state = ClusterState()
        _ = try state.submit(Self.spec("kid", parent: "later"), at: Self.t0)
        // Until its parent comes, the child is a root.
        #expect(try Self.preorder(state, root: nil) == ["0:kid"])
        _ = try state.submit(Self.spec("later"), at: Self.t0)
        #expect(state.treeIds("later") == ["later", "kid"])
        #expect(try Self.preorder(state, root: nil) == ["0:later", "1:kid"])
    }

    @Test func aLoopOfParentsIsCutSoEveryWalkEnds() throws {
        var state = ClusterState()
        _ = try state.submit(Self.spec("x", parent: "y"), at: Self.t0)
        _ = try state.submit(Self.spec("y", parent: "x"), at: Self.t0)
        _ = try state.submit(Self.spec("self", parent: "self"), at: Self.t0)
        // y's link would close the loop: y is a root with x under it.
        #expect(state.tree.cut == ["y", "self"])
        #expect(state.treeIds("y") == ["y", "x"])
        #expect(state.treeIds("x") == ["x"])
        #expect(state.treeIds("self") == ["self"])
        #expect(try Self.preorder(state, root: nil) == ["0:y", "1:x", "0:self"])
    }

    @Test func aRestartRebuildsTheSameIndex() throws {
        var state = try Self.state([("kid", "late"), ("late", "b"), ("p", "q"), ("q", "p")])
        let before = try Self.preorder(state, root: nil)
        #expect(before == ["0:r", "1:a", "2:a1", "2:a2", "1:b", "2:late", "3:kid", "0:o", "0:q", "1:p"])
        let snapshots = state.takeChanges().tasks
        let back = ClusterState(settings: SchedulerSettings(), restoring: snapshots.shuffled(), nowMs: 5, at: Self.t0 + 5)
        #expect(try Self.preorder(back, root: nil) == before)
        #expect(back.tree.children == state.tree.children)
        #expect(back.tree.cut == state.tree.cut)
        #expect(back.treeIds("r") == state.treeIds("r"))
    }

    // MARK: Pages

    @Test func pagesGoOnFromTheirLastEntryInPreorder() throws {
        let state = try Self.state()
        let whole = ["0:r", "1:a", "2:a1", "2:a2", "1:b"]
        #expect(try Self.preorder(state, root: "r") == whole)
        for limit in 1...5 { #expect(try Self.preorder(state, root: "r", limit: limit) == whole) }
        #expect(try Self.preorder(state, root: "a", limit: 1) == ["0:a", "1:a1", "1:a2"])
        #expect(try Self.preorder(state, root: nil, limit: 2) == whole + ["0:o"])
        // A cursor outside the tree, or unknown, is no entry of it.
        #expect(state.treePage(root: "a", after: "b", limit: 10, maxBytes: 1 << 20, size: { _ in 1 }) == nil)
        #expect(state.treePage(root: "a", after: "zz", limit: 10, maxBytes: 1 << 20, size: { _ in 1 }) == nil)
        // Bytes bound a page too, which always holds one entry.
        let page = try #require(state.treePage(root: "r", after: nil, limit: 10, maxBytes: 25, size: { _ in 10 }))
        #expect(page.entries.map(\.task.id) == ["r", "a"] && page.next == "a")
        let one = try #require(state.treePage(root: "r", after: nil, limit: 10, maxBytes: 5, size: { _ in 10 }))
        #expect(one.entries.count == 1 && one.next == "r")
    }

    @Test func listTreeCountsTheTreeOnItsFirstPageAndKeepsACredentialInsideItsSubtree() throws {
        var state = try Self.state()
        let context = ClientRequestContext(nowMs: 5, at: Self.t0)
        var outcome = ClientRequests.handle(.listTree(.init(requestId: 1, id: "a", limit: 2)), identity: .cluster, state: &state, context: context)
        guard case .taskTree(let first) = outcome.replies.first else { Issue.record("no tree: \(outcome)"); return }
        #expect(first.entries.map(\.task.id) == ["a", "a1"] && first.next == "a1")
        #expect(first.total == 3 && first.pendingCount == 3 && first.pending == ["a", "a1", "a2"])
        #expect(outcome.flow == [.yieldTurn])
        // Task a's credential: no id means its own tree; o is outside it.
        outcome = ClientRequests.handle(.listTree(.init(requestId: 2)), identity: .task("a"), state: &state, context: context)
        guard case .taskTree(let own) = outcome.replies.first else { Issue.record("no tree: \(outcome)"); return }
        #expect(own.entries.map(\.task.id) == ["a", "a1", "a2"] && own.total == 3)
        outcome = ClientRequests.handle(.listTree(.init(requestId: 3, id: "o")), identity: .task("a"), state: &state, context: context)
        #expect(outcome.refusal?.reason.contains("outside the subtree") == true)
        outcome = ClientRequests.handle(.listTree(.init(requestId: 4, id: "a", after: "o")), identity: .cluster, state: &state, context: context)
        #expect(outcome.refusal?.code == .unknownTask)
    }

    // MARK: Cancel

    /// r runs on w1; its tree: a (queued), a1 (queued), b (succeeded on w1 before), a2 (queued).
    static func runningTree() throws -> ClusterState {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: 2, labels: [:], running: [], finished: [], address: nil, nowMs: 1, at: t0)
        _ = try state.submit(spec("r"), at: t0)
        _ = try state.submit(spec("b", parent: "r"), at: t0)
        _ = state.schedule(nowMs: 2, at: t0)
        _ = state.taskFinished(node: "w1", result: S.result("b", at: t0 + 1), at: t0 + 1)
        for (id, parent) in [("a", "r"), ("a1", "a"), ("a2", "a")] { _ = try state.submit(spec(id, parent: parent), at: t0 + 2) }
        _ = try state.submit(spec("o"), at: t0 + 2)
        return state
    }

    @Test func cancelTreeCancelsEveryTaskBelowInOneTurnAndCountsThem() throws {
        var state = try Self.runningTree()
        let context = ClientRequestContext(nowMs: 10, at: Self.t0 + 3)
        let outcome = ClientRequests.handle(.cancelTree(.init(requestId: 7, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(outcome.replies == [.treeCancelled(.init(requestId: 7, id: "r", total: 5, cancelled: 3, killing: 1, alreadyEnded: 1))])
        #expect(outcome.directives.contains(.kill(node: "w1", run: RunRef(id: "r", attempt: 1), reason: "cancelled by user")))
        #expect(Set(outcome.directives.compactMap { if case .taskEnded(let id) = $0 { id } else { nil } }) == ["a", "a1", "a2"])
        for id in ["a", "a1", "a2"] { #expect(try state.task(id).state == .cancelled) }
        #expect(try state.task("b").state == .succeeded)
        #expect(try state.task("o").state == .queued)
        #expect(state.isBeingCancelled("r"))
        // The queue lost exactly the tree's queued tasks (taken out in one pass): o is placed next.
        #expect(state.queuedCount == 1)
        _ = state.taskFinished(node: "w1", result: S.result("r", .failed, at: Self.t0 + 4), at: Self.t0 + 4)
        #expect(S.assigns(state.schedule(nowMs: 11, at: Self.t0 + 5)).map(\.id) == ["o"])
        // Again: nothing more to do, the same counts of what is there.
        let again = ClientRequests.handle(.cancelTree(.init(requestId: 8, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(again.replies == [.treeCancelled(.init(requestId: 8, id: "r", total: 5, cancelled: 0, killing: 0, alreadyEnded: 5))])
        #expect(again.directives.isEmpty && again.log.isEmpty)
    }

    @Test func nothingJoinsACancelledTree() throws {
        var state = try Self.runningTree()
        let context = ClientRequestContext(nowMs: 10, at: Self.t0 + 3)
        _ = ClientRequests.handle(.cancelTree(.init(requestId: 1, id: "r")), identity: .cluster, state: &state, context: context)
        func submit(_ spec: TaskSpec, as identity: ClientIdentity = .cluster) -> ClientOutcome {
            ClientRequests.handle(.submit(.init(requestId: 2, task: spec)), identity: identity, state: &state, context: context)
        }
        // Under a task it cancelled (ended), or one being killed: refused, whoever asks.
        #expect(submit(Self.spec("n1", parent: "a1")).refusal?.reason == "parent 'a1' was cancelled: a cancelled task takes no new children")
        #expect(submit(Self.spec("n2", parent: "r")).refusal?.reason == "parent 'r' is being cancelled: a cancelled task takes no new children")
        // The credential of a task being killed submits nothing, even under a task that ended well.
        #expect(submit(Self.spec("n3", parent: "b"), as: .task("r")).refusal?.reason == "task 'r' is being cancelled: its credential may not submit tasks")
        #expect(submit(Self.spec("n4"), as: .task("r")).refusal != nil)
        let batch = ClientRequests.handle(.submitBatch(.init(requestId: 3, tasks: [Self.spec("n5"), Self.spec("n6", parent: "a")])),
                                          identity: .cluster, state: &state, context: context)
        #expect(batch.refusal?.reason == "task n6: parent 'a' was cancelled: a cancelled task takes no new children")
        #expect((try? state.task("n5")) == nil)
        // Elsewhere, and under a parent that is not a task, submits go on.
        #expect(submit(Self.spec("n7", parent: "o")).refusal == nil)
        #expect(submit(Self.spec("n8", parent: "unknown")).refusal == nil)
        // Once r's run ends (cancelled), its tree is closed for good.
        var killed = S.result("r", .failed, at: Self.t0 + 4)
        killed.signal = 15
        _ = state.taskFinished(node: "w1", result: killed, at: Self.t0 + 4)
        #expect(try state.task("r").state == .cancelled)
        #expect(submit(Self.spec("n9", parent: "r")).refusal?.reason == "parent 'r' was cancelled: a cancelled task takes no new children")
    }

    @Test func aTreeOverTheLimitIsRefusedAndNothingChanges() throws {
        var state = try Self.runningTree()
        var context = ClientRequestContext(nowMs: 10, at: Self.t0 + 3)
        context.treeLimit = 4
        let before = state.listTasks()
        let outcome = ClientRequests.handle(.cancelTree(.init(requestId: 1, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(outcome.refusal?.reason.hasPrefix("the tree of task 'r' has more than 4 tasks") == true)
        #expect(state.listTasks() == before)
        // At the limit it goes.
        context.treeLimit = 5
        let fits = ClientRequests.handle(.cancelTree(.init(requestId: 2, id: "r")), identity: .cluster, state: &state, context: context)
        #expect(fits.refusal == nil)
        let unknown = ClientRequests.handle(.cancelTree(.init(requestId: 3, id: "zz")), identity: .cluster, state: &state, context: context)
        #expect(unknown.refusal?.code == .unknownTask)
    }

    // MARK: Wait readiness

    @Test func aRecursiveWaitEndsOnlyWhenEveryTaskKnownHasEnded() throws {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: 4, labels: [:], running: [], finished: [], address: nil, nowMs: 1, at: Self.t0)
        _ = try state.submit(Self.spec("r"), at: Self.t0)
        _ = try state.submit(Self.spec("c", parent: "r"), at: Self.t0)
        _ = state.schedule(nowMs: 2, at: Self.t0)
        let wait = RecursiveWait(root: "r")
        func step() -> RecursiveWait.Step {
            let p = state.treeProgress("r")
            return wait.next(Message.TaskTree(requestId: 1, entries: [], total: p?.total, pendingCount: p?.pendingCount, pending: p?.pending))
        }
        #expect(step() == .wait(["r", "c"]))
        _ = state.taskFinished(node: "w1", result: S.result("r", at: Self.t0 + 1), at: Self.t0 + 1)
        #expect(step() == .wait(["c"]))
        // c, still running, adds a grandchild: it is waited for too.
        _ = try state.submit(Self.spec("g", parent: "c"), at: Self.t0 + 2)
        _ = state.taskFinished(node: "w1", result: S.result("c", at: Self.t0 + 3), at: Self.t0 + 3)
        #expect(step() == .wait(["g"]))
        _ = state.schedule(nowMs: 4, at: Self.t0 + 4)
        _ = state.taskFinished(node: "w1", result: S.result("g", .failed, at: Self.t0 + 5), at: Self.t0 + 5)
        #expect(step() == .done)
        #expect(state.treeProgress("r")?.total == 3)
        // The pending ids are bounded; over the tree limit there is no count at all.
        #expect(state.treeProgress("r", limit: 2) == nil)
        #expect(wait.next(Message.TaskTree(requestId: 1, entries: [])) == .tooLarge("the tree of task 'r' has more than \(TreeLimits.maxTreeTasks) tasks, the most one request takes"))
    }

    @Test func pendingIdsAreCutAtTheirBound() throws {
        let state = try Self.state()
        let progress = try #require(state.treeProgress("r", maxIds: 2))
        #expect(progress.total == 5 && progress.pendingCount == 5 && progress.pending == ["r", "a"])
    }

    // MARK: Rendering

    static func entries() -> [TreeEntry] {
        func info(_ id: String, _ state: TaskState, node: String? = nil, exit: Int? = nil) -> TaskInfo {
            var info = TaskInfo(id: id, state: state, command: ["run"], submittedAt: 1)
            info.metrics.node = node
            info.exitCode = exit
            return info
        }
        return [TreeEntry(depth: 0, task: info("r", .running, node: "w1")),
                TreeEntry(depth: 1, task: info("a", .succeeded, node: "w2", exit: 0)),
                TreeEntry(depth: 2, task: info("a1", .queued)),
                TreeEntry(depth: 1, task: info("b", .cancelled)),
                TreeEntry(depth: 0, task: info("o", .failed, node: "w1", exit: 3))]
    }

    @Test func theTableIndentsChildrenUnderTheirParentLikePsForest() {
        let lines = TreeOutput.table(Self.entries()).split(separator: "\n").map(String.init)
        #expect(lines == ["STATE      NODE  EXIT  TREE",
                          "running    w1    -     r",
                          "succeeded  w2    0      \\_ a",
                          "queued     -     -          \\_ a1",
                          "cancelled  -     -      \\_ b",
                          "failed     w1    3     o"])
        // A page that starts deep draws from its first entry's depth.
        #expect(TreeOutput.table(Array(Self.entries()[2...])).split(separator: "\n")[1].hasSuffix("    a1"))
        #expect(TreeOutput.indent(40).hasSuffix("(depth 40) \\_ "))
        // Dependencies follow the id.
        var merge = TaskInfo(id: "m", state: .queued, command: ["x"], submittedAt: 1)
        merge.after = ["a", "b"]
        merge.afterAny = ["c"]
        #expect(TreeOutput.table([TreeEntry(depth: 0, task: merge)]).hasSuffix("m  after: a,b  after-any: c"))
    }

    @Test func theJSONNestsEachTaskWithItsChildren() throws {
        let text = TreeOutput.json(Self.entries())
        let roots = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        func shape(_ node: [String: Any]) -> String {
            let id = (node["task"] as? [String: Any])?["id"] as? String ?? "?"
            let children = (node["children"] as? [[String: Any]]) ?? []
            return children.isEmpty ? id : "\(id)(\(children.map(shape).joined(separator: ",")))"
        }
        #expect(roots.map(shape) == ["r(a(a1),b)", "o"])
        #expect(((roots[0]["task"] as? [String: Any])?["state"] as? String) == "running")
        #expect(TreeOutput.json([]) == "[]")
        // A chain far deeper than any stack: written without recursion, still nested right.
        let chain = (0..<5_000).map { TreeEntry(depth: $0, task: TaskInfo(id: "t\($0)", state: .queued, command: ["x"], submittedAt: 1)) }
        let deep = TreeOutput.json(chain)
        #expect(deep.hasSuffix(String(repeating: "]}", count: 5_000) + "\n]"))
    }

    @Test func cancelSaysHowManyTasksItCancelled() {
        let reply = Message.TreeCancelled(requestId: 1, id: "r", total: 5, cancelled: 3, killing: 1, alreadyEnded: 1)
        #expect(TreeOutput.cancelled(reply) == "r: cancelled 4 tasks of its tree of 5 (3 queued, now cancelled; 1 running, being killed); 1 had already ended")
    }

    @Test func treeMessagesCrossTheWireUnchanged() throws {
        let messages: [Message] = [
            .cancelTree(.init(requestId: 1, id: "r")),
            .listTree(.init(requestId: 2, id: nil, after: "a", limit: 5)),
            .taskTree(.init(requestId: 3, entries: Self.entries(), next: "o", total: 5, pendingCount: 2, pending: ["r", "a1"])),
            .treeCancelled(.init(requestId: 4, id: "r", total: 5, cancelled: 3, killing: 1, alreadyEnded: 1)),
        ]
        for message in messages { #expect(try MessageCodec.decode(MessageCodec.encode(message)) == message) }
    }
}
