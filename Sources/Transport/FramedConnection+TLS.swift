import SwarmProtocol

/// The TLS layer of a connection: ciphertext from the socket through `TLSSession` into the
/// frame decoder, frames sealed on their way out, and the one-line reasons a TLS failure
/// ends the connection with.
extension FramedConnection {
    /// The client's first flight, once, when reading starts; false when TLS failed.
    func startTLSIfNeeded() -> Bool {
        guard let tls, !tlsStarted else { return true }
        tlsStarted = true
        do {
            let hello = try tls.start()
            if !hello.isEmpty { writeRaw(hello) }
            return true
        } catch {
            failTLS(error)
            return false
        }
    }

    /// Bytes from the socket through TLS: the handshake's replies go out, the plaintext to
    /// the frame decoder; frames sent meanwhile go out once the handshake is done.
    func receiveTLS(_ bytes: UnsafeRawBufferPointer) {
        guard let tls else { return }
        let wasEstablished = tls.isEstablished
        var plain: [UInt8] = []
        let reply: [UInt8]
        do {
            reply = try tls.receive(bytes, plain: &plain)
        } catch {
            return failTLS(error, received: Array(bytes.prefix(64 * 1024)))
        }
        if !reply.isEmpty { writeRaw(reply) }
        if !wasEstablished && tls.isEstablished { flush() }
        if !plain.isEmpty { decoder.feed(plain) }
        handleBuffered()
        if tls.peerClosed { end(.eof) }
    }

    /// Ends the connection on a TLS failure, after the alert OpenSSL queued (or, to a
    /// plaintext peer of a TLS server, an `error` frame it can read).
    func failTLS(_ error: TLSError, received: [UInt8] = []) {
        guard !ended else { return }
        var reason = error.description
        guard !closing else { return end(.protocolError(reason)) }
        var goodbye = tls?.pendingAlert() ?? []
        if let tls, tls.peerIsPlaintext {
            if tls.context.isServer {
                let text = "this scheduler requires TLS (\(tls.context.mode) mode): connect with the same cluster token (--token-file or SWARM_TOKEN) or with --tls-cert, --tls-key and --tls-ca"
                // authFailed, as for a missing token without TLS: a worker stops instead of
                // reconnecting for ever (`ClientHandshake.failureIsPermanent`).
                goodbye = MessageCodec.frame(.error(.init(code: .authFailed, reason: text, requestId: nil)))
            } else if let said = Self.plaintextError(received) {
                reason += "; it said: \(PeerText.safe(said, limit: 300))"
            }
        }
        closing = true
        pauseReading()
        if !goodbye.isEmpty { writeRaw(goodbye) }
        tcp.stream.shutdown { _ in self.end(.protocolError(reason)) }
    }

    /// The reason in a plaintext `error` frame, if `bytes` start with a whole one.
    private static func plaintextError(_ bytes: [UInt8]) -> String? {
        var decoder = FrameDecoder(maxPayload: 64 * 1024)
        decoder.feed(bytes)
        guard let payload = try? decoder.next(), case .error(let e)? = try? MessageCodec.decode(payload) else { return nil }
        return e.reason
    }

    /// Plaintext to the socket, sealed first when TLS is on.
    func writeOut(_ plain: [UInt8]) {
        guard let tls else { return writeRaw(plain) }
        do {
            writeRaw(try tls.seal(plain))
        } catch {
            failTLS(error)
        }
    }

    /// Bytes as they go on the wire: to the kernel at once when it takes them all (no copy,
    /// no request, no completion: what a write's end would do then is asked for on the next
    /// loop iteration, and only when something waits on it); else queued, `written` on its end.
    func writeRaw(_ bytes: [UInt8]) {
        bytesSent += bytes.count
        GapTrace.mark("wr", "\(bytes.count)")
        switch tcp.stream.writeNow(bytes, completion: writeEnded) {
        case .queued: return
        case .written: if waitsOnWrites { writtenSoon(nil) }
        case .failed(let error): writtenSoon(error)
        }
    }
}
