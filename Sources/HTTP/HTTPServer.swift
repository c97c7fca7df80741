import SwarmTransport
import SwarmUV

/// HTTP/1.1 on a libuv loop: listens with `UVTCP`, runs one `HTTPConnectionCore` per
/// connection and carries out its directives, hands whole requests to a router. With a
/// bearer token every request must carry `Authorization: Bearer TOKEN` (else 401), except
/// GETs of `publicPaths` (pages that hold no data, such as the dashboard's shell). With a
/// `tls` context it serves HTTPS: each connection's bytes go through a `TLSSession` (the
/// framed connections' memory-BIO layer) before and after the same `HTTPConnectionCore`, so
/// every `HTTPLimits` bound holds unchanged (`HTTPServer+TLS.swift`). Create, start and use on
/// its loop's thread; `stop` closes the listener and every connection.
public final class HTTPServer {
    private let loop: EventLoop
    private let router: HTTPRouter
    let limits: HTTPLimits
    /// The tokens a request may carry (empty: no check).
    private let bearerTokens: [[UInt8]]
    private let publicPaths: Set<String>
    /// HTTPS: the context of the certificate served (nil: plain HTTP).
    let tls: TLSContext?
    /// What `HTTPListen` chose to serve over HTTPS, for the start line (nil: plain HTTP).
    public internal(set) var certificate: HTTPSCertificate?
    /// Whether a bearer token that is none of `bearerTokens` is accepted all the same (a
    /// worker's check of the scoped tokens it only knows by digest). Loop thread only.
    public var acceptsOtherBearer: (([UInt8]) -> Bool)?
    private var listener: UVTCP?
    private var sweepTimer: UVTimer?
    /// One timer for every stream's held bytes (`HTTPLimits.streamFlushMs`): armed for the
    /// earliest `flushAt` asked, when it fires flushes each held stream whose time has come.
    var flushTimer: UVTimer?
    /// Loop time (ms) `flushTimer` is armed for (nil: not armed).
    var flushTimerDueMs: Int64?
    /// Connections whose streamed answer holds bytes.
    var holding: [ObjectIdentifier: Connection] = [:]
    var connections: [ObjectIdentifier: Connection] = [:]
    /// Kept-alive connections between requests, each with its place in the order they became
    /// idle (`HTTPLimits.maxIdleConnections`: the lowest goes first).
    private var idle: [ObjectIdentifier: UInt64] = [:]
    private var idleOrder: UInt64 = 0
    /// Connections past the cap, being told 503 before they close.
    private var refusing: [ObjectIdentifier: UVTCP] = [:]
    /// Connections closed by this side, read until their peer ends or until when (`linger`).
    private var lingering: [ObjectIdentifier: (tcp: UVTCP, untilMs: Int64)] = [:]
    /// Requests answered, for tests and logs.
    public private(set) var requestsServed = 0
    /// Connections refused because `limits.maxConnections` were open.
    public private(set) var refusedConnections = 0
    /// Connections closed to make room for a newcomer (`HTTPLimits.evictUnprovenAfterMs`).
    public private(set) var evictedConnections = 0

    /// TLS handshakes that failed or were not done in time (HTTPS), plaintext requests to
    /// this HTTPS port included.
    public internal(set) var tlsFailures = 0
    /// Where the server's own lines go (a TLS failure: peer and reason, `limits`' budget);
    /// nil: not logged. Loop thread only.
    public var log: ((String) -> Void)?
    /// The TLS failures' lines (`HTTPLimits.tlsFailureLogLines` per `tlsFailureLogWindowMs`).
    var tlsFailureLines: LineBudget

    /// `moreBearerTokens`: tokens accepted besides `bearerToken` (only with one). `tls`: serve
    /// HTTPS with this context (`TLSContext(httpsCert:key:)`).
    public init(loop: EventLoop, router: HTTPRouter, limits: HTTPLimits = HTTPLimits(), bearerToken: String? = nil,
                moreBearerTokens: [String] = [], publicPaths: Set<String> = [], tls: TLSContext? = nil) {
        self.loop = loop
        self.tls = tls
        self.publicPaths = publicPaths
        self.router = router
        self.limits = limits
        self.tlsFailureLines = LineBudget(maxLines: limits.tlsFailureLogLines, windowMs: limits.tlsFailureLogWindowMs)
        self.bearerTokens = bearerToken.map { [Array($0.utf8)] + moreBearerTokens.map { Array($0.utf8) } } ?? []
    }

    /// Connections open now.
    public var connectionCount: Int { connections.count }

    /// How often timeouts are checked: a connection is closed at most this late.
    var sweepMs: UInt64 { UInt64(max(10, min(1_000, min(limits.idleTimeoutMs, limits.requestTimeoutMs) / 4))) }

    /// Binds and listens; returns the real address (port 0 picks a free one).
    @discardableResult
    public func start(_ address: SocketAddress) throws(UVError) -> SocketAddress {
        let tcp = try UVTCP(loop: loop)
        do {
            try tcp.bind(address)
            try tcp.listen { [weak self] error in if error == nil { self?.accept() } }
            let bound = try tcp.localAddress()
            listener = tcp
            let timer = try UVTimer(loop: loop)
            timer.start(afterMs: sweepMs, repeatMs: sweepMs) { [weak self] in self?.sweep() }
            sweepTimer = timer
            flushTimer = try UVTimer(loop: loop)
            return bound
        } catch {
            tcp.close()
            throw error
        }
    }

    public func stop() {
        listener?.close(); listener = nil
        sweepTimer?.close(); sweepTimer = nil
        flushTimer?.close(); flushTimer = nil
        holding = [:]
        idle = [:]
        for connection in connections.values {
            connection.closed = true
            connection.tcp.close()
        }
        connections = [:]
        for tcp in refusing.values { tcp.close() }
        refusing = [:]
        for entry in lingering.values { entry.tcp.close() }
        lingering = [:]
    }

    private func accept() {
        guard let listener, let tcp = try? listener.accept() else { return }
        // At the cap, the oldest connection that never passed the token check gives way first
        // (silent or half-open sockets are an attacker's cheapest hold); then the one idle
        // longest (its client reconnects at no loss); else the new one gets 503.
        if connections.count >= limits.maxConnections, !evictUnproven() { closeLongestIdle() }
        guard connections.count < limits.maxConnections else {
            refusedConnections += 1
            // Over HTTPS a plaintext 503 would be garbage to the peer's TLS: it just sees the close.
            guard tls == nil else { return linger(tcp) }
            let answer = HTTPResponse.text(.unavailable, "too many connections (\(limits.maxConnections) open)")
            let key = ObjectIdentifier(tcp)
            refusing[key] = tcp
            tcp.stream.write(answer.serialized(close: true)) { [weak self] _ in
                guard let self, self.refusing.removeValue(forKey: key) != nil else { return }
                self.linger(tcp)
            }
            return
        }
        let connection = Connection(tcp: tcp, core: HTTPConnectionCore(limits: limits, nowMs: now), acceptedMs: now)
        if let tls {
            guard let session = try? TLSSession(context: tls) else { return tcp.close() }
            connection.session = session
        }
        connections[ObjectIdentifier(connection)] = connection
        startReading(connection)
    }

    var now: Int64 { Int64(loop.nowMs) }

    /// Every slot is taken: closes the oldest connection that has shown no token and is at
    /// least `limits.evictUnprovenAfterMs` old; whether one was. O(maxConnections), only when
    /// full.
    private func evictUnproven() -> Bool {
        let nowMs = now
        var oldest: Connection?
        for connection in connections.values
        where !connection.proven && nowMs - connection.acceptedMs >= limits.evictUnprovenAfterMs {
            if oldest.map({ connection.acceptedMs < $0.acceptedMs }) ?? true { oldest = connection }
        }
        guard let oldest else { return false }
        evictedConnections += 1
        close(oldest)
        return true
    }

    private func startReading(_ connection: Connection) {
        do {
            try connection.tcp.stream.startReading { [weak self, weak connection] event in
                guard let self, let connection else { return }
                switch event {
                case .data(let bytes):
                    self.idle[ObjectIdentifier(connection)] = nil
                    if let session = connection.session {
                        self.receiveTLS(bytes, session, on: connection)
                    } else {
                        self.run(connection.core.received(bytes, nowMs: self.now), on: connection)
                    }
                case .eof, .error:
                    connection.peerEnded = true
                    self.run(connection.core.peerClosed(), on: connection)
                }
            }
        } catch {
            close(connection)
        }
    }

    func run(_ directives: [HTTPConnectionCore.Directive], on connection: Connection) {
        for directive in directives {
            guard connections[ObjectIdentifier(connection)] != nil else { return }
            switch directive {
            case .dispatch(let request): dispatch(request, on: connection)
            case .write(let plain):
                guard let bytes = sealed(plain, on: connection) else { return }
                if connection.core.flushDueAt == nil { released(connection) }
                connection.tcp.stream.write(bytes) { [weak self, weak connection] error in
                    guard let self, let connection else { return }
                    if error != nil { self.close(connection); return }
                    self.run(connection.core.written(nowMs: self.now), on: connection)
                    if connection.core.isIdleKeptAlive { self.becameIdle(connection) }
                }
            case .stopReading: connection.tcp.stream.stopReading()
            case .startReading: startReading(connection)
            case .close: close(connection)
            case .flushAt(let dueMs): flush(connection, by: dueMs)
            }
        }
    }

    private func dispatch(_ request: HTTPRequest, on connection: Connection) {
        requestsServed += 1
        let responder = HTTPResponder(send: { [weak self, weak connection] response in
            guard let self, let connection else { return }
            self.run(connection.core.respond(response, nowMs: self.now), on: connection)
        }, startStream: { [weak self, weak connection] head, first in
            guard let self, let connection else { return nil }
            self.run(connection.core.beginStream(head, first: first, nowMs: self.now), on: connection)
            return self.stream(on: connection)
        }, isOpen: { [connection] in !connection.closed })
        guard authorized(request) else {
            responder.respond(.text(.unauthorized, "this server wants Authorization: Bearer TOKEN (the cluster token)",
                                    headers: [("WWW-Authenticate", "Bearer")]))
            return
        }
        // A public page proves nothing: its connection may still be evicted when full.
        if bearerTokens.isEmpty || !isPublic(request) { connection.proven = true }
        router.handle(request, responder)
    }

    /// Whether `request` carries one of the bearer tokens (always, when there is none).
    private func authorized(_ request: HTTPRequest) -> Bool {
        guard !bearerTokens.isEmpty else { return true }
        if isPublic(request) { return true }
        if Self.bearerMatches(request.header("Authorization"), tokens: bearerTokens) { return true }
        guard let acceptsOtherBearer, let given = Self.bearer(request.header("Authorization")) else { return false }
        return acceptsOtherBearer(given)
    }

    /// A GET or HEAD of one of `publicPaths` (served without a token).
    private func isPublic(_ request: HTTPRequest) -> Bool {
        (request.method == "GET" || request.method == "HEAD") && publicPaths.contains(String(request.path))
    }

    /// The token of an `Authorization: Bearer TOKEN` value (the scheme in any case, one or
    /// more spaces, then the token), or nil.
    static func bearer(_ value: String?) -> [UInt8]? {
        guard let value else { return nil }
        let bytes = Array(value.utf8)
        guard bytes.count > 7, String(decoding: bytes[..<6], as: UTF8.self).lowercased() == "bearer", bytes[6] == 0x20 else {
            return nil
        }
        return Array(bytes[6...].drop { $0 == 0x20 })
    }

    /// Whether an `Authorization` value is `Bearer TOKEN` for one of `tokens`: the scheme in
    /// any case (RFC 9110 11.1: "bearer" is the same scheme), one or more spaces, then exactly
    /// the token. Each is compared, in time independent of where the first difference is.
    static func bearerMatches(_ value: String?, tokens: [[UInt8]]) -> Bool {
        guard let given = bearer(value) else { return false }
        // Every token is compared over its whole length whatever the given one's length, so the
        // time depends on the tokens held, never on how close a guess (or its length) is.
        var matched = false
        for token in tokens {
            var difference: UInt8 = token.count == given.count ? 0 : 1
            for index in token.indices { difference |= token[index] ^ (index < given.count ? given[index] : 0) }
            if difference == 0 { matched = true }
        }
        return matched
    }

    private func sweep() {
        let nowMs = now
        for connection in Array(connections.values) {
            if handshakeOverdue(connection, nowMs: nowMs) { continue }
            run(connection.core.tick(nowMs: nowMs), on: connection)
        }
        for (key, entry) in lingering where entry.untilMs <= nowMs { endLinger(key) }
        logSuppressedTLSFailures(nowMs: nowMs)
    }

    /// `connection` waits for a next request: past `maxIdleConnections` idle, the one idle
    /// longest is closed.
    private func becameIdle(_ connection: Connection) {
        let key = ObjectIdentifier(connection)
        guard connections[key] != nil, idle[key] == nil else { return }
        idleOrder += 1
        idle[key] = idleOrder
        if idle.count > limits.maxIdleConnections { closeLongestIdle() }
    }

    /// Closes the kept-alive connection idle longest, if any.
    private func closeLongestIdle() {
        guard let (key, _) = idle.min(by: { $0.value < $1.value }) else { return }
        idle[key] = nil
        if let connection = connections[key] { close(connection) }
    }

    /// Kept-alive connections idle now (tests).
    var idleCount: Int { idle.count }

    func close(_ connection: Connection) {
        connection.closed = true
        connections[ObjectIdentifier(connection)] = nil
        idle[ObjectIdentifier(connection)] = nil
        released(connection)
        if connection.peerEnded { connection.tcp.close() } else { linger(connection.tcp) }
    }

    /// Closes `tcp` gently: FIN after what is queued, then what the peer still sends is read
    /// and dropped until it ends or `limits.lingerMs` pass (`HTTPLimits.lingerMs` says why).
    /// Past `maxConnections` lingering, closes at once.
    func linger(_ tcp: UVTCP) {
        let key = ObjectIdentifier(tcp)
        guard lingering.count < limits.maxConnections else { return tcp.close() }
        lingering[key] = (tcp, now + limits.lingerMs)
        tcp.stream.shutdown()
        tcp.stream.stopReading()
        do {
            try tcp.stream.startReading { [weak self] event in
                if case .data = event { return }
                self?.endLinger(key)
            }
        } catch {
            endLinger(key)
        }
    }

    private func endLinger(_ key: ObjectIdentifier) {
        lingering.removeValue(forKey: key)?.tcp.close()
    }

    /// Connections lingering now (tests).
    var lingeringCount: Int { lingering.count }

    final class Connection {
        let tcp: UVTCP
        let core: HTTPConnectionCore
        /// HTTPS: the connection's TLS (nil: plain HTTP).
        var session: TLSSession?
        /// Loop time (ms) of the accept: the TLS handshake's deadline runs from it.
        let acceptedMs: Int64
        /// The peer ended its side (EOF or a read error): nothing to linger for.
        var peerEnded = false
        /// A request of it passed the token check (not only a public page): never evicted.
        var proven = false
        /// Closed by this side (`close`, `stop`): its responder and streams take nothing more.
        var closed = false
        init(tcp: UVTCP, core: HTTPConnectionCore, acceptedMs: Int64) {
            self.tcp = tcp
            self.core = core
            self.acceptedMs = acceptedMs
        }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension HTTPServer: Sendable {}
