import SwarmUV

/// Streamed answers (`HTTPResponder.beginStream`): the application's handle on one, and the
/// one timer that writes what streams hold (`HTTPLimits.streamFlushMs`, `streamHeadDelayMs`).
extension HTTPServer {
    /// The application's handle on a streamed answer on `connection`.
    func stream(on connection: Connection) -> HTTPStream {
        HTTPStream(send: { [weak self, weak connection] bytes in
            guard let self, let connection else { return }
            self.run(connection.core.streamChunk(bytes, nowMs: self.now), on: connection)
        }, finish: { [weak self, weak connection] last in
            guard let self, let connection else { return }
            self.run(connection.core.endStream(last: last, nowMs: self.now), on: connection)
        }, isOpen: { [connection] in
            // Asked several times per event of every stream: a flag, not a weak load and a lookup.
            // Holding the connection is no cycle (it never holds its streams).
            !connection.closed && connection.core.isStreaming
        }, queuedBytes: { [connection] in
            connection.closed ? 0 : connection.tcp.stream.writeQueueSize + connection.core.pendingBytes
        })
    }

    /// `connection` holds stream bytes due by `dueMs`: the shared timer fires by then.
    func flush(_ connection: Connection, by dueMs: Int64) {
        holding[ObjectIdentifier(connection)] = connection
        guard let flushTimer, flushTimerDueMs.map({ dueMs < $0 }) ?? true else { return }
        flushTimerDueMs = dueMs
        flushTimer.start(afterMs: UInt64(max(0, dueMs - now))) { [weak self] in self?.flushDue() }
    }

    /// Writes the held bytes whose time has come; re-arms for the earliest left. Only those
    /// are touched: a stream whose head waits for its first piece (`streamHeadDelayMs`) stays
    /// put while others' pieces go (taking every held stream out and putting it back made each
    /// firing cost all the streams open: 100 in the dashboard bench).
    func flushDue() {
        flushTimerDueMs = nil
        let nowMs = now
        var due: [Connection] = [], done: [ObjectIdentifier] = []
        var next: Int64?
        for (key, connection) in holding {
            guard let at = connection.core.flushDueAt else { done.append(key); continue }
            if at <= nowMs { due.append(connection) } else { next = min(next ?? at, at) }
        }
        for key in done { holding[key] = nil }
        for connection in due {
            holding[ObjectIdentifier(connection)] = nil
            if connections[ObjectIdentifier(connection)] != nil { run(connection.core.flush(nowMs: nowMs), on: connection) }
        }
        if let next, let flushTimer, flushTimerDueMs.map({ next < $0 }) ?? true {
            flushTimerDueMs = next
            flushTimer.start(afterMs: UInt64(max(0, next - now))) { [weak self] in self?.flushDue() }
        }
    }

    /// `connection` holds no stream bytes now (written with an end or a flush): off the held
    /// list, and the shared timer stopped when none is left (no wake-up for nothing).
    func released(_ connection: Connection) {
        guard holding.removeValue(forKey: ObjectIdentifier(connection)) != nil, holding.isEmpty else { return }
        flushTimer?.stop()
        flushTimerDueMs = nil
    }

    /// Connections whose stream holds bytes, and whether the shared flush timer is armed (tests).
    var held: (count: Int, timerArmed: Bool) { (holding.count, flushTimerDueMs != nil) }
}
