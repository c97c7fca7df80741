import SwarmProtocol

/// Every client request, decided: who may (`ClientPolicy`), then what it changes in the
/// cluster state and what the shell must send, run and start (`ClientOutcome`). Pure: the
/// clocks and the shell's few facts come in `ClientRequestContext`. Every refusal, whatever
/// its cause, comes out the one way: `ClientOutcome.refusal`.
enum ClientRequests {
    /// What `message`, sent by a client proven as `identity`, does. `state` changes only for a
    /// request that is not refused.
    static func handle(_ message: Message, identity: ClientIdentity, state: inout ClusterState,
                       context: ClientRequestContext) -> ClientOutcome {
        // Counted before anything else looks at the batch (the policy walks its ids too).
        if case .submitBatch(let batch) = message, let problem = Bounds.batchDependencyProblem(batch.tasks) {
            return .refused(ClientRefusal(SchedulerError.invalidTask(problem)))
        }
        do {
            let admitted = try ClientPolicy.admit(message, identity: identity, state: state, archive: context.archive)
            return try request(admitted, identity: identity, state: &state, context: context)
        } catch {
            return .refused(error)
        }
    }

    /// One case per message: a new client request gets its own case here (and its rule in
    /// `ClientPolicy.admit`); the compiler lists every message that has neither.
    private static func request(_ message: Message, identity: ClientIdentity, state: inout ClusterState,
                                context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        switch message {
        case .submit(let submit):
            return try self.submit(submit, state: &state, context: context)
        case .submitBatch(let batch):
            return try submitBatch(batch, state: &state, context: context)
        case .status(let ref):
            let info = try refusing { () throws(SchedulerError) in try state.taskInfoWithWaitReason(ref.id, nowMs: context.nowMs, archive: context.archive) }
            return .reply(.taskInfo(.init(requestId: ref.requestId, task: info)))
        case .wait(let wait):
            return try self.wait(wait, state: state, context: context)
        case .listTasks(let request):
            return try listTasks(request, identity: identity, state: state, context: context)
        case .listNodes(let request):
            return .reply(.nodeList(.init(requestId: request.requestId, nodes: state.listNodes(nowMs: context.nowMs))), .yieldTurn)
        case .cancel(let ref):
            return try cancel(ref, state: &state, context: context)
        case .stats(let request):
            var (cluster, workers) = state.statistics()
            cluster.process = nil
            return ClientOutcome(flow: [.sendStats(.init(requestId: request.requestId, cluster: cluster, workers: workers)), .yieldTurn])
        case .drain(let ref):
            try refusing { () throws(SchedulerError) in try state.drain(node: ref.name) }
            return ClientOutcome(log: [.notice("worker \(PeerText.safe(ref.name)) drained by a client")],
                                 replies: [.nodeList(.init(requestId: ref.requestId, nodes: state.listNodes(nowMs: context.nowMs)))])
        case .undrain(let ref):
            try refusing { () throws(SchedulerError) in try state.undrain(node: ref.name) }
            // Its free slots may take queued tasks now.
            return ClientOutcome(log: [.notice("worker \(PeerText.safe(ref.name)) undrained by a client")],
                                 replies: [.nodeList(.init(requestId: ref.requestId, nodes: state.listNodes(nowMs: context.nowMs)))],
                                 flow: [.scheduleSoon])
        case .logs(let request):
            return try logs(request, state: state, archive: context.archive)
        case .rerun(let request):
            return try rerun(request, identity: identity, state: &state, context: context)
        case .gc(let request):
            if let seconds = request.olderThanSeconds, !Self.gcAgeRange.contains(seconds) {
                throw ClientRefusal(code: .badMessage, reason: "gc: --older-than must be 0 to \(Int(Self.gcAgeRange.upperBound)) seconds, got \(seconds)")
            }
            let cutoff = request.olderThanSeconds.map { context.at - Int64(($0 * 1000).rounded()) }
            return ClientOutcome(log: [.notice("gc asked by a client\(request.olderThanSeconds.map { " (older than \($0) s)" } ?? "")")],
                                 flow: [.startGc(requestId: request.requestId, cutoffMs: cutoff)])
        case .cancelTree(let ref):
            return try cancelTree(ref, state: &state, context: context)
        case .listTree(let request):
            return try listTree(request, identity: identity, state: state, context: context)
        case .states(let request):
            return try states(request, state: state, context: context)
        // Blob messages are the blob exchange's (SchedulerServer+Blobs.swift), which takes
        // them before they get here.
        case .hello, .challenge, .auth, .welcome, .error,
             .register, .registered, .heartbeat, .assign, .taskStarted, .taskFinished, .resultAck, .reject,
             .kill, .readLog, .leave, .health, .taskEvent, .taskOutput, .logData,
             .submitted, .taskInfo, .waitResult, .taskList, .nodeList, .statsReply, .logChunk, .batchSubmitted, .gcResult,
             .taskTree, .treeCancelled, .taskStates,
             .blobOffer, .blobAccept, .blobChunk, .blobStored, .blobGet:
            throw .notAClientRequest(message)
        }
    }

    // MARK: Submitting

    private static func submit(_ submit: Message.Submit, state: inout ClusterState,
                               context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        try checkInputBlobs([submit.task], state: state, context: context)
        try checkParents([submit.task], state: state, archive: context.archive)
        let ended = endedDependencies([submit.task], state: state, context: context)
        let id = try refusing { () throws(SchedulerError) in
            try state.submit(submit.task, at: context.at, ended: ended, archive: context.archive)
        }
        return .reply(.submitted(.init(requestId: submit.requestId, id: id)), .scheduleSoon)
    }

    private static func submitBatch(_ batch: Message.SubmitBatch, state: inout ClusterState,
                                    context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        try checkInputBlobs(batch.tasks, state: state, context: context)
        try checkParents(batch.tasks, state: state, archive: context.archive)
        let ended = endedDependencies(batch.tasks, state: state, context: context)
        let (ids, existing) = try refusing { () throws(SchedulerError) in
            try state.submitBatch(batch.tasks, at: context.at, ended: ended, archive: context.archive)
        }
        return .reply(.batchSubmitted(.init(requestId: batch.requestId, ids: ids, existing: existing)), .scheduleSoon)
    }

    /// The final states, from the store, of the dependencies `specs` name that the cluster
    /// state does not hold (ClusterState+Dependencies.swift). Stops at the first the store
    /// does not have either: the submit is refused for it (`checkDependencies`), so a batch
    /// of unknown ids costs one look-up, not one per id.
    static func endedDependencies(_ specs: [TaskSpec], state: ClusterState,
                                  context: ClientRequestContext) -> [String: TaskState] {
        var ended: [String: TaskState] = [:]
        for id in state.unknownDependencies(of: specs) {
            guard let found = context.endedTaskState(id), found.isTerminal else { break }
            ended[id] = found
        }
        return ended
    }

    /// `swarm rerun`: the finished task's spec (`ClusterState.rerunSpec`, its stored inputs
    /// reused) submitted as a new task under the rules of any submit: where this client may
    /// submit (`ClientPolicy`), its inputs still held, admission. Answered with `submitted`.
    private static func rerun(_ request: Message.Rerun, identity: ClientIdentity, state: inout ClusterState,
                              context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        let spec = try refusing { () throws(SchedulerError) in try state.rerunSpec(of: request.id, newId: request.newId, archive: context.archive) }
        let asSubmit = try ClientPolicy.admit(.submit(.init(requestId: request.requestId, task: spec)), identity: identity, state: state, archive: context.archive)
        guard case .submit(let submit) = asSubmit else { throw .notAClientRequest(asSubmit) }
        var outcome = try self.submit(submit, state: &state, context: context)
        outcome.log = [.notice("task \(PeerText.safe(request.id)) rerun as \(PeerText.safe(submit.task.id ?? "?"))")]
        return outcome
    }

    /// A spec naming inputs is accepted only when they are held and within the limits
    /// (`TaskBlobRules.inputProblem`).
    private static func checkInputBlobs(_ specs: [TaskSpec], state: ClusterState,
                                        context: ClientRequestContext) throws(ClientRefusal) {
        for spec in specs where spec.inputBlobs?.isEmpty == false {
            if let problem = TaskBlobRules.inputProblem(spec, maxBytes: state.settings.maxInputBytesPerTask, held: context.heldBlobSize) {
                let who = specs.count > 1 ? "task \(PeerText.safe(spec.id ?? "?", limit: 100)): " : ""
                throw ClientRefusal(code: .invalidTask, reason: who + problem)
            }
        }
    }

    // MARK: Reading and cancelling

    /// Cancelling a task that has already ended is not an error: the reply is its final
    /// state (the CLI says it had already ended).
    private static func cancel(_ ref: Message.TaskRef, state: inout ClusterState,
                               context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        var outcome = ClientOutcome()
        let before = try refusing { () throws(SchedulerError) in try state.task(ref.id, archive: context.archive) }
        if !before.state.isTerminal {
            // Tasks waiting for it may be released: a placement round then.
            let waitedFor = state.hasDependents(ref.id)
            outcome.directives = try refusing { () throws(SchedulerError) in try state.cancel(ref.id, at: context.at) }
            outcome.log = [.notice("task \(PeerText.safe(ref.id)) cancelled by a client")]
            if waitedFor { outcome.flow = [.scheduleSoon] }
        }
        let info = try refusing { () throws(SchedulerError) in try state.taskInfoWithWaitReason(ref.id, nowMs: context.nowMs, archive: context.archive) }
        outcome.replies = [.taskInfo(.init(requestId: ref.requestId, task: info))]
        return outcome
    }

    private static func wait(_ wait: Message.Wait, state: ClusterState,
                             context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        // Each task once, in the order first named: the reply carries each named task's
        // record, so a repeated id would multiply it (a 4-byte `"x",` asking for a copy of a
        // task of megabytes, a million times).
        // More could not be answered in one frame (`WaitSummary`); `swarm wait` sends longer
        // lists in parts. Counted before anything else is done with them.
        if wait.ids.count > WaitSummary.maxIds {
            throw ClientRefusal(code: .unexpected, reason: "a wait names \(wait.ids.count) task ids; at most \(WaitSummary.maxIds) per request (wait for the rest in further requests)")
        }
        var seen = Set<String>()
        let ids = wait.ids.filter { seen.insert($0).inserted }
        var pending = Set<String>()
        for id in ids {
            guard let info = try? state.task(id, archive: context.archive) else { throw ClientRefusal(.unknownTask(id)) }
            if !info.state.isTerminal { pending.insert(id) }
        }
        if pending.isEmpty {
            return .reply(.waitResult(.init(requestId: wait.requestId, tasks: state.waitReply(ids, archive: context.archive))))
        }
        if let problem = WaiterTable.refusal(adding: ids.count, mine: context.waits, total: context.allWaits, limits: context.limits) {
            throw ClientRefusal(code: .unexpected, reason: problem)
        }
        return ClientOutcome(flow: [.startWait(requestId: wait.requestId, ids: ids, pending: pending)])
    }

    /// One page of the listing; a task's credential sees only its subtree. A page ends the
    /// client's turn: listings are the costly request.
    private static func listTasks(_ request: Message.ListTasks, identity: ClientIdentity, state: ClusterState,
                                  context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        var limits = context.limits.page
        if let limit = request.limit { limits.limit = max(1, min(limit, limits.limit)) }
        if let problem = request.filter?.problem { throw ClientRefusal(code: .badMessage, reason: problem) }
        let filter = request.filter ?? TaskFilter()
        let encoder = FastJSONEncoder()
        let page = try refusing { () throws(SchedulerError) in
            try state.listTasks(after: request.after, limits: limits,
                                size: { (try? encoder.encode($0).count) ?? limits.maxBytes },
                                include: { filter.matches($0) && ClientPolicy.canSee($0.id, identity: identity, state: state, archive: context.archive) },
                                archive: Self.listingArchive(filter, context.archive))
        }
        let tasks = state.withWaitReasons(page.tasks, nowMs: context.nowMs)
        return .reply(.taskList(.init(requestId: request.requestId, tasks: tasks, next: page.next)), .yieldTurn)
    }

    /// `swarm gc --older-than S`: S within this (about 31 years), finite.
    static let gcAgeRange = 0.0...1e9

    /// The archive a listing reads: none when the filter asks only for states of tasks that
    /// have not ended (those are all in memory), so such a listing never reads the store.
    static func listingArchive(_ filter: TaskFilter, _ archive: TaskArchive) -> TaskArchive {
        if let states = filter.states, states.allSatisfy({ !$0.isTerminal }) { return .none }
        return archive
    }

    /// `swarm logs`: followed live while the task runs, else the whole log. Either ends the
    /// client's turn.
    private static func logs(_ request: Message.LogsRequest, state: ClusterState, archive: TaskArchive) throws(ClientRefusal) -> ClientOutcome {
        let info = try refusing { () throws(SchedulerError) in try state.task(request.id, archive: archive) }
        guard request.follow && !info.state.isTerminal else {
            return ClientOutcome(flow: [.yieldTurn, .sendWholeLog(request, info)])
        }
        return ClientOutcome(flow: [.yieldTurn, .followLog(requestId: request.requestId, id: request.id)])
    }

    /// `body`'s result, or its state error as the client's refusal (`ClientRefusal(_:)`).
    static func refusing<T>(_ body: () throws(SchedulerError) -> T) throws(ClientRefusal) -> T {
        do { return try body() } catch { throw ClientRefusal(error) }
    }
}
