import SwarmProtocol

/// `states` (issue 15 item 3): what a waiting client's live progress line reads.
extension ClientRequests {
    /// One state per id asked (null: unknown), at most `WaitSummary.maxIds` ids. A task in
    /// memory costs a lookup; one that left memory (it has ended), one read of its state
    /// column (`endedTaskState`: the record with its output is never decoded), once per
    /// request however often the request names it (the client asks only for the tasks it
    /// has not yet seen end, so each is read at most once more).
    static func states(_ request: Message.States, state: ClusterState,
                       context: ClientRequestContext) throws(ClientRefusal) -> ClientOutcome {
        guard request.ids.count <= WaitSummary.maxIds else {
            throw ClientRefusal(code: .badMessage, reason: "states names \(request.ids.count) task ids; at most \(WaitSummary.maxIds) per request")
        }
        var stored: [String: TaskState?] = [:]
        let states = request.ids.map { id -> TaskState? in
            if let record = state.tasks[id] { return record.info.state }
            if let known = stored[id] { return known }
            let found = context.endedTaskState(id)
            stored[id] = found
            return found
        }
        return .reply(.taskStates(.init(requestId: request.requestId, states: states)), .yieldTurn)
    }
}
