import Foundation
import Testing
import SwarmClient
@testable import SwarmScheduler
import SwarmProtocol

/// Issue 10, item 11 (a task credential reaches only its subtree and dies with its task) and
/// item 21 (cancel of an ended task, cancel by a task of its sub-agents).
@Suite struct ClientPolicyTests {
    /// r -> c -> g, and o outside; x and y name each other as parent (a loop).
    static func state() throws -> ClusterState {
        var state = ClusterState()
        func add(_ id: String, parent: String?) throws {
            var spec = TaskSpec(id: id, command: ["true"])
            spec.parent = parent
            _ = try state.submit(spec, at: 1)
        }
        try add("r", parent: nil)
        try add("c", parent: "r")
        try add("g", parent: "c")
        try add("o", parent: nil)
        try add("x", parent: "y")
        try add("y", parent: "x")
        return state
    }

    static func refused(_ message: Message, as identity: ClientIdentity = .task("r"), _ state: ClusterState) -> String? {
        do {
            _ = try ClientPolicy.admit(message, identity: identity, state: state)
            return nil
        } catch {
            return error.reason
        }
    }

    /// A task's credential may not name as parent a task that does not exist (nor comes in
    /// its batch) or lies outside its subtree, nor submit a task whose id others already name
    /// as their parent: that would adopt them into its subtree (to read, cancel, wait for).
    @Test func aTaskCredentialAdoptsNoTaskAndNamesNoParentOutsideItsSubtree() throws {
        var state = try Self.state()
        var orphan = TaskSpec(id: "p", command: ["true"])
        orphan.parent = "ghost"
        _ = try state.submit(orphan, at: 1)  // by the cluster token: it waits for "ghost"
        func spec(_ id: String, parent: String?) -> TaskSpec {
            var spec = TaskSpec(id: id, command: ["true"])
            spec.parent = parent
            return spec
        }
        for parent in ["ghost", "nowhere", "o", "x"] {
            let single = Self.refused(.submit(.init(requestId: 1, task: spec("n", parent: parent))), state)
            #expect(single?.contains("parent '\(parent)' is outside the subtree of task 'r'") == true, "\(parent)")
            let batch = Self.refused(.submitBatch(.init(requestId: 1, tasks: [spec("m", parent: "c"), spec("n", parent: parent)])), state)
            #expect(batch?.contains("parent '\(parent)' is outside the subtree of task 'r'") == true, "\(parent)")
        }
        // Its own ghost, under itself: p would become its grandchild.
        let adopt = try #require(Self.refused(.submit(.init(requestId: 1, task: spec("ghost", parent: "c"))), state))
        #expect(adopt == "task 'ghost' is named as parent by task 'p', submitted before it: a task's credential (task 'r') may not submit it and so adopt tasks it did not make")
        #expect(Self.refused(.submitBatch(.init(requestId: 1, tasks: [spec("k", parent: "ghost"), spec("ghost", parent: nil)])), state) == adopt)
        _ = try state.cancel("g", at: 2)
        #expect(Self.refused(.rerun(.init(requestId: 1, id: "g", newId: "ghost")), state) == nil)  // the rerun's submit is checked
        let rerun = ClientRequestsTests.handle(.rerun(.init(requestId: 1, id: "g", newId: "ghost")), as: .task("r"), &state)
        #expect(rerun.refusal?.reason == adopt)
        #expect(!state.isInSubtree("p", of: "r"))
        // The cluster token may; and a new id, in the subtree, is fine for the credential.
        #expect(Self.refused(.submit(.init(requestId: 1, task: spec("ghost", parent: "c"))), as: .cluster, state) == nil)
        #expect(Self.refused(.submitBatch(.init(requestId: 1, tasks: [spec("k", parent: "new"), spec("new", parent: "g")])), state) == nil)
    }

    @Test func theSubtreeIsTheTaskAndItsDescendants() throws {
        let state = try Self.state()
        #expect(state.isInSubtree("r", of: "r") && state.isInSubtree("c", of: "r") && state.isInSubtree("g", of: "r"))
        #expect(!state.isInSubtree("o", of: "r") && !state.isInSubtree("r", of: "c"))
        // A loop of parents ends the walk.
        #expect(!state.isInSubtree("x", of: "r"))
        #expect(state.isInSubtree("x", of: "y"))
    }

    @Test func aTaskCredentialReadsAndCancelsOnlyItsSubtree() throws {
        let state = try Self.state()
        for id in ["r", "c", "g"] {
            #expect(Self.refused(.status(.init(requestId: 1, id: id)), state) == nil)
            #expect(Self.refused(.cancel(.init(requestId: 1, id: id)), state) == nil)
            #expect(Self.refused(.logs(.init(requestId: 1, id: id, follow: true)), state) == nil)
        }
        let outside = try #require(Self.refused(.status(.init(requestId: 1, id: "o")), state))
        #expect(outside.contains("outside the subtree of task 'r'"))
        #expect(Self.refused(.cancel(.init(requestId: 1, id: "o")), state) != nil)
        #expect(Self.refused(.logs(.init(requestId: 1, id: "o", follow: false)), state) != nil)
        #expect(Self.refused(.wait(.init(requestId: 1, ids: ["c", "o"])), state) != nil)
        #expect(Self.refused(.wait(.init(requestId: 1, ids: ["c", "g"])), state) == nil)
        #expect(Self.refused(.drain(.init(requestId: 1, name: "w1")), state)?.contains("may not drain") == true)
        // The cluster sees what there is; an unknown id is left to the request's own answer.
        #expect(Self.refused(.listNodes(.init(requestId: 1)), state) == nil)
        #expect(Self.refused(.stats(.init(requestId: 1)), state) == nil)
        #expect(Self.refused(.status(.init(requestId: 1, id: "nope")), state) == nil)
        #expect(ClientPolicy.canSee("g", identity: .task("r"), state: state))
        #expect(!ClientPolicy.canSee("o", identity: .task("r"), state: state))
    }

    @Test func aTaskCredentialSubmitsUnderItsSubtreeOnly() throws {
        let state = try Self.state()
        let orphan = try ClientPolicy.admit(.submit(.init(requestId: 1, task: TaskSpec(command: ["true"]))), identity: .task("r"), state: state)
        guard case .submit(let submit) = orphan else { Issue.record("not a submit"); return }
        #expect(submit.task.parent == "r")
        var under = TaskSpec(command: ["true"]); under.parent = "g"
        #expect(Self.refused(.submit(.init(requestId: 1, task: under)), state) == nil)
        var elsewhere = TaskSpec(command: ["true"]); elsewhere.parent = "o"
        #expect(Self.refused(.submit(.init(requestId: 1, task: elsewhere)), state)?.contains("parent 'o' is outside") == true)
        // In a batch, a parent may be another task of the batch that is under the subtree.
        var first = TaskSpec(id: "n1", command: ["true"])
        var second = TaskSpec(id: "n2", command: ["true"]); second.parent = "n1"
        #expect(Self.refused(.submitBatch(.init(requestId: 1, tasks: [first, second])), state) == nil)
        first.parent = "o"
        #expect(Self.refused(.submitBatch(.init(requestId: 1, tasks: [first, second])), state) != nil)
        var loopA = TaskSpec(id: "la", command: ["true"]); loopA.parent = "lb"
        var loopB = TaskSpec(id: "lb", command: ["true"]); loopB.parent = "la"
        #expect(Self.refused(.submitBatch(.init(requestId: 1, tasks: [loopA, loopB])), state) != nil)
        _ = (loopA, loopB)
    }

    @Test func theClusterTokenMayDoEverything() throws {
        let state = try Self.state()
        let message = Message.drain(.init(requestId: 1, name: "w1"))
        #expect(try ClientPolicy.admit(message, identity: .cluster, state: state) == message)
        #expect(ClientIdentity(name: "task:abc") == .task("abc"))
        #expect(ClientIdentity(name: "client") == .cluster)
    }

    /// The issue's reproduction: a task's credential used from outside, after its task ended,
    /// and to read other tasks.
    @Test func aTaskCredentialDiesWithItsTaskAndSeesOnlyItsSubtree() throws {
        let token = ClusterToken("policy-secret")
        var config = SchedulerConfig()
        config.token = token
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        let admin = try SwarmClient(address: scheduler.address, token: token)
        // No worker: the tasks stay queued (not ended).
        _ = try admin.submit(TaskSpec(id: "envt", command: ["sleep", "60"]))
        _ = try admin.submit(TaskSpec(id: "other", command: ["sleep", "60"]))
        let credential = ClusterToken(token.taskCredential(for: "envt"))
        let agent = try SwarmClient(address: scheduler.address, token: credential, name: "task:envt")
        #expect(try agent.status("envt").id == "envt")
        #expect(throws: ClientError.self) { try agent.status("other") }
        #expect(throws: ClientError.self) { try agent.cancel("other") }
        let child = try agent.submit(TaskSpec(command: ["sleep", "60"]))
        #expect(try admin.status(child).parent == "envt")
        #expect(try agent.listTasks().map(\.id) == ["envt", child])
        // Item 21: it may cancel its own sub-agent, and cancelling it again is not an error.
        #expect(try agent.cancel(child).state == .cancelled)
        #expect(try agent.cancel(child).state == .cancelled)
        // The task ends: its connections are closed and the credential no longer works.
        #expect(try admin.cancel("envt").state == .cancelled)
        var closed = false
        for _ in 0..<3_000 where !closed {
            if (try? agent.status("envt")) == nil { closed = true } else { usleep(10_000) }
        }
        #expect(closed)
        do {
            _ = try SwarmClient(address: scheduler.address, token: credential, name: "task:envt").submit(TaskSpec(command: ["true"]))
            Issue.record("an ended task's credential still submits")
        } catch {
            #expect(error.description.contains("has ended"), "\(error)")
        }
        #expect(try admin.status("other").state == .queued)
        #expect(try admin.listTasks().count == 3)
    }
}
