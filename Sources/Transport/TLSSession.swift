#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import SwarmProtocol

/// One connection's TLS 1.3 over memory BIOs: no socket of its own. Bytes read from the
/// socket go in through `receive` (which gives back the plaintext and any bytes to send, as
/// the handshake's replies); plaintext to send goes through `seal`. Not thread-safe: one
/// loop thread owns it.
///
/// Bounds: the read BIO is drained after every `receive`, so it holds at most one partial
/// record (under 17 KiB); the write BIO is drained after every call; plaintext is handed out
/// as it is decrypted (its reader bounds it, as it bounds plaintext frames).
public final class TLSSession {
    public let context: TLSContext
    private let ssl: OpaquePointer
    /// Handshake done: application data flows.
    public private(set) var isEstablished = false
    /// The peer sent close_notify.
    public private(set) var peerClosed = false
    private var sawFirstByte = false
    /// The handshake failed (refused credentials, a plaintext peer): retrying with the same
    /// settings cannot help.
    public private(set) var handshakeFailed = false
    /// The peer's first byte was not a TLS record's: it speaks plaintext.
    public private(set) var peerIsPlaintext = false
    /// Application bytes decrypted so far (an alert before any is a refused handshake).
    private var plainBytes = 0
    /// Monotonic ns from `init` to the end of the handshake (for `swarm bench`).
    public private(set) var handshakeNs: UInt64?
    private let startedNs = monotonicNanos()
    /// One record's plaintext at a time (TLS records carry at most 16 KiB).
    private var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    /// KeyUpdate messages the peer sent, and records read (OpenSSL's message callback).
    private let received = UnsafeMutablePointer<UInt>.allocate(capacity: 3)
    /// TLS records read from the peer so far (what a reader budgets per loop turn).
    public var recordsReceived: Int { Int(received[1]) }
    /// KeyUpdates a peer may send at most: this many, plus one per `keyUpdateBytes` of
    /// application data. Each costs the receiver ~20 us (new keys, and its own KeyUpdate in
    /// reply) for 27 bytes: a peer interleaving them with single bytes of data held a
    /// scheduler's loop 13 s (4 connections). Peers that rekey by volume stay far under it.
    public static let keyUpdateAllowance = 16
    public static let keyUpdateBytes = 1 << 20
    /// Bytes fed to OpenSSL at a time, the key updates counted after each piece: a flood
    /// ends within this many bytes past the allowance.
    static let feedBytes = 16 * 1024

    /// What a TLS record's first byte is: a handshake record (0x16) or an alert (0x15). A
    /// swarm frame starts with a 4-byte length under 16 MiB, so its first byte is 0x00 or
    /// 0x01: one byte tells a plaintext peer from a TLS one.
    public static func looksLikeTLS(_ first: UInt8) -> Bool { first == 0x16 || first == 0x15 }

    public init(context: TLSContext) throws(TLSError) {
        guard let ssl = swarm_tls_new(context.ctx, context.isServer ? 1 : 0, tlsSinkMethod) else {
            throw .setup("cannot start TLS: \(openSSLErrors())")
        }
        self.context = context
        self.ssl = ssl
        received.initialize(repeating: 0, count: 3)
        swarm_tls_count_received(ssl, received)
        if !context.isServer && context.mode == "certificate" {
            _ = SSL_set1_host(ssl, TLSContext.schedulerName)
        }
    }

    deinit {
        SSL_free(ssl)
        received.deallocate()
    }

    /// The client's first flight (ClientHello); empty on the server side.
    public func start() throws(TLSError) -> [UInt8] {
        guard !context.isServer else { return [] }
        try advanceHandshake()
        return drainOutput()
    }

    /// Takes bytes read from the socket. Appends what they decrypt to `plain`; returns the
    /// bytes to send back (handshake messages, alerts). Throws when the peer is not speaking
    /// TLS, the handshake fails, or a record does not authenticate (tampered with): the
    /// connection must end; the alert to send is in `pendingAlert`.
    public func receive(_ bytes: UnsafeRawBufferPointer, plain: inout [UInt8]) throws(TLSError) -> [UInt8] {
        if !sawFirstByte, let first = bytes.first {
            sawFirstByte = true
            guard Self.looksLikeTLS(first) else {
                peerIsPlaintext = true
                handshakeFailed = true
                throw .failed(context.isServer
                    ? "the peer is not speaking TLS (plaintext; this side needs TLS: \(context.mode) mode)"
                    : "the scheduler answered in plaintext, not TLS (it runs without a token and without --tls-* certificates?)")
            }
        }
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, Self.feedBytes)
            let wrote = BIO_write(SSL_get_rbio(ssl), bytes.baseAddress! + offset, Int32(chunk))
            guard wrote == Int32(chunk) else { throw .failed("TLS: cannot buffer \(chunk) bytes") }
            offset += chunk
            if !isEstablished { try advanceHandshake() }
            if isEstablished { try readPlain(into: &plain) }
            try checkKeyUpdates()
        }
        return drainOutput()
    }

    /// Ends a connection whose peer sends KeyUpdates past `keyUpdateAllowance`.
    private func checkKeyUpdates() throws(TLSError) {
        let sent = Int(received[0])
        guard sent > Self.keyUpdateAllowance + plainBytes / Self.keyUpdateBytes else { return }
        throw .failed("the peer sent \(sent) TLS key updates with \(plainBytes) bytes of data (at most \(Self.keyUpdateAllowance) and one more per MiB): a flood, not key rotation")
    }

    /// Sends a KeyUpdate asking the peer for one too; the bytes to write (for tests).
    func requestKeyUpdate() -> [UInt8] {
        guard swarm_tls_request_key_update(ssl) == 1 else { return [] }
        return drainOutput()
    }

    /// Encrypts plaintext into records to write (only once established).
    public func seal(_ plain: [UInt8]) throws(TLSError) -> [UInt8] {
        precondition(isEstablished, "TLS: sealing before the handshake is done")
        var offset = 0
        while offset < plain.count {
            let chunk = min(plain.count - offset, 1 << 20)
            let wrote = plain.withUnsafeBufferPointer { SSL_write(ssl, $0.baseAddress! + offset, Int32(chunk)) }
            guard wrote == Int32(chunk) else { throw .failed("TLS write failed: \(openSSLErrors())") }
            offset += chunk
        }
        return drainOutput()
    }

    /// The alert (or anything else) OpenSSL queued to send after a failure.
    public func pendingAlert() -> [UInt8] { drainOutput() }

    private func advanceHandshake() throws(TLSError) {
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            isEstablished = true
            handshakeNs = monotonicNanos() &- startedNs
            return
        }
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
        handshakeFailed = true
        throw .failed("TLS handshake failed (\(context.mode) mode): \(failureReason(code)); \(context.hint)")
    }

    private func readPlain(into plain: inout [UInt8]) throws(TLSError) {
        while true {
            let n = readBuffer.withUnsafeMutableBufferPointer { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 {
                plain.append(contentsOf: readBuffer[0..<Int(n)])
                plainBytes += Int(n)
                continue
            }
            let code = SSL_get_error(ssl, n)
            switch code {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return
            case SSL_ERROR_ZERO_RETURN: peerClosed = true; return
            default:
                let reason = failureReason(code)
                // TLS 1.3: the client is done before the server has checked its certificate,
                // so a refusal arrives as the first record. Only an alert about credentials
                // is one: a bad_record_mac there means our first record was damaged in flight
                // (a worker taking it for a refusal stopped for good instead of reconnecting).
                if plainBytes == 0, let alert = receivedAlert, Self.refusalAlerts.contains(alert) {
                    handshakeFailed = true
                    throw .failed("TLS handshake failed (\(context.mode) mode): the peer refused it: \(reason); \(context.hint)")
                }
                throw .failed("TLS record rejected (tampered with or corrupted in flight): \(reason)")
            }
        }
    }

    /// The description of the last alert the peer sent, if any.
    private var receivedAlert: UInt8? { received[2] == 0 ? nil : UInt8(truncatingIfNeeded: received[2] - 1) }

    /// Alerts that refuse the credentials or the settings (RFC 8446 6.2): handshake_failure,
    /// bad/unsupported/revoked/expired/unknown certificate, unknown_ca, access_denied,
    /// decrypt_error, protocol_version, insufficient_security, unknown_psk_identity,
    /// certificate_required.
    static let refusalAlerts: Set<UInt8> = [40, 42, 43, 44, 45, 46, 48, 49, 51, 70, 71, 115, 116]

    private func failureReason(_ code: Int32) -> String {
        let queued = openSSLErrors()
        if queued != "unknown TLS error" { return queued }
        if code == SSL_ERROR_SYSCALL { return "unexpected end of the TLS stream" }
        return "OpenSSL error \(code)"
    }

    /// The bytes OpenSSL wrote, moved out of its sink in one copy (no zeroing first).
    private func drainOutput() -> [UInt8] {
        let count = swarm_tls_pending_out(ssl)
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = swarm_tls_take_out(ssl, buffer.baseAddress, count)
        }
    }
}

/// Confined to its loop's thread.
@available(*, unavailable)
extension TLSSession: Sendable {}

/// The BIO method of every session's output (`swarm_tls_sink`), made once for the process (a
/// type index each, and BIOs must not outlive their method); nil when OpenSSL could not make it
/// (then no session starts).
nonisolated(unsafe) private let tlsSinkMethod: OpaquePointer? = swarm_tls_sink_method_new()

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
