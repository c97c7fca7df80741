/// Progress of a wait (issue 15 item 3): a client that shows a live line asks, about once a
/// second, for the states of the tasks it still waits for, and tallies them itself.
extension Message {
    /// `states`: the current state of each of `ids` (1 to `WaitSummary.maxIds`; a client
    /// waiting for more asks in parts), answered with `taskStates`. O(ids), and the client
    /// leaves out the tasks it has already seen end, so a long wait costs less as it goes.
    public struct States: Codable, Sendable, Equatable {
        public var requestId: Int
        public var ids: [String]
        public init(requestId: Int, ids: [String]) { self.requestId = requestId; self.ids = ids }
    }

    /// `taskStates`: one entry per id asked, in order; null for an id the scheduler does not
    /// know (never submitted, or deleted by retention).
    public struct TaskStates: Codable, Sendable, Equatable {
        public var requestId: Int
        public var states: [TaskState?]
        public init(requestId: Int, states: [TaskState?]) { self.requestId = requestId; self.states = states }
    }
}
