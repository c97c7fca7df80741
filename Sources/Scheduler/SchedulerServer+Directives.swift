import Logging
import SwarmProtocol
import SwarmTransport

/// Carrying out `ClusterState`'s directives: messages to workers, and what a task's end
/// answers (its followers, waiters, credential sessions) or a worker's loss closes.
extension SchedulerServer {
    /// Carries out `directives` in order (messages go out at the end of the turn).
    func execute(_ directives: [SchedulerDirective]) {
        for directive in directives {
            switch directive {
            case let .assign(node, task):
                switch SecretSealing.outfitted(task, sealer: { self.secretSealer }, token: config.token) {
                case .success(let outfitted):
                    GapTrace.mark("s_place", task.id)
                    toWorker(node, .assign(.init(task: outfitted)))
                case .failure(let failure):
                    let reason = SecretSealing.openFailure(failure)
                    logger.error("task \(PeerText.safe(task.id)) cannot be sent to \(PeerText.safe(node)): \(reason)")
                    execute(state.taskRejected(node: node, run: RunRef(id: task.id, attempt: task.attempt),
                                               nowMs: clocks.monotonic(), at: clocks.wall(), permanent: reason))
                }
            case let .ackResult(node, run):
                toWorker(node, .resultAck(.init(id: run.id, attempt: run.attempt)))
            case let .kill(node, run, reason):
                logger.notice("telling \(PeerText.safe(node)) to kill attempt \(run.attempt) of task \(PeerText.safe(run.id)): \(PeerText.safe(reason))")
                toWorker(node, .kill(.init(id: run.id, attempt: run.attempt, reason: reason)))
            case .taskEnded(let id):
                metrics.taskEnded(state.tasks[id]?.info.state)
                dashboardEnded(id: id, state: state.tasks[id]?.info.state)
                if store != nil {
                    let text = logs.text(id: id)
                    if !text.isEmpty { pendingLogs[id] = text }
                    logs.remove(id: id)
                }
                if let list = followers.removeValue(forKey: id), let info = try? state.task(id) {
                    for follower in list {
                        deliver(follower.session.connection, .logChunk(.init(requestId: follower.requestId, id: id, data: "", done: true, state: info.state)))
                    }
                }
                for waiter in waiters.taskEnded(id) {
                    let infos = state.waitReply(waiter.ids, archive: archive)
                    deliver(waiter.session.connection, .waitResult(.init(requestId: waiter.requestId, tasks: infos)))
                }
                // Its credential dies with it: what was asked before is answered first.
                for session in (taskSessions.removeValue(forKey: id) ?? [:]).values {
                    closingAtEndOfTurn.append((session.connection, "task \(id) ended: its credential is no longer valid"))
                    endOfTurnSoon()
                }
            case .nodeLost(let name):
                metrics.workerLost()
                logger.warning("worker \(PeerText.safe(name)) lost: no heartbeat for longer than it may stay silent (at least \(config.settings.lostAfterMs) ms)")
                if let session = workers[name] {
                    workers[name] = nil
                    // A reset, not a close: assignments queued in the kernel while it was
                    // unreachable must not reach it once the path is back.
                    session.connection.abort(reason: "worker lost")
                }
                // Its log reads end here: `ended` no longer sees it as the node's connection,
                // and a read it never answers would hold `swarm logs` (forever with `-f`).
                runRelays(logRelays.workerGone(name))
            }
        }
    }

    private func toWorker(_ node: String, _ message: Message) {
        if let connection = workers[node]?.connection { deliver(connection, message) }
    }
}
