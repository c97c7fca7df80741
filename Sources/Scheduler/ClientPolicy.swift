import SwarmProtocol

/// Who a client is, from the name and the token it proved in its handshake.
enum ClientIdentity: Equatable, Sendable {
    /// It holds the cluster token (or the cluster has none): it may do anything a client may.
    case cluster
    /// It holds the submit token: submit, cancel, read and fetch.
    case submit
    /// It holds the read token: read only.
    case read
    /// An agent of task `id`, holding that task's credential (`SWARM_TASK_TOKEN`).
    case task(String)

    /// `scope`: the token its handshake proved (nil: the cluster token, or no token at all).
    init(name: String, scope: TokenScope? = nil) {
        if name.hasPrefix(ClusterToken.taskNamePrefix) {
            self = .task(String(name.dropFirst(ClusterToken.taskNamePrefix.count)))
            return
        }
        switch scope {
        case .submit: self = .submit
        case .read: self = .read
        // A worker token never gets this far as a client (`TokenScope.refusal`).
        case .cluster, .worker, .task, nil: self = .cluster
        }
    }

    /// What its token is called in a refusal.
    var tokenName: String {
        switch self {
        case .cluster: "the cluster token"
        case .submit: "the submit token"
        case .read: "the read token"
        case .task(let id): "the credential of task '\(PeerText.safe(id))'"
        }
    }
}

/// Why a client's request gets an `error` frame instead of its reply. `closes`: the request
/// is not a client's at all (a protocol violation), so the connection is closed too.
struct ClientRefusal: Error, Equatable {
    var code: ErrorCode
    var reason: String
    var closes = false

    init(code: ErrorCode, reason: String, closes: Bool = false) {
        self.code = code; self.reason = reason; self.closes = closes
    }

    /// The reason quotes what the client sent (ids, names): escaped and cut like all peer text.
    init(_ error: SchedulerError) {
        self.init(code: error.code, reason: PeerText.safe(error.description, limit: 1_000))
    }
}

/// What each kind of client may do. A task's credential lives in its task's subtree (the task
/// and its descendants through `parent`): it submits there (a task without a parent becomes
/// its child), reads and cancels there, sees every worker and the cluster's counters, and
/// never drains a worker. The cluster token may do everything. Pure.
enum ClientPolicy {
    /// `message` as it is to be carried out for `identity`, or why it may not be.
    static func admit(_ message: Message, identity: ClientIdentity, state: ClusterState,
                      archive: TaskArchive = .none) throws(ClientRefusal) -> Message {
        let root: String
        switch identity {
        case .cluster: return message
        case .submit, .read:
            try RolePolicy.check(message, identity: identity)
            return message
        case .task(let id): root = id
        }
        switch message {
        case .submit(var submit):
            try mayStartTasks(root, state: state)
            var memo = SubtreeMemo()
            submit.task.parent = try parent(submit.task, root: root, batch: [:], state: state, archive: archive, memo: &memo)
            try mayNotAdopt([submit.task], root: root, state: state)
            try dependencies([submit.task], root: root, state: state, archive: archive, memo: &memo)
            return .submit(submit)
        case .submitBatch(var batch):
            try mayStartTasks(root, state: state)
            var parents: [String: String] = [:]
            for spec in batch.tasks { if let id = spec.id { parents[id] = spec.parent ?? root } }
            var memo = SubtreeMemo()
            for i in batch.tasks.indices {
                batch.tasks[i].parent = try parent(batch.tasks[i], root: root, batch: parents, state: state, archive: archive, memo: &memo)
            }
            try mayNotAdopt(batch.tasks, root: root, state: state)
            try dependencies(batch.tasks, root: root, state: state, archive: archive, memo: &memo)
            return .submitBatch(batch)
        case .status(let ref), .cancel(let ref), .cancelTree(let ref):
            try mustSee(ref.id, root: root, state: state, archive: archive)
        case .listTree(var request):
            // Its own tree by default; another one only inside it.
            if let id = request.id { try mustSee(id, root: root, state: state, archive: archive) } else { request.id = root }
            return .listTree(request)
        case .rerun(let request):
            try mayStartTasks(root, state: state)
            // The new task then goes by the submit rules (`ClientRequests.rerun`).
            try mustSee(request.id, root: root, state: state, archive: archive)
        case .logs(let request):
            try mustSee(request.id, root: root, state: state, archive: archive)
        case .wait(let wait):
            // Over the limit it is refused anyway (`startWait`), without a walk per id.
            guard wait.ids.count <= WaitSummary.maxIds else { break }
            try mustSeeEach(wait.ids, root: root, state: state, archive: archive)
        case .states(let request):
            guard request.ids.count <= WaitSummary.maxIds else { break }  // refused by `states`
            try mustSeeEach(request.ids, root: root, state: state, archive: archive)
        case .drain, .undrain:
            throw ClientRefusal(code: .unexpected, reason: "a task's credential may not drain or undrain workers (task \(PeerText.safe(root)))")
        case .gc:
            throw ClientRefusal(code: .unexpected, reason: "a task's credential may not delete the cluster's history (gc; task \(PeerText.safe(root)))")
        case .listTasks:
            break // filtered to the subtree as the page is made (`canSee`)
        case .listNodes, .stats:
            break // every worker and the cluster's counters are for every client
        // Not client requests: `ClientRequests` refuses them for everyone alike.
        case .hello, .challenge, .auth, .welcome, .error,
             .register, .registered, .heartbeat, .assign, .taskStarted, .taskFinished, .resultAck, .reject,
             .kill, .readLog, .leave, .health, .taskEvent, .taskOutput, .logData,
             .submitted, .taskInfo, .waitResult, .taskList, .nodeList, .statsReply, .logChunk, .batchSubmitted, .gcResult,
             .taskTree, .treeCancelled, .taskStates,
             .blobOffer, .blobAccept, .blobChunk, .blobStored, .blobGet:
            break
        }
        return message
    }

    /// Whether `identity` may send blob messages (upload inputs, fetch artifacts): all but
    /// the read token.
    static func mayUseBlobs(identity: ClientIdentity?, type: String) throws(ClientRefusal) {
        guard identity == .read else { return }
        throw RolePolicy.forbidden(type, identity: .read)
    }

    /// Whether `identity` may see task `id` (listings show only those).
    static func canSee(_ id: String, identity: ClientIdentity, state: ClusterState, archive: TaskArchive = .none) -> Bool {
        guard case .task(let root) = identity else { return true }
        return state.isInSubtree(id, of: root, archive: archive)
    }

    /// A task's credential may wait only for tasks it can see (its subtree) or of the same
    /// batch: a dependency's end would otherwise tell it about tasks outside its reach.
    /// Each id once (`SubtreeMemo`).
    private static func dependencies(_ specs: [TaskSpec], root: String, state: ClusterState,
                                     archive: TaskArchive, memo: inout SubtreeMemo) throws(ClientRefusal) {
        let batch = Set(specs.compactMap(\.id))
        for spec in specs {
            for dependency in spec.dependencies where !batch.contains(dependency.id) && memo.checked.insert(dependency.id).inserted {
                try mustSee(dependency.id, root: root, state: state, archive: archive)
            }
        }
    }

    /// A task's credential may not submit a task whose id tasks already submitted name as
    /// their parent (before it existed): they would join its subtree, and the credential
    /// could then read, cancel and wait for tasks it never made. O(tasks of the request).
    private static func mayNotAdopt(_ specs: [TaskSpec], root: String, state: ClusterState) throws(ClientRefusal) {
        for spec in specs {
            guard let id = spec.id, let child = state.waitingChild(of: id) else { continue }
            throw ClientRefusal(code: .unexpected, reason: "task '\(PeerText.safe(id))' is named as parent by task '\(PeerText.safe(child))', submitted before it: a task's credential (task '\(PeerText.safe(root))') may not submit it and so adopt tasks it did not make")
        }
    }

    /// A task being cancelled starts nothing more: what it submits while it is killed would
    /// escape `cancel --recursive`.
    private static func mayStartTasks(_ root: String, state: ClusterState) throws(ClientRefusal) {
        guard state.isBeingCancelled(root) else { return }
        throw ClientRefusal(code: .unexpected, reason: "task '\(PeerText.safe(root))' is being cancelled: its credential may not submit tasks")
    }

    /// A task unknown to the scheduler is left to the request's own "no task" answer.
    private static func mustSee(_ id: String, root: String, state: ClusterState, archive: TaskArchive) throws(ClientRefusal) {
        guard (try? state.task(id, archive: archive)) != nil, !state.isInSubtree(id, of: root, archive: archive) else { return }
        throw outside(id, root: root)
    }

    /// `mustSee` for each of `ids` (a `wait`, `states`): each id judged once, and a walk up
    /// the parents stops at a task an earlier walk passed. A frame naming the deepest task
    /// of a chain `ClusterState.maxSubtreeDepth` long 2,000 times, its tasks out of memory,
    /// would otherwise read 2 million records from the store on the scheduler's loop.
    private static func mustSeeEach(_ ids: [String], root: String, state: ClusterState, archive: TaskArchive) throws(ClientRefusal) {
        var inSubtree: [String: Bool] = [:]
        var unknown = Set<String>()
        for id in ids where inSubtree[id] == nil && !unknown.contains(id) {
            // Unknown: the request's own answer (null, or unknownTask).
            guard state.tasks[id] != nil || archive.contains(id) else { unknown.insert(id); continue }
            var path: [String] = []
            var at: String? = id
            var answer = false
            while let current = at, path.count <= ClusterState.maxSubtreeDepth {
                if current == root { answer = true; break }
                if let known = inSubtree[current] { answer = known; break }
                path.append(current)
                at = state.tasks[current].map { $0.info.parent } ?? archive.parent(current)
            }
            // A walk cut at the depth limit says nothing of the tasks above its start.
            let judged = at != nil && path.count > ClusterState.maxSubtreeDepth ? [id] : path
            for step in judged { inSubtree[step] = answer }
            inSubtree[id] = answer
            if !answer { throw outside(id, root: root) }
        }
    }

    private static func outside(_ id: String, root: String) -> ClientRefusal {
        ClientRefusal(code: .unexpected, reason: "task '\(PeerText.safe(id))' is outside the subtree of task '\(PeerText.safe(root))': a task's credential reaches only its own task and its descendants")
    }

    /// The parent a task submitted by `root`'s credential gets: its own, which must be in the
    /// subtree (possibly through other tasks of the same batch), else `root`.
    private static func parent(_ spec: TaskSpec, root: String, batch: [String: String], state: ClusterState,
                               archive: TaskArchive, memo: inout SubtreeMemo) throws(ClientRefusal) -> String {
        guard let parent = spec.parent else { return root }
        var at = parent
        // The batch ids passed on the way: a walk from any of them ends where this one does.
        var path: [String] = []
        for _ in 0...ClusterState.maxSubtreeDepth {
            if at == root || memo.viaBatch.contains(at) || memo.contains(at, { state.isInSubtree($0, of: root, archive: archive) }) {
                memo.viaBatch.formUnion(path)
                return parent
            }
            guard let next = batch[at], next != at else { break }
            path.append(at)
            at = next
        }
        throw ClientRefusal(code: .unexpected, reason: "parent '\(PeerText.safe(parent))' is outside the subtree of task '\(PeerText.safe(root))': a task's credential submits only under its own task and its descendants")
    }
}

/// A request's subtree answers, each task id judged once however often the request names it:
/// a batch naming one deep task in each of thousands of specs (as parent or dependency) would
/// otherwise walk up to `ClusterState.maxSubtreeDepth` parents each time, holding the
/// scheduler's loop for minutes with one frame.
struct SubtreeMemo {
    /// Id -> whether it is in the credential's subtree.
    private var answers: [String: Bool] = [:]
    /// Batch ids from which a parent walk through the batch reached the subtree (a walk that
    /// does not ends the request with a refusal).
    var viaBatch = Set<String>()
    /// Dependency ids already found visible (or unknown, left to the submit's own answer).
    var checked = Set<String>()

    /// `walk(id)`'s answer, asked once per id.
    mutating func contains(_ id: String, _ walk: (String) -> Bool) -> Bool {
        if let known = answers[id] { return known }
        let answer = walk(id)
        answers[id] = answer
        return answer
    }
}
