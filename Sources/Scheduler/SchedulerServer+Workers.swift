import Logging
import SwarmProtocol
import SwarmTransport

/// Worker messages: each is range-checked at this edge (`Message.workerProblem`), then fed to
/// `ClusterState`.
extension SchedulerServer {
    func receivedFromWorker(_ message: Message, session: PeerSession, name: String) {
        let nowMs = clocks.monotonic()
        // A worker heard from after half of the silence that loses it is named: the log then
        // shows how close it came (and on which side the stall was, with the worker's log).
        if session.nodeName != nil, let silence = state.seen(node: name, nowMs: nowMs),
           let lostAfter = state.lostAfterMs(node: name), 2 * silence > lostAfter {
            logger.notice("worker \(PeerText.safe(name)) was silent for \(silence) ms (it is lost after \(lostAfter) ms)")
        }
        if let problem = message.workerProblem(), refusedFromWorker(message, problem, session: session, name: name) { return }
        switch message {
        case .register(let register):
            do {
                let directives = try state.register(
                    node: name, slots: register.slots, labels: register.labels, running: register.running,
                    finished: register.finished, address: session.connection.peer, nowMs: nowMs, at: clocks.wall(),
                    prefetch: register.prefetch == true)
                session.nodeName = name
                workers[name] = session
                state.setHealth(node: name, runtimes: register.runtimes ?? [], allowsCommands: register.allowsCommands ?? true,
                               probing: register.probing ?? 0)
                metrics.probes(node: name, runtimes: register.runtimes ?? [])
                let interval = state.assignHeartbeat(node: name, jitterFraction: Double.random(in: 0...1))
                deliver(session.connection, registered(heartbeatMs: interval))
                // A bigger cluster: the others beat less often (a `registered` again says so).
                for update in state.heartbeatUpdates(jitter: { Double.random(in: 0...1) }) where update.node != name {
                    if let worker = workers[update.node] { deliver(worker.connection, registered(heartbeatMs: update.heartbeatMs)) }
                }
                logger.info("worker \(PeerText.safe(name)) registered from \(session.connection.peer) with \(register.slots) slots")
                execute(directives)
                execute(state.cancelKills(node: name))
            } catch {
                session.connection.refuse(error.code, error.description)
            }
        case _ where session.nodeName == nil:
            session.connection.refuse(.unexpected, "a worker must 'register' before '\(message.type)'")
        case .heartbeat(let heartbeat):
            state.heartbeat(node: name, running: heartbeat.running)
            metrics.heartbeat()
            if let usage = heartbeat.usage { workerUsage[name] = usage }
        case .taskStarted(let started):
            state.taskStarted(node: name, run: RunRef(id: started.id, attempt: started.attempt), startedAt: started.startedAt)
        case .taskFinished(let finished):
            // Only blobs the scheduler holds are named as artifacts (the rest: "not uploaded").
            GapTrace.mark("s_result", finished.result.id)
            let result = TaskBlobRules.keepingHeld(finished.result, held: heldBlobSize)
            execute(state.taskFinished(node: name, result: result, at: clocks.wall()))
            GapTrace.mark("s_handled", finished.result.id)
        case .leave(let leave):
            logger.notice("worker \(PeerText.safe(name)) is leaving: \(PeerText.safe(leave.reason))")
            state.leaving(node: name)
        case .health(let report):
            state.setHealth(node: name, runtimes: report.runtimes, probing: report.probing)
            metrics.probes(node: name, runtimes: report.runtimes)
        case .taskEvent(let event):
            logger.info("task \(PeerText.safe(event.id)) attempt \(event.attempt) on \(PeerText.safe(name)): \(PeerText.safe(event.kind)): \(PeerText.safe(event.detail, limit: 1_000))")
            state.taskEvent(node: name, run: RunRef(id: event.id, attempt: event.attempt), kind: event.kind)
            metrics.taskEvent(event.kind)
            return
        case .taskOutput(let output):
            guard let info = try? state.task(output.id), info.attempts == output.attempt, info.node == name,
                  let piece = logs.append(id: output.id, attempt: output.attempt, stream: output.stream, data: output.data) else { return }
            dashboardOutput(id: output.id, piece: piece)
            for follower in followers[output.id] ?? [] {
                // As it came, with its stream: the client labels it or splits stdout/stderr.
                deliver(follower.session.connection, .logChunk(.init(requestId: follower.requestId, id: output.id,
                                                                     data: output.data, done: false, stream: output.stream)))
            }
            return
        case .logData(let data):
            runRelays(logRelays.received(data, from: name))
            return
        case .reject(let reject):
            logger.warning("worker \(PeerText.safe(name)) rejected task \(PeerText.safe(reject.id)): \(PeerText.safe(reject.reason, limit: 1_000))")
            execute(state.taskRejected(node: name, run: RunRef(id: reject.id, attempt: reject.attempt), nowMs: nowMs, at: clocks.wall(),
                                       permanent: reject.permanent == true ? reject.reason : nil))
        default:
            session.connection.refuse(.unexpected, "a worker may not send '\(message.type)'")
            return
        }
        scheduleSoon()
    }

    /// A worker's interval, with the silence after which it is lost (it depends on the interval).
    private func registered(heartbeatMs: Int) -> Message {
        .registered(.init(heartbeatMs: heartbeatMs, lostAfterMs: Int(config.settings.lostAfter(intervalMs: heartbeatMs))))
    }

    /// A worker's message with a number out of range (`Message.workerProblem`). A bad
    /// `register` is refused (the connection closes); a bad result still ends its run (the
    /// state's `taskFinished` records it as failed, so no task hangs); any other report is
    /// dropped with an error frame. Returns whether the message was dropped.
    private func refusedFromWorker(_ message: Message, _ problem: String, session: PeerSession, name: String) -> Bool {
        logger.warning("worker \(PeerText.safe(name)) sent '\(message.type)' with a number out of range: \(PeerText.safe(problem))")
        switch message {
        case .register:
            session.connection.refuse(.badMessage, "register: \(problem)")
            return true
        case .taskFinished:
            return false
        default:
            deliver(session.connection, .error(.init(code: .badMessage, reason: "\(message.type) ignored: \(problem)")))
            return true
        }
    }
}

extension SchedulerServer {
    /// Bytes that came from a worker since the last tick count as its sign of life, whole
    /// messages or not: a heartbeat queued behind a large frame still arriving is on its way.
    /// A worker that sends nothing (stopped by SIGSTOP, its loop held) is still lost: what it
    /// had written before is read within a turn or two, and then no byte comes.
    func heardFromWorkers() {
        let nowMs = clocks.monotonic()
        for (name, session) in workers where session.connection.bytesReceived != session.bytesAtLastTick {
            session.bytesAtLastTick = session.connection.bytesReceived
            state.seen(node: name, nowMs: nowMs)
        }
    }
}
