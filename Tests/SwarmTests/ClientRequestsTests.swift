import Testing
@testable import SwarmScheduler
import SwarmProtocol

/// Issue 12 item 6: every client request decided by the pure `ClientRequests` (no sockets):
/// the reply, the directives, the flow the shell must run, and each refusal, which leaves the
/// cluster state as it was.
@Suite struct ClientRequestsTests {
    static var context: ClientRequestContext { ClientRequestContext(nowMs: 5_000, at: 1_700_000_000_000) }

    /// Worker w1 (1 slot, last heard at 100 ms) runs `run`; `r` -> `c` and `o` are queued,
    /// `done` was cancelled while queued.
    static func state() throws -> ClusterState {
        var state = ClusterState()
        _ = try state.register(node: "w1", slots: 1, labels: [:], running: [], finished: [], address: nil, nowMs: 100, at: 1)
        _ = try state.submit(TaskSpec(id: "run", command: ["true"]), at: 1)
        _ = state.schedule(nowMs: 100, at: 2)
        var child = TaskSpec(id: "c", command: ["true"])
        child.parent = "r"
        for spec in [TaskSpec(id: "r", command: ["true"]), child, TaskSpec(id: "o", command: ["true"]), TaskSpec(id: "done", command: ["true"])] {
            _ = try state.submit(spec, at: 3)
        }
        _ = try state.cancel("done", at: 4)
        return state
    }

    static func handle(_ message: Message, as identity: ClientIdentity = .cluster, _ state: inout ClusterState,
                       _ context: ClientRequestContext = context) -> ClientOutcome {
        ClientRequests.handle(message, identity: identity, state: &state, context: context)
    }

    /// The refusal `message` gets; the state must come out of it unchanged.
    static func refusal(_ message: Message, as identity: ClientIdentity = .cluster, context: ClientRequestContext = context,
                        in given: ClusterState? = nil) throws -> ClientRefusal? {
        var state = try given ?? Self.state()
        let before = state.listTasks()
        let outcome = handle(message, as: identity, &state, context)
        #expect(state.listTasks() == before)
        guard let refusal = outcome.refusal else { return nil }
        #expect(outcome == .refused(refusal))
        return refusal
    }

    static func info(_ state: ClusterState, _ id: String) throws -> TaskInfo { try state.taskInfoWithWaitReason(id, nowMs: context.nowMs) }

    // MARK: Submitting

    @Test func submitQueuesTheTaskDatedByTheWallClockAndAsksForPlacement() throws {
        var state = try Self.state()
        let outcome = Self.handle(.submit(.init(requestId: 3, task: TaskSpec(id: "new", command: ["true"]))), &state)
        #expect(outcome == ClientOutcome(replies: [.submitted(.init(requestId: 3, id: "new"))], flow: [.scheduleSoon]))
        let info = try state.task("new")
        #expect(info.state == .queued && info.submittedAt == Self.context.at)
    }

    @Test func submitRefusesADuplicateIdAndAnInvalidTask() throws {
        let duplicate = try #require(try Self.refusal(.submit(.init(requestId: 1, task: TaskSpec(id: "r", command: ["true"])))))
        #expect(duplicate == ClientRefusal(code: .duplicateId, reason: "a task with id 'r' already exists"))
        let invalid = try #require(try Self.refusal(.submit(.init(requestId: 1, task: TaskSpec(id: "empty", command: [])))))
        #expect(invalid.code == .invalidTask && invalid.reason.hasPrefix("invalid task: ") && !invalid.closes)
        // A batch is all or nothing: the good task before the bad one is not queued either.
        let batch = try #require(try Self.refusal(.submitBatch(.init(requestId: 1, tasks: [
            TaskSpec(id: "fine", command: ["true"]), TaskSpec(id: "o", command: ["false"]),
        ]))))
        #expect(batch == ClientRefusal(code: .duplicateId, reason: "a task with id 'o' already exists"))
    }

    @Test func submitBatchRepliesWithEveryIdAndTheExistingOnes() throws {
        var state = try Self.state()
        let tasks = [TaskSpec(id: "o", command: ["true"]), TaskSpec(id: "b1", command: ["true"])]
        let outcome = Self.handle(.submitBatch(.init(requestId: 4, tasks: tasks)), &state)
        #expect(outcome == ClientOutcome(replies: [.batchSubmitted(.init(requestId: 4, ids: ["o", "b1"], existing: ["o"]))],
                                         flow: [.scheduleSoon]))
        #expect(try state.task("b1").state == .queued)
    }

    @Test func inputsMustBeHeldWithTheSizeTheyName() throws {
        let sha = String(repeating: "ab", count: 32)
        var spec = TaskSpec(id: "in", command: ["true"])
        spec.inputBlobs = [InputRef(dest: "src", sha256: sha, size: 10)]
        let missing = try #require(try Self.refusal(.submit(.init(requestId: 1, task: spec))))
        #expect(missing == ClientRefusal(code: .invalidTask, reason: "input src (blob \(sha)) was not uploaded to the scheduler"))
        var held = Self.context
        held.heldBlobSize = { $0 == sha ? 10 : nil }
        var state = try Self.state()
        #expect(Self.handle(.submit(.init(requestId: 1, task: spec)), &state, held).replies == [.submitted(.init(requestId: 1, id: "in"))])
        // In a batch the reason names the task.
        let other = TaskSpec(id: "plain", command: ["true"])
        held.heldBlobSize = { _ in 11 }
        var batch = spec
        batch.id = "in2"
        let refused = try #require(try Self.refusal(.submitBatch(.init(requestId: 1, tasks: [other, batch])), context: held))
        #expect(refused == ClientRefusal(code: .invalidTask, reason: "task in2: input src names 10 bytes; blob \(sha) has 11"))
    }

    // MARK: Reading

    @Test func statusRepliesWithTheTaskAndWhyItWaits() throws {
        var state = try Self.state()
        let outcome = Self.handle(.status(.init(requestId: 5, id: "r")), &state)
        let info = try Self.info(state, "r")
        #expect(info.waitReason != nil)
        #expect(outcome == .reply(.taskInfo(.init(requestId: 5, task: info))))
        let unknown = try #require(try Self.refusal(.status(.init(requestId: 5, id: "nope"))))
        #expect(unknown == ClientRefusal(code: .unknownTask, reason: "no task with id 'nope'"))
    }

    @Test func listTasksIsOnePageOfWhatTheCredentialMaySeeAndEndsTheTurn() throws {
        var state = try Self.state()
        let all = Self.handle(.listTasks(.init(requestId: 6, limit: 2)), &state)
        let page = try state.listTasks(after: nil, limits: { var l = TaskPageLimits(); l.limit = 2; return l }(), size: { _ in 1 })
        #expect(all == .reply(.taskList(.init(requestId: 6, tasks: state.withWaitReasons(page.tasks, nowMs: Self.context.nowMs), next: "r")), .yieldTurn))
        let mine = Self.handle(.listTasks(.init(requestId: 6)), as: .task("r"), &state)
        guard case .taskList(let reply)? = mine.replies.first else { Issue.record("no task list: \(mine)"); return }
        #expect(reply.tasks.map(\.id) == ["r", "c"])
        let unknown = try #require(try Self.refusal(.listTasks(.init(requestId: 6, after: "nope"))))
        #expect(unknown == ClientRefusal(code: .unknownTask, reason: "no task with id 'nope'"))
    }

    @Test func listNodesMeasuresSilenceOnTheMonotonicClockAndEndsTheTurn() throws {
        var state = try Self.state()
        let outcome = Self.handle(.listNodes(.init(requestId: 7)), &state)
        let nodes = state.listNodes(nowMs: Self.context.nowMs)
        #expect(nodes.map(\.lastSeenMsAgo) == [4_900])
        #expect(outcome == .reply(.nodeList(.init(requestId: 7, nodes: nodes)), .yieldTurn))
    }

    @Test func statsHandsTheStateCountersToTheShellAndEndsTheTurn() throws {
        var state = try Self.state()
        let outcome = Self.handle(.stats(.init(requestId: 8)), &state)
        var (cluster, workers) = state.statistics()
        cluster.process = nil
        #expect(outcome == ClientOutcome(flow: [.sendStats(.init(requestId: 8, cluster: cluster, workers: workers)), .yieldTurn]))
    }

    @Test func logsFollowARunningTaskAndReadTheWholeLogOtherwise() throws {
        var state = try Self.state()
        let follow = Self.handle(.logs(.init(requestId: 9, id: "run", follow: true)), &state)
        #expect(follow == ClientOutcome(flow: [.yieldTurn, .followLog(requestId: 9, id: "run")]))
        for (id, followed) in [("run", false), ("done", true), ("done", false)] {
            let request = Message.LogsRequest(requestId: 9, id: id, follow: followed)
            let outcome = Self.handle(.logs(request), &state)
            #expect(outcome == ClientOutcome(flow: [.yieldTurn, .sendWholeLog(request, try state.task(id))]))
        }
        let unknown = try #require(try Self.refusal(.logs(.init(requestId: 9, id: "nope", follow: true))))
        #expect(unknown.code == .unknownTask)
    }

    // MARK: Waiting

    @Test func waitAnswersAtOnceWhenEveryTaskHasEnded() throws {
        var state = try Self.state()
        let outcome = Self.handle(.wait(.init(requestId: 10, ids: ["done", "done"])), &state)
        #expect(outcome == .reply(.waitResult(.init(requestId: 10, tasks: [try state.task("done")]))))
    }

    @Test func waitStartsWithEachTaskOnceInTheOrderFirstNamed() throws {
        var state = try Self.state()
        let outcome = Self.handle(.wait(.init(requestId: 11, ids: ["run", "done", "run", "r"])), &state)
        #expect(outcome == ClientOutcome(flow: [.startWait(requestId: 11, ids: ["run", "done", "r"], pending: ["run", "r"])]))
    }

    @Test func waitIsRefusedForAnUnknownTaskTooManyIdsOrOverTheLimits() throws {
        let unknown = try #require(try Self.refusal(.wait(.init(requestId: 1, ids: ["run", "nope"]))))
        #expect(unknown == ClientRefusal(code: .unknownTask, reason: "no task with id 'nope'"))
        let many = Array(repeating: "run", count: WaitSummary.maxIds + 1)
        let tooMany = try #require(try Self.refusal(.wait(.init(requestId: 1, ids: many))))
        #expect(tooMany.reason == "a wait names \(many.count) task ids; at most \(WaitSummary.maxIds) per request (wait for the rest in further requests)")
        var full = Self.context
        full.waits = WaiterTable.Load(waits: full.limits.maxWaitsPerClient, ids: 1)
        let mine = try #require(try Self.refusal(.wait(.init(requestId: 1, ids: ["run"])), context: full))
        #expect(mine == ClientRefusal(code: .unexpected, reason: "too many open waits on this connection (at most \(full.limits.maxWaitsPerClient)); wait for all the tasks in one request, or fewer at once"))
        full.waits = WaiterTable.Load()
        full.allWaits = WaiterTable.Load(waits: 1, ids: full.limits.maxWaitIdsTotal)
        let all = try #require(try Self.refusal(.wait(.init(requestId: 1, ids: ["run"])), context: full))
        #expect(all.reason.hasPrefix("the scheduler holds as many open waits as it may"))
        // Ended tasks are answered at once: no wait is held, so the limits do not apply.
        var state = try Self.state()
        #expect(Self.handle(.wait(.init(requestId: 1, ids: ["done"])), &state, full).refusal == nil)
    }

    // MARK: Changing

    @Test func cancelOfARunningTaskKillsItsRunAndRepliesWithTheTask() throws {
        var state = try Self.state()
        let outcome = Self.handle(.cancel(.init(requestId: 12, id: "run")), &state)
        #expect(outcome.directives == [.kill(node: "w1", run: RunRef(id: "run", attempt: 1), reason: "cancelled by user")])
        #expect(outcome.log == [.notice("task run cancelled by a client")])
        #expect(outcome.replies == [.taskInfo(.init(requestId: 12, task: try Self.info(state, "run")))])
        #expect(try state.task("run").reason == ClusterState.cancelRequestedReason)
        #expect(outcome.flow.isEmpty && outcome.refusal == nil)
    }

    @Test func cancelOfAQueuedTaskEndsItAndOfAnEndedTaskOnlyReplies() throws {
        var state = try Self.state()
        let queued = Self.handle(.cancel(.init(requestId: 13, id: "o")), &state)
        let ended = try state.task("o")
        #expect(ended.state == .cancelled && ended.finishedAt == Self.context.at)
        #expect(queued == ClientOutcome(log: [.notice("task o cancelled by a client")], directives: [.taskEnded(id: "o")],
                                        replies: [.taskInfo(.init(requestId: 13, task: ended))]))
        let again = Self.handle(.cancel(.init(requestId: 14, id: "o")), &state)
        #expect(again == .reply(.taskInfo(.init(requestId: 14, task: ended))))
        let unknown = try #require(try Self.refusal(.cancel(.init(requestId: 1, id: "nope"))))
        #expect(unknown == ClientRefusal(code: .unknownTask, reason: "no task with id 'nope'"))
    }

    @Test func drainMarksTheWorkerAndRepliesWithTheNodes() throws {
        var state = try Self.state()
        let outcome = Self.handle(.drain(.init(requestId: 15, name: "w1")), &state)
        let nodes = state.listNodes(nowMs: Self.context.nowMs)
        #expect(nodes.map(\.state) == [.draining])
        #expect(outcome == ClientOutcome(log: [.notice("worker w1 drained by a client")],
                                         replies: [.nodeList(.init(requestId: 15, nodes: nodes))]))
        let unknown = try #require(try Self.refusal(.drain(.init(requestId: 1, name: "w9"))))
        #expect(unknown == ClientRefusal(code: .unknownNode, reason: "no worker named 'w9'"))
    }

    // MARK: Who may

    @Test func aTaskCredentialIsRefusedOutsideItsSubtreeBeforeAnythingChanges() throws {
        let outside = "task 'o' is outside the subtree of task 'r': a task's credential reaches only its own task and its descendants"
        for message: Message in [.status(.init(requestId: 1, id: "o")), .cancel(.init(requestId: 1, id: "o")),
                                 .logs(.init(requestId: 1, id: "o", follow: true)), .wait(.init(requestId: 1, ids: ["c", "o"]))] {
            #expect(try Self.refusal(message, as: .task("r")) == ClientRefusal(code: .unexpected, reason: outside))
        }
        let drain = try #require(try Self.refusal(.drain(.init(requestId: 1, name: "w1")), as: .task("r")))
        #expect(drain.reason == "a task's credential may not drain or undrain workers (task r)")
        var under = TaskSpec(id: "x", command: ["true"])
        under.parent = "o"
        let submit = try #require(try Self.refusal(.submit(.init(requestId: 1, task: under)), as: .task("r")))
        #expect(submit.reason.hasPrefix("parent 'o' is outside the subtree of task 'r'"))
        // Inside it, the same requests go through; a parentless task becomes its child.
        var state = try Self.state()
        #expect(Self.handle(.cancel(.init(requestId: 1, id: "c")), as: .task("r"), &state).directives == [.taskEnded(id: "c")])
        _ = Self.handle(.submit(.init(requestId: 1, task: TaskSpec(id: "kid", command: ["true"]))), as: .task("r"), &state)
        #expect(try state.task("kid").parent == "r")
    }

    /// Every message that is not a client request, from any client: refused on the one path,
    /// and the connection closed (a protocol violation).
    @Test func aMessageThatIsNoClientRequestIsRefusedAndCloses() throws {
        let run = RunRef(id: "run", attempt: 1)
        let notRequests: [Message] = [
            .hello(.init(role: .worker, name: "w2")), .auth(.init(mac: "00")), .welcome(.init(server: "s")),
            .error(.init(code: .unexpected, reason: "x")),
            .register(.init(slots: 1, labels: [:], running: [], finished: [])),
            .heartbeat(.init(freeSlots: 1, running: [run])), .taskStarted(.init(id: "run", attempt: 1, pid: 1, startedAt: 1)),
            .resultAck(.init(id: "run", attempt: 1)), .kill(.init(id: "run", attempt: 1, reason: "x")),
            .leave(.init(reason: "x")), .health(.init(runtimes: [])),
            .submitted(.init(requestId: 1, id: "x")), .nodeList(.init(requestId: 1, nodes: [])),
            .logChunk(.init(requestId: 1, id: "run", data: "", done: true)),
            .blobStored(.init(requestId: 1, sha256: String(repeating: "0", count: 64))),
        ]
        for message in notRequests {
            for identity: ClientIdentity in [.cluster, .task("r")] {
                let refusal = try Self.refusal(message, as: identity)
                #expect(refusal == ClientRefusal(code: .unexpected, reason: "a client may not send '\(message.type)'", closes: true))
            }
        }
    }
}
