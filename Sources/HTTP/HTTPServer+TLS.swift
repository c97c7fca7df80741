import SwarmTransport
import SwarmUV

/// HTTPS: the TLS layer between a connection's socket and its `HTTPConnectionCore`. Bytes read
/// go through the connection's `TLSSession` (handshake replies straight back out, plaintext to
/// the core); the core's writes are sealed before they go out. The core sees exactly what it
/// sees over plain HTTP, so its bounds and timeouts hold as they are; the handshake itself is
/// bounded by `HTTPLimits.requestTimeoutMs` from the accept.
extension HTTPServer {
    /// What a plaintext HTTP request to this HTTPS port is answered, in plaintext, before the
    /// close: the one thing its client can read.
    static let plaintextToHTTPS = "this port speaks HTTPS (TLS 1.3): use https:// (for curl against a self-signed certificate: --cacert CERT, or -k)"

    /// Ciphertext from the socket: through TLS into the core.
    func receiveTLS(_ bytes: UnsafeRawBufferPointer, _ session: TLSSession, on connection: Connection) {
        var plain: [UInt8] = []
        let reply: [UInt8]
        do {
            reply = try session.receive(bytes, plain: &plain)
        } catch {
            return failTLS(session, error, on: connection)
        }
        if !reply.isEmpty { writeRaw(reply, on: connection) }
        if !plain.isEmpty {
            plain.withUnsafeBytes { run(connection.core.received($0, nowMs: now), on: connection) }
        }
        // close_notify: as an EOF (what is in hand is still answered; the core decides).
        if session.peerClosed, connections[ObjectIdentifier(connection)] != nil {
            run(connection.core.peerClosed(), on: connection)
        }
    }

    /// The bytes to write for the core's plaintext `plain`: as they are over HTTP, sealed over
    /// HTTPS. Nil when they cannot be (the connection is then closed).
    func sealed(_ plain: [UInt8], on connection: Connection) -> [UInt8]? {
        guard let session = connection.session else { return plain }
        // The core writes only after a request, which only comes once the handshake is done.
        guard session.isEstablished, let bytes = try? session.seal(plain) else {
            close(connection)
            return nil
        }
        return bytes
    }

    /// Whether the connection's TLS handshake has outlived its deadline; if so it is closed.
    func handshakeOverdue(_ connection: Connection, nowMs: Int64) -> Bool {
        guard let session = connection.session, !session.isEstablished,
              nowMs - connection.acceptedMs >= limits.requestTimeoutMs else { return false }
        tlsFailures += 1
        logTLSFailure(on: connection, "the handshake was not done \(limits.requestTimeoutMs) ms after the connection was accepted")
        close(connection)
        return true
    }

    /// A handshake that failed, a record that did not authenticate, or a plaintext peer: the
    /// alert OpenSSL queued (or, to a plaintext HTTP client, a 400 it can read), then close.
    private func failTLS(_ session: TLSSession, _ error: TLSError, on connection: Connection) {
        tlsFailures += 1
        logTLSFailure(on: connection, session.peerIsPlaintext ? "plaintext HTTP to this HTTPS port (answered 400)" : error.description)
        if session.peerIsPlaintext {
            let answer = HTTPResponse.text(.badRequest, Self.plaintextToHTTPS)
            writeRaw(answer.serialized(close: true), on: connection)
        } else {
            let alert = session.pendingAlert()
            if !alert.isEmpty { writeRaw(alert, on: connection) }
        }
        close(connection)
    }

    /// One line for a TLS failure, with the peer and the reason, within `tlsFailureLines`
    /// (a flood of bad handshakes must not flood the log).
    private func logTLSFailure(on connection: Connection, _ reason: String) {
        guard let log else { return }
        let nowMs = now
        logSuppressedTLSFailures(nowMs: nowMs)
        guard tlsFailureLines.admit(nowMs: nowMs) else { return }
        let peer = (try? connection.tcp.peerAddress().description) ?? "?"
        log("HTTPS: TLS with \(peer) failed: \(reason)")
    }

    /// The summary line of a budget window that is over, if failures went unlogged in it.
    func logSuppressedTLSFailures(nowMs: Int64) {
        guard let log, let count = tlsFailureLines.closeWindow(nowMs: nowMs) else { return }
        log("HTTPS: \(count) more TLS failures were not logged (at most \(tlsFailureLines.maxLines) lines per \(tlsFailureLines.windowMs) ms)")
    }

    /// Bytes that are not the core's (handshake messages, alerts): written as they are.
    private func writeRaw(_ bytes: [UInt8], on connection: Connection) {
        connection.tcp.stream.write(bytes) { [weak self, weak connection] error in
            guard error != nil, let self, let connection, self.connections[ObjectIdentifier(connection)] != nil else { return }
            self.close(connection)
        }
    }
}
