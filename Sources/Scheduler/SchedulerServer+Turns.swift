import SwarmProtocol
import SwarmTransport

/// The scheduler's loop turns: a turn applies what was read in a loop iteration, places (at most
/// `placementSlice` tasks; the rest after a poll), saves the changes in one transaction and hands
/// the turn's messages to group commit (directives: SchedulerServer+Directives.swift; group
/// commit: SchedulerServer+Durability.swift).
extension SchedulerServer {
    /// Placement runs once per loop iteration, after all messages read in it are applied.
    func scheduleSoon() {
        scheduleRequested = true
        endOfTurnSoon()
    }

    /// Runs `endOfTurn` once, after all messages read in this loop iteration are applied.
    /// Asked during a turn, it is settled when the turn ends (`endOfTurn`).
    func endOfTurnSoon() {
        if inTurn {
            askedDuringTurn = true
            return
        }
        guard !scheduleQueued, let scheduleTimer else { return }
        scheduleQueued = true
        scheduleTimer.start(afterMs: 0) { [weak self] in
            guard let self else { return }
            self.scheduleQueued = false
            self.endOfTurn()
        }
    }

    /// Asks for another placement round in a later loop iteration, after the next poll: the
    /// idle handle runs once per iteration and keeps the poll from waiting. A 0 ms timer would
    /// not do (restarted from its own callback it runs again before any poll in libuv 1.44),
    /// nor would the idle handle's first run when asked from this iteration's timers (idle
    /// handles run after them, before the poll): that run is skipped.
    func continueAfterPoll() {
        scheduleRequested = true
        guard let continuer else { return endOfTurnSoon() }
        if !inContinuation { skipContinuation = true }
        continuationArmed = true
        continuer.start { [weak self] in self?.continueTurn() }
    }

    /// The idle handle's run: a turn of its own (a placement slice), unless a slice was made
    /// in this iteration's timers, before the poll.
    func continueTurn() {
        if skipContinuation {
            skipContinuation = false
            return
        }
        continuer?.stop()
        continuationArmed = false
        inContinuation = true
        defer { inContinuation = false }
        endOfTurn()
    }

    /// Places queued tasks, writes every change of this turn in one transaction, and hands the
    /// turn's messages to group commit: they leave once a sync has made that transaction
    /// durable (SchedulerServer+Durability.swift). So a `submitted`, an `assign`, a
    /// `resultAck` or a wait's answer never gets ahead of the state it reports, and the loop
    /// goes on reading and placing while the disk syncs.
    func endOfTurn() {
        inTurn = true
        askedDuringTurn = false
        runTurn()
        inTurn = false
        // The turn's own messages asked for a turn (`deliver`): they are in it. Only what came
        // after it took them needs another. Were the timer restarted from the turn itself, it
        // would run again at once, before any poll (libuv 1.44): a burst's placement slices
        // back to back, a sync's end unread until the last.
        guard askedDuringTurn, !outgoing.isEmpty || !closingAtEndOfTurn.isEmpty || state.hasChanges
              || (scheduleRequested && !continuationArmed) else { return }
        endOfTurnSoon()
    }

    /// `endOfTurn`'s work: placement, the save, the messages handed to group commit.
    func runTurn() {
        GapTrace.mark("s_turn")
        if !treeCancels.isEmpty { treeCancelSlice() }
        // A cascade of dependency ends deferred by whatever ended a task this turn (a cancel,
        // a result) goes on in a placement round, asked for or not.
        if scheduleRequested || state.isSettling {
            scheduleRequested = false
            let more = placementRound()
            armRetryTimer()
            // More to place, or a cascade of dependency ends under way: the next slice after a
            // poll, with what peers sent meanwhile (a sync's end) handled in between
            // (`placementSlice`, `ClusterState.settleSlice`).
            if more || state.isSettling { continueAfterPoll() }
        }
        guard persist() else { return }
        GapTrace.mark("s_saved", "\(outgoing.count)")
        let turn = HeldTurn(messages: outgoing, closing: closingAtEndOfTurn)
        outgoing = []
        closingAtEndOfTurn = []
        commitTurn(turn)
    }

    /// Sends turns that group commit released, in order, and writes them at once: a sync's end
    /// is read in the poll, and the frames would otherwise wait for the prepare phase of the
    /// next iteration, after its turns (the next placement slice: its placements and save,
    /// 0.5 ms of CPU per slice in `swarm bench dag`, more when the save waits on the disk).
    func send(_ turns: [HeldTurn]) {
        var touched: [ObjectIdentifier: FramedConnection] = [:]
        defer { for connection in touched.values { connection.flush() } }
        for turn in turns {
            for (connection, _) in turn.messages { touched[ObjectIdentifier(connection)] = connection }
            for (connection, message) in turn.messages {
                if GapTrace.enabled, case .assign(let assign) = message { GapTrace.mark("s_send_assign", assign.task.id) }
                connection.send(message)
            }
            for (connection, reason) in turn.closing { connection.closeAfterFlush(.local(reason)) }
            enforceQueueCaps(sentTo: turn.messages.lazy.map(\.0))
        }
    }
}
