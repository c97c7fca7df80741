import SwarmProtocol

/// `states` (issue 15 item 3): what a waiting client's live progress line reads.
extension ClientRequests {
    /// One state per id asked (null: unknown), at most `WaitSummary.maxIds` ids. A task in
    /// memory costs a lookup; one that left memory, a read of the store (the client asks
    /// only for the tasks it has not yet seen end, so each is read at most once more).
    static func states(_ request: Message.States, state: ClusterState,
                       archive: TaskArchive) throws(ClientRefusal) -> ClientOutcome {
        guard request.ids.count <= WaitSummary.maxIds else {
            throw ClientRefusal(code: .badMessage, reason: "states names \(request.ids.count) task ids; at most \(WaitSummary.maxIds) per request")
        }
        let states = request.ids.map { id in state.currentState(of: id, archive: archive) }
        return .reply(.taskStates(.init(requestId: request.requestId, states: states)), .yieldTurn)
    }
}

extension ClusterState {
    /// The task's state, from memory or the store; nil when unknown.
    func currentState(of id: String, archive: TaskArchive) -> TaskState? {
        tasks[id]?.info.state ?? archive.task(id)?.info.state
    }
}
