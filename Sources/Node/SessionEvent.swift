import Logging
import SwarmProtocol

/// Inputs to a worker's session with the scheduler. `nowMs` is monotonic milliseconds: the
/// connect deadline is measured on it, nothing here reads a clock.
enum SessionEvent: Sendable {
    /// The worker starts; `recovered`: results a previous worker process on the data dir did
    /// not deliver, which go out first.
    case start(recovered: [TaskResult], nowMs: Int64)
    /// The socket opened by `openSocket` connected.
    case connected(nowMs: Int64)
    /// The socket could not be made, or its connect failed (also after `abandonConnect`).
    case connectFailed(ConnectFailure, nowMs: Int64)
    case connectTimerFired(nowMs: Int64)
    case reconnectTimerFired(nowMs: Int64)
    /// A message from the scheduler (the shell gives blob transfers theirs first).
    case received(Message)
    /// The connection ended; `reason` is its end as people read it.
    case closed(reason: String)
    case heartbeatTimerFired
    /// Something a task did that the scheduler is told (`silence_warning`, ...).
    case taskEvent(Message.TaskEvent)
    /// Output of a task, at wall time `at`.
    case output(RunRef, OutputChannel, [UInt8], at: Int64)
    /// A run's result, kept (already on disk) until the scheduler acknowledges it.
    case finished(TaskResult)
    case stop

    /// The event's kind, for log lines.
    var name: String {
        switch self {
        case .start: "start"
        case .connected: "connected"
        case .connectFailed: "connectFailed"
        case .connectTimerFired: "connectTimerFired"
        case .reconnectTimerFired: "reconnectTimerFired"
        case .received(let message): "received '\(message.type)'"
        case .closed: "closed"
        case .heartbeatTimerFired: "heartbeatTimerFired"
        case .taskEvent: "taskEvent"
        case .output: "output"
        case .finished: "finished"
        case .stop: "stop"
        }
    }
}

/// Why a connect failed: the socket could not be made, or the scheduler could not be reached.
enum ConnectFailure: Sendable, Equatable {
    case socket(String)
    case unreachable(String)
}

/// What the shell (`WorkerAgent`) must do for the session.
enum SessionAction: Equatable, Sendable {
    case log(Logger.Level, String)
    /// Make a socket and connect it to the scheduler; report `connected` or `connectFailed`.
    case openSocket
    /// Close the socket whose connect is pending: its connect then fails (`connectFailed`).
    case abandonConnect
    /// Close the socket that just connected (the worker is stopping).
    case closeSocket
    case armConnectTimer(ms: UInt64)
    case stopConnectTimer
    case armReconnectTimer(ms: UInt64)
    /// Frame the connected socket and start reading it; its TCP_USER_TIMEOUT first.
    case openConnection(userTimeoutMs: UInt32)
    case send(Message)
    /// The scheduler's reading tokens by digest, from its `welcome`: `/metrics` takes them.
    case readerDigests(BearerDigests)
    /// Close the connection now (its end is reported as `closed`).
    case closeConnection(String)
    /// Send `register`, with these results not acknowledged yet.
    case sendRegister(finished: [RunRef])
    /// (Re)start the heartbeat timer at this period.
    case startHeartbeats(everyMs: UInt64)
    case stopHeartbeats
    case sendHeartbeat
    case setUserTimeout(ms: UInt32)
    /// Tell a new registration what runs here now: their starts, the runtimes' health.
    case announceRunning
    /// Send a result (after its own run's waiting output: `WorkerAgent.sendResult`).
    case sendResult(TaskResult)
    /// Hand waiting output (`nextOutput`) to the connection while it has room.
    case pumpOutput
    /// Blob transfers may use the connection now.
    case resumeTransfers
    /// The scheduler has this result: forget its journal record and workspace.
    case acknowledged(RunRef)
    /// A message for the worker itself (assign, kill, readLog, ...).
    case dispatch(Message)
    /// Forget the ended connection (its output tickets; blob transfers wait).
    case connectionGone
    /// Reconnecting cannot help (wrong token, another protocol version): the worker stops.
    case fatal(String)
}
