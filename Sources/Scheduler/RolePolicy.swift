import SwarmProtocol

/// What the scoped tokens may ask of the scheduler as clients (issue 16 item 2), by request
/// type: the submit token submits, cancels, reads and fetches; the read token only reads. Both
/// see every task (scoping to a subtree is the task credential's rule, `ClientPolicy`). Drain,
/// undrain and gc are the cluster token's alone. Pure.
enum RolePolicy {
    /// What a request does, for the table below.
    enum Kind: Equatable {
        /// status, listings, logs, waits, nodes, stats.
        case read
        /// submit, submitBatch, rerun (it submits), cancel, cancelTree.
        case change
        /// drain, undrain, gc.
        case operate
        /// Not a client request at all: `ClientRequests` refuses it for everyone alike.
        case notClient
    }

    static func kind(_ message: Message) -> Kind {
        switch message {
        case .status, .listTasks, .listTree, .listNodes, .stats, .logs, .wait, .states: .read
        case .submit, .submitBatch, .rerun, .cancel, .cancelTree: .change
        case .drain, .undrain, .gc: .operate
        case .hello, .challenge, .auth, .welcome, .error,
             .register, .registered, .heartbeat, .assign, .taskStarted, .taskFinished, .resultAck, .reject,
             .kill, .readLog, .leave, .health, .taskEvent, .taskOutput, .logData,
             .submitted, .taskInfo, .waitResult, .taskList, .nodeList, .statsReply, .logChunk, .batchSubmitted, .gcResult,
             .taskTree, .treeCancelled, .taskStates,
             .blobOffer, .blobAccept, .blobChunk, .blobStored, .blobGet: .notClient
        }
    }

    /// Whether `identity` (the submit or read token) may send `message`.
    static func check(_ message: Message, identity: ClientIdentity) throws(ClientRefusal) {
        switch (identity, kind(message)) {
        case (_, .read), (_, .notClient), (.cluster, _), (.submit, .change): return
        case (.task, _): return  // `ClientPolicy`'s subtree rules
        case (.read, .change), (.read, .operate), (.submit, .operate):
            throw forbidden(message.type, identity: identity)
        }
    }

    static func forbidden(_ type: String, identity: ClientIdentity) -> ClientRefusal {
        let allowed = switch identity {
        case .read: "it may only read (status, tasks, nodes, logs, stats, wait)"
        case .submit: "it may submit, cancel, read and fetch; drain, undrain and gc need the cluster token"
        case .cluster, .task: "see the README's token scopes"
        }
        return ClientRefusal(code: .forbidden, reason: "\(identity.tokenName) may not send '\(type)': \(allowed)")
    }
}
