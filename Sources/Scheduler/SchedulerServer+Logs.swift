import SwarmProtocol
import SwarmTransport

/// `swarm logs`: the whole log, read from the worker that ran the task (`LogRelays`), or the
/// scheduler's own copy of the end of the output when that worker cannot send it.
extension SchedulerServer {
    typealias RelayDirective = LogRelays<ObjectIdentifier>.Directive

    /// An ended task, or any task without `-f`: its log file from the worker of its last run,
    /// relayed chunk by chunk; the scheduler's copy when that worker is not connected.
    func wholeLog(_ request: Message.LogsRequest, _ info: TaskInfo, session: PeerSession) {
        guard info.state != .queued, let node = info.node else {
            return deliver(session.connection, copyChunk(request.id, info, requestId: request.requestId, unavailable: nil))
        }
        guard workers[node] != nil else {
            let why = "it is on worker \(node), which is not connected"
            return deliver(session.connection, copyChunk(request.id, info, requestId: request.requestId, unavailable: why))
        }
        do {
            let directives = try logRelays.start(client: ObjectIdentifier(session), requestId: request.requestId,
                                                 taskId: request.id, node: node, nowMs: loop.nowMs)
            if session.connection.onWritten == nil {
                session.connection.onWritten = { [weak self, weak session] in
                    if let self, let session { self.clientWrote(session) }
                }
            }
            runRelays(directives)
        } catch {
            deliver(session.connection, .error(.init(code: .unexpected, reason: error.description, requestId: request.requestId)))
        }
    }

    /// Part of the client's queue reached the socket: when it has room, its relays read on.
    func clientWrote(_ session: PeerSession) {
        guard session.connection.queuedBytes < logRelays.limits.clientLowWater else { return }
        runRelays(logRelays.clientReady(ObjectIdentifier(session), nowMs: loop.nowMs))
    }

    /// Sent at once, not at the end of the turn: log text is no state to save first, and the
    /// client's queue must show each chunk before the next one is asked for.
    func runRelays(_ directives: [RelayDirective]) {
        for directive in directives {
            switch directive {
            case let .read(node, request):
                guard let worker = workers[node] else {
                    runRelays(logRelays.workerGone(node))
                    continue
                }
                worker.connection.send(.readLog(request))
            case let .chunk(client, requestId, taskId, data):
                guard let session = sessions[client] else { continue }
                session.connection.send(.logChunk(.init(requestId: requestId, id: taskId, data: data, done: false,
                                                        stream: LogChunkStream.log)))
                clientWrote(session)
            case let .finish(client, requestId, taskId, end):
                guard let session = sessions[client], let info = try? state.task(taskId, archive: archive) else { continue }
                // The last chunk names the task's state: it leaves with this turn, once the
                // state it reports is durable (group commit), like any other reply that does.
                switch end {
                case .complete:
                    deliver(session.connection, .logChunk(.init(requestId: requestId, id: taskId, data: "", done: true, state: info.state)))
                case .unavailable(let why):
                    deliver(session.connection, copyChunk(taskId, info, requestId: requestId, unavailable: why))
                case .cutShort(let why):
                    logger.notice("log of task \(PeerText.safe(taskId)) cut short: \(PeerText.safe(why, limit: 400))")
                    deliver(session.connection, .logChunk(.init(
                        requestId: requestId, id: taskId, data: "", done: true, state: info.state,
                        notice: "task \(taskId): the rest of its log is no longer available (\(why))")))
                }
            }
        }
    }

    /// The last chunk of a request answered from the scheduler's copy: the output kept here
    /// (the end of it), saying why the worker's log file could not be read, if it was asked.
    func copyChunk(_ id: String, _ info: TaskInfo, requestId: Int, unavailable why: String?) -> Message {
        let text = schedulerCopy(id, info)
        // A run that never started (refused before its spawn) has no log worth a notice.
        let notice = why.flatMap { why in
            info.startedAt == nil && text.isEmpty ? nil
                : "task \(id): its full log is no longer available (\(why)); showing the scheduler's copy of the end of its output"
        }
        return .logChunk(.init(requestId: requestId, id: id, data: text, done: true, state: info.state, notice: notice))
    }

    /// What the scheduler keeps of a task's output: the streamed text (in memory while the
    /// task runs, saved when it ends), else the result's tail.
    func schedulerCopy(_ id: String, _ info: TaskInfo) -> String {
        let kept = logs.text(id: id)
        if !kept.isEmpty { return kept }
        if info.state.isTerminal, let saved = pendingLogs[id] ?? store?.log(id: id), !saved.isEmpty { return saved }
        return info.output ?? ""
    }
}
