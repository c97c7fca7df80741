import SwarmProtocol
import SwarmTransport

/// Streaming task output to the scheduler without ever letting it crowd out the control
/// traffic: output goes in the connection's bulk lane (see `FramedConnection.sendBulk`), at
/// most `outputLaneBytes` at a time; the rest waits in the session's relay (`WorkerSession`,
/// `OutputRelay`: bounded, with drop markers; also while the scheduler is away). The
/// connection is never closed for output volume.
extension WorkerAgent {
    /// Output is handed to the connection while its bulk lane holds under this many bytes:
    /// enough to keep the socket busy between refills, small because a result whose own
    /// output is in the lane waits behind the lane (see `sendResult`).
    static let outputLaneBytes = 256 << 10

    func relayOutput(_ run: RunRef, _ stream: OutputChannel, _ bytes: [UInt8], at: Int64) {
        metrics.output(bytes.count)
        feed(.output(run, stream, bytes, at: at))
    }

    /// Hands waiting output to the connection while its bulk lane has room (runs in turn).
    func pumpOutput() {
        guard registered, let connection else { return }
        while connection.bulkQueuedBytes < Self.outputLaneBytes, let piece = session.nextOutput() {
            sendOutput(piece, on: connection)
        }
    }

    private func sendOutput(_ piece: OutputRelay.Piece, on connection: FramedConnection) {
        let output = Message.TaskOutput(id: piece.run.id, attempt: piece.run.attempt, stream: piece.stream.rawValue,
                                        data: String(decoding: piece.bytes, as: UTF8.self), at: piece.at)
        outputTickets[piece.run] = connection.sendBulk(MessageCodec.frame(.taskOutput(output)))
    }

    /// Sends a run's result frame after the run's own output that still waits, never before
    /// it (a follower of the log would end before the last lines, without a marker). A run
    /// whose output has all reached the socket's queue (the usual case) gets its result sent
    /// as a control frame, ahead of any output backlog. One whose output is still in the bulk
    /// lane or the relay has that output put in the lane and its result after it: it waits
    /// behind its own output (at most `OutputRelay.Limits.perRunBytes`), the output of runs
    /// that ended just before it (the same way), and at most `outputLaneBytes` plus one frame
    /// of running tasks' output; never behind the running tasks' backlog. Heartbeats and the
    /// other control frames wait behind none of it.
    func sendResult(_ frame: [UInt8], of run: RunRef) {
        guard registered, let connection else { return }
        for piece in session.drainOutput(run) { sendOutput(piece, on: connection) }
        if let ticket = outputTickets.removeValue(forKey: run), connection.bulkHandedOver < ticket {
            connection.sendBulk(frame)
        } else {
            connection.sendFrame(frame)
        }
    }
}
