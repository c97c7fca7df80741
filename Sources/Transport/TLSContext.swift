import COpenSSL
import Glibc
import SwarmProtocol

/// Certificate mode's three PEM files (`--tls-cert`, `--tls-key`, `--tls-ca`): this side's
/// certificate chain and key, and the CA the other side's certificate must chain to.
public struct TLSCertificateFiles: Sendable, Equatable {
    public var cert: String
    public var key: String
    public var ca: String

    public init(cert: String, key: String, ca: String) {
        self.cert = cert
        self.key = key
        self.ca = ca
    }

    /// The three flags given together, or none: anything else is a one-line error.
    public static func from(cert: String?, key: String?, ca: String?) throws(TLSError) -> TLSCertificateFiles? {
        switch (cert, key, ca) {
        case (nil, nil, nil): return nil
        case let (cert?, key?, ca?): return TLSCertificateFiles(cert: cert, key: key, ca: ca)
        default: throw .setup("--tls-cert, --tls-key and --tls-ca go together (give all three, or none)")
        }
    }
}

/// Why TLS could not be set up or went wrong on a connection.
public enum TLSError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Bad configuration (unreadable file, key not matching its certificate, ...).
    case setup(String)
    /// The handshake or a record failed; the connection ends.
    case failed(String)

    public var description: String {
        switch self {
        case .setup(let reason), .failed(let reason): reason
        }
    }
}

/// One process's TLS 1.3 settings for one side (scheduler = server; worker and client =
/// client), shared by its connections: an OpenSSL `SSL_CTX`.
///
/// Token mode: an external PSK derived from the token (`ClusterToken.tlsPSK`), offered by the
/// client under an identity, looked up by the server; no certificate at all, `psk_dhe_ke`
/// (OpenSSL's default: an ephemeral key exchange under the PSK, so recorded traffic stays
/// secret even if the token leaks later). Certificate mode: mutual TLS, each side's
/// certificate verified against the other's CA; the client also requires the scheduler's
/// certificate to name `TLSContext.schedulerName`.
public final class TLSContext: @unchecked Sendable {
    /// The DNS name a scheduler's certificate must carry in certificate mode (as `swarm tls
    /// init` makes it): so a worker's or a client's certificate, signed by the same CA, cannot
    /// pose as the scheduler.
    public static let schedulerName = "scheduler.swarm"

    let ctx: OpaquePointer
    public let isServer: Bool
    /// For messages: "token (PSK)" or "certificate".
    public let mode: String
    let clientIdentity: UnsafeMutableBufferPointer<UInt8>?
    let clientKey: [UInt8]
    let lookup: (@Sendable (String) -> [UInt8]?)?

    /// A scheduler's context: PSKs looked up by identity (token mode), or certificates.
    public convenience init(serverToken token: ClusterToken?, files: TLSCertificateFiles?) throws(TLSError) {
        if let files {
            try self.init(server: true, files: files)
        } else if let token {
            try self.init(lookup: { token.serverPSK(identity: $0) })
        } else {
            throw .setup("TLS needs a cluster token or certificates (--tls-cert, --tls-key, --tls-ca)")
        }
    }

    /// A scheduler's context accepting the PSK of any of `tokens` (token mode; the first
    /// one, the cluster token, also answers `task:ID` identities), or certificates.
    public convenience init(serverTokens tokens: [ClusterToken], files: TLSCertificateFiles?) throws(TLSError) {
        if files == nil, tokens.count > 1 {
            try self.init(lookup: { identity in tokens.lazy.compactMap { $0.serverPSK(identity: identity) }.first })
        } else {
            try self.init(serverToken: tokens.first, files: files)
        }
    }

    /// A worker's or client's context.
    public convenience init(clientToken token: ClusterToken?, role: PeerRole, name: String,
                            files: TLSCertificateFiles?) throws(TLSError) {
        if let files {
            try self.init(server: false, files: files)
        } else if let token {
            try self.init(identity: token.pskIdentity(role: role, name: name), key: token.tlsPSK)
        } else {
            throw .setup("TLS needs a cluster token or certificates (--tls-cert, --tls-key, --tls-ca)")
        }
    }

    /// Whether a side with this token and these files speaks TLS: every connection but
    /// loopback without a token (and without certificates) does.
    public static func enabled(token: ClusterToken?, files: TLSCertificateFiles?) -> Bool {
        token != nil || files != nil
    }

    /// Token mode's cipher suites: those hashing with SHA-256, the PSK's hash. A server that
    /// also had TLS_AES_256_GCM_SHA384 took it when a client listed it first (OpenSSL's
    /// s_client does), could then not use the PSK, and failed the handshake ("no suitable
    /// signature algorithm"): such a client is now served with a SHA-256 suite.
    static let pskSuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"

    /// Sets the TLS 1.3 suites offered or accepted (`pskSuites`; tests give others).
    func setSuites(_ suites: String) -> Bool {
        SSL_CTX_set_ciphersuites(ctx, suites) == 1
    }

    /// Token mode, server side.
    public init(lookup: @escaping @Sendable (String) -> [UInt8]?) throws(TLSError) {
        guard let ctx = swarm_tls_ctx_new(1) else { throw .setup("cannot set up TLS: \(openSSLErrors())") }
        self.ctx = ctx
        isServer = true
        mode = "token (PSK)"
        clientIdentity = nil
        clientKey = []
        self.lookup = lookup
        attach()
        _ = setSuites(Self.pskSuites)
        SSL_CTX_set_psk_find_session_callback(ctx, findSession)
    }

    /// Token mode, client side.
    public init(identity: String, key: [UInt8]) throws(TLSError) {
        guard let ctx = swarm_tls_ctx_new(0) else { throw .setup("cannot set up TLS: \(openSSLErrors())") }
        self.ctx = ctx
        isServer = false
        mode = "token (PSK)"
        let bytes = Array(identity.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        _ = buffer.initialize(from: bytes)
        clientIdentity = UnsafeMutableBufferPointer(rebasing: buffer[0..<bytes.count])
        clientKey = key
        lookup = nil
        attach()
        _ = setSuites(Self.pskSuites)
        SSL_CTX_set_psk_use_session_callback(ctx, useSession)
    }

    /// Certificate mode (mutual TLS), either side.
    public init(server: Bool, files: TLSCertificateFiles) throws(TLSError) {
        guard let ctx = swarm_tls_ctx_new(server ? 1 : 0) else { throw .setup("cannot set up TLS: \(openSSLErrors())") }
        self.ctx = ctx
        isServer = server
        mode = "certificate"
        clientIdentity = nil
        clientKey = []
        lookup = nil
        attach()
        try Self.use(ctx, cert: files.cert, key: files.key)
        try Self.checkPEMFile(files.ca, "TLS CA")
        guard SSL_CTX_load_verify_locations(ctx, files.ca, nil) == 1 else {
            throw .setup("cannot use TLS CA \(files.ca): \(openSSLErrors())")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
    }

    /// An HTTPS listener's context (server side): serves `cert` (a PEM chain) with `key`, asks
    /// the peer for no certificate (browsers and scrapers authenticate inside, with a bearer
    /// token). TLS 1.3 only, as every other connection.
    public init(httpsCert cert: String, key: String) throws(TLSError) {
        guard let ctx = swarm_tls_ctx_new(1) else { throw .setup("cannot set up TLS: \(openSSLErrors())") }
        self.ctx = ctx
        isServer = true
        mode = "HTTPS"
        clientIdentity = nil
        clientKey = []
        lookup = nil
        attach()
        try Self.use(ctx, cert: cert, key: key)
    }

    /// Bytes a PEM file given to TLS (certificate chain, key, CA) may have: a chain of a few
    /// certificates is a few KiB. OpenSSL reads whatever the path gives: `/dev/zero` or a FIFO
    /// held the start for ever, a huge file its memory and time.
    public static let maxPEMBytes = 1 << 20

    /// Refuses a path that is there but is not a regular file of at most `maxPEMBytes` (after
    /// links: a link to a certificate is fine). A path that is not there is left to OpenSSL,
    /// whose error names it.
    public static func checkPEMFile(_ path: String, _ what: String) throws(TLSError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw .setup("cannot use \(what) \(path): not a regular file (a PEM file is wanted)")
        }
        guard info.st_size <= maxPEMBytes else {
            throw .setup("cannot use \(what) \(path): \(info.st_size) bytes, more than a PEM file here may have (\(maxPEMBytes))")
        }
    }

    /// Loads this side's certificate chain and its key, checking they belong together.
    private static func use(_ ctx: OpaquePointer, cert: String, key: String) throws(TLSError) {
        try checkPEMFile(cert, "TLS certificate")
        try checkPEMFile(key, "TLS key")
        guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else {
            throw .setup("cannot use TLS certificate \(cert): \(openSSLErrors())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
            throw .setup("cannot use TLS key \(key): \(openSSLErrors())")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .setup("TLS key \(key) does not match certificate \(cert)")
        }
    }

    /// Lets the C callbacks find this object; the context never outlives it (sessions hold it).
    private func attach() {
        _ = swarm_tls_ctx_set_data(ctx, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_CTX_free(ctx)
        clientIdentity.map { UnsafeMutableBufferPointer(start: $0.baseAddress, count: max($0.count, 1)).deallocate() }
    }

    /// What to check when a handshake fails, for the one-line error.
    var hint: String {
        mode == "HTTPS" ? "the client must speak HTTPS with TLS 1.3"
            : mode == "certificate"
            ? "are both certificates signed by the other side's --tls-ca, and does the scheduler's name \(Self.schedulerName)?"
            : "wrong cluster token? (both sides must hold the same one)"
    }

    static func of(_ ssl: OpaquePointer?) -> TLSContext? {
        guard let ssl, let ctx = SSL_get_SSL_CTX(ssl), let data = swarm_tls_ctx_data(ctx) else { return nil }
        return Unmanaged<TLSContext>.fromOpaque(data).takeUnretainedValue()
    }
}

/// Client: offers the PSK (SHA-256, the hash of TLS_AES_128_GCM_SHA256).
private func useSession(_ ssl: OpaquePointer?, _ md: OpaquePointer?, _ id: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                        _ idLength: UnsafeMutablePointer<Int>?, _ session: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    session?.pointee = nil
    guard let context = TLSContext.of(ssl), let identity = context.clientIdentity else { return 0 }
    if let md, md != EVP_sha256() { return 1 }  // a HelloRetryRequest chose another hash: no PSK
    guard let made = context.clientKey.withUnsafeBufferPointer({ swarm_tls_psk_session(ssl, $0.baseAddress, $0.count) }) else {
        return 0
    }
    id?.pointee = UnsafePointer(identity.baseAddress)
    idLength?.pointee = identity.count
    session?.pointee = made
    return 1
}

/// Server: the PSK for the identity the client offered; an unknown one fails the handshake.
private func findSession(_ ssl: OpaquePointer?, _ identity: UnsafePointer<UInt8>?, _ length: Int,
                         _ session: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    session?.pointee = nil
    guard let context = TLSContext.of(ssl), let lookup = context.lookup, let identity, length <= 512 else { return 0 }
    let name = String(decoding: UnsafeBufferPointer(start: identity, count: length), as: UTF8.self)
    guard let key = lookup(name) else { return 1 }
    session?.pointee = key.withUnsafeBufferPointer { swarm_tls_psk_session(ssl, $0.baseAddress, $0.count) }
    return session?.pointee == nil ? 0 : 1
}

/// OpenSSL's queued errors as one line (the queue is emptied).
func openSSLErrors() -> String {
    var parts: [String] = []
    while parts.count < 4 {
        let code = ERR_get_error()
        if code == 0 { break }
        if let reason = ERR_reason_error_string(code) {
            parts.append(String(cString: reason))
        } else {
            parts.append("error \(code)")
        }
    }
    while ERR_get_error() != 0 {}
    return parts.isEmpty ? "unknown TLS error" : parts.joined(separator: "; ")
}
