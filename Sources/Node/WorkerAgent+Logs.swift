import SwarmProtocol
import SwarmTransport

extension WorkerAgent {
    /// Past this many bytes waiting on the scheduler connection a log read is answered "busy":
    /// reads never pile up behind each other (the scheduler keeps at most a few in flight).
    static let maxQueuedForLogReads = 32 << 20

    /// The scheduler relays a task's log file to a `swarm logs` client, one chunk per request.
    func answerLogRead(_ request: Message.ReadLog) {
        guard let connection else { return }
        // A run that just ended: its log's last line first.
        flushFinishedFiles(request.id)
        guard LogRead.readIdProblem(request.readId) == nil else {
            logger.warning("ignoring readLog with readId \(request.readId) out of range")
            return
        }
        if connection.queuedBytes > Self.maxQueuedForLogReads {
            connection.send(.logData(.init(readId: request.readId, id: request.id, offset: request.offset,
                                           nextOffset: request.offset, data: "", eof: true,
                                           problem: "worker \(config.name) is busy sending (over \(Self.maxQueuedForLogReads) bytes queued)")))
            return
        }
        // Up to 1 MiB of log: in the bulk lane, so heartbeats and results never wait behind it.
        connection.sendBulk(MessageCodec.frame(.logData(LogFileReader.answer(request, logsDir: logsDir,
                                                                              ranHere: hasRun(request.id)))))
    }

    /// Whether this worker has task `id`'s run (running, ending, unacknowledged, or kept by
    /// retention): its missing log file means the run printed nothing (`TaskLog`'s deferred
    /// mode), not that the log is gone.
    func hasRun(_ id: String) -> Bool {
        runners[id] != nil || workspace.tasks[id] != nil || unwritten.contains(id)
            || finishing.contains { $0.result.id == id } || retention.core.keeps(id)
            || retention.pending.contains { $0.id == id } || journal.entry(id) != nil
    }
}
