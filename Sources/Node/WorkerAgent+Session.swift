import Logging
import SwarmProtocol
import SwarmTransport
import SwarmUV

/// The shell of `WorkerSession`: what happens to the socket, the connection and the timers
/// goes in as events; the session's actions come out as libuv calls and frames. Every
/// decision (when to connect, retry, give up, resend, hold or drop) is the session's.
///
/// An action may make the socket or connection report at once (a connect that fails before it
/// starts, a close): that event is fed while the earlier actions are still being done. The
/// session has moved on by then; what is left of the earlier list finds no connection (sends
/// are dropped) or a stopped timer, as the same events in two loop turns would.
extension WorkerAgent {
    /// Feeds the session; `resultJSON`: the encoded result of a `.finished` event, sent as is.
    func feed(_ event: SessionEvent, resultJSON: ArraySlice<UInt8>? = nil) {
        for action in session.handle(event) { perform(action, resultJSON: resultJSON) }
    }

    private func perform(_ action: SessionAction, resultJSON: ArraySlice<UInt8>?) {
        switch action {
        case .log(let level, let text): logger.log(level: level, "\(text)")
        case .openSocket: openSocket()
        case .abandonConnect: pendingSocket?.close()
        case .closeSocket:
            pendingSocket?.close()
            pendingSocket = nil
        case .armConnectTimer(let ms):
            connectTimer?.start(afterMs: ms) { [weak self] in
                guard let self else { return }
                self.feed(.connectTimerFired(nowMs: self.clocks.monotonic()))
            }
        case .stopConnectTimer: connectTimer?.stop()
        case .armReconnectTimer(let ms):
            reconnectTimer?.start(afterMs: ms) { [weak self] in
                guard let self else { return }
                self.feed(.reconnectTimerFired(nowMs: self.clocks.monotonic()))
            }
        case .openConnection(let userTimeoutMs): openConnection(userTimeoutMs: userTimeoutMs)
        case .send(let message): connection?.send(message)
        case .readerDigests(let digests): readerDigests = digests
        case .closeConnection(let reason): connection?.close(reason: reason)
        case .sendRegister(let finished):
            connection?.send(.register(.init(slots: config.slots, labels: config.labels, running: runningRuns,
                                             finished: finished, runtimes: health.statuses,
                                             allowsCommands: config.allowsCommands, probing: probes.count,
                                             prefetch: true)))
        case .startHeartbeats(let period):
            heartbeatTimer?.start(afterMs: period, repeatMs: period) { [weak self] in self?.feed(.heartbeatTimerFired) }
        case .stopHeartbeats: heartbeatTimer?.stop()
        case .sendHeartbeat: sendHeartbeat()
        case .setUserTimeout(let ms): connection?.tcp.setUserTimeout(ms: ms)
        case .announceRunning:
            resendStarts()
            startHeld()
            // Probes may have ended between the register and now: the scheduler gets the latest.
            if !config.runtimes.isEmpty { sendHealth() }
        case .sendResult(let result):
            // The result file's bytes (without their newline) go into the frame: encoded once.
            let frame = resultJSON.map { MessageCodec.taskFinishedFrame(resultJSON: $0) }
            sendResult(frame ?? MessageCodec.frame(.taskFinished(.init(result: result))), of: result.run)
        case .pumpOutput: pumpOutput()
        case .resumeTransfers: if let connection { blobs.connected(connection) }
        case .acknowledged(let run):
            // Its files are on disk before the journal forgets it (WorkerAgent+Finishing.swift).
            acknowledgedLater(run)
        case .dispatch(let message): dispatch(message)
        case .connectionGone:
            dropHeld()
            connection = nil
            outputTickets = [:]
            blobs.disconnected()
        case .fatal(let reason): onFatal?(reason)
        }
    }

    /// A socket connecting to the scheduler; its outcome goes to the session. A callback of a
    /// socket that is no longer the pending one (abandoned, then replaced) is only closed.
    private func openSocket() {
        let tcp: UVTCP
        do { tcp = try UVTCP(loop: loop) } catch {
            return feed(.connectFailed(.socket("\(error)"), nowMs: clocks.monotonic()))
        }
        pendingSocket = tcp
        tcp.connect(host: config.schedulerHost, port: config.schedulerPort) { [weak self] error in
            guard let self, self.pendingSocket === tcp else { tcp.close(); return }
            if let error {
                tcp.close()
                self.pendingSocket = nil
                self.feed(.connectFailed(.unreachable("\(error)"), nowMs: self.clocks.monotonic()))
            } else {
                self.feed(.connected(nowMs: self.clocks.monotonic()))
            }
        }
    }

    private func openConnection(userTimeoutMs: UInt32) {
        guard let tcp = pendingSocket else { return }
        pendingSocket = nil
        tcp.setUserTimeout(ms: userTimeoutMs)
        let tls: TLSSession?
        do { tls = try tlsSetup.get().map { context throws(TLSError) in try TLSSession(context: context) } } catch {
            tcp.close()
            onFatal?(error.description)
            return
        }
        let connection = FramedConnection(tcp: tcp, tls: tls)
        self.connection = connection
        connection.onMessage = { [weak self] message in self?.received(message) }
        connection.onEnd = { [weak self, unowned connection] end in
            // Refused credentials or a plaintext scheduler: retrying cannot help (as a wrong
            // token in the handshake).
            if connection.tls?.handshakeFailed == true {
                self?.onFatal?("cannot connect to the scheduler: \(end)")
                return
            }
            self?.feed(.closed(reason: "\(end)"))
        }
        connection.onBulkSpace = { [weak self] in
            self?.pumpOutput()
            self?.blobs.pump()
        }
        connection.onUndecodable = { [weak self] payload, error in self?.undecodable(payload, error) ?? false }
        connection.start()
    }

    /// Blob transfers take theirs first, once the handshake is done; the session the rest.
    private func received(_ message: Message) {
        let start = monotonicMicros()
        defer { spentOnMessages(since: start) }
        GapTrace.mark("w_msg", message.type)
        if session.isEstablished, blobs.received(message) { return }
        feed(.received(message))
    }

    /// Counts the loop time the scheduler's messages take; past `dispatchSliceMicros` the
    /// messages already read wait for the next turn, so starting (or killing) a thousand runs
    /// read at once does not hold the heartbeat and the runs' output. The count carries over
    /// turns that stay under it: at worst a yield comes early, a millisecond lost.
    private func spentOnMessages(since start: Int64) {
        dispatchSpentMicros += monotonicMicros() - start
        guard dispatchSpentMicros >= config.dispatchSliceMicros else { return }
        dispatchSpentMicros = 0
        connection?.yieldTurn()
    }

    /// The scheduler's messages for the worker itself.
    private func dispatch(_ message: Message) {
        switch message {
        case .assign(let assign):
            GapTrace.mark("w_assign", assign.task.id)
            startTask(assign.task)
        case .kill(let kill):
            if let runner = runners[kill.id], runner.attempt == kill.attempt {
                runner.kill(reason: "killed by scheduler: \(kill.reason)")
            } else if !held.isEmpty, let task = held.remove(RunRef(id: kill.id, attempt: kill.attempt)) {
                killHeld(task, reason: kill.reason)
            } else {
                killPipelineTask(kill)
            }
        case .readLog(let request):
            answerLogRead(request)
        default:
            logger.warning("ignoring unexpected '\(message.type)' from scheduler")
        }
    }

    /// An assignment this worker cannot read costs only its own task: it is refused for good
    /// (the scheduler ends it with the reason) and the connection stays. Anything else that
    /// cannot be read ends the connection.
    private func undecodable(_ payload: [UInt8], _ error: MessageError) -> Bool {
        guard registered, let run = AssignPeek.run(in: payload) else { return false }
        logger.error("cannot read the assignment of task \(run.id) (\(payload.count) bytes): \(error)")
        connection?.send(.reject(.init(id: run.id, attempt: run.attempt,
                                       reason: "cannot read its assignment (\(payload.count) bytes): \(error)", permanent: true)))
        return true
    }
}
