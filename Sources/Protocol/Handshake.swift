import Crypto
import Foundation

/// The cluster's shared secret. It never crosses the wire: each side proves it holds it with
/// HMAC-SHA256 over a fresh random challenge from the other side.
public struct ClusterToken: Sendable, Equatable {
    private let secret: [UInt8]

    public init(_ secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// HMAC-SHA256 of `text` under the secret, in hex.
    private func mac(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: secret))
            .withUnsafeBytes { Hex.lower($0) }
    }

    /// The token as the operator wrote it: what HTTP clients send as `Authorization: Bearer`.
    public var text: String { String(decoding: secret, as: UTF8.self) }

    /// Proof over a challenge; `purpose` keeps a peer's proof from being replayed as a server's.
    public func proof(purpose: String, nonce: String, role: PeerRole, name: String) -> String {
        mac("swarm-v\(protocolVersion)|\(purpose)|\(nonce)|\(role.rawValue)|\(name)")
    }

    /// Constant-time comparison of a received proof.
    public func verify(_ received: String, purpose: String, nonce: String, role: PeerRole, name: String) -> Bool {
        let expected = Array(proof(purpose: purpose, nonce: nonce, role: role, name: name).utf8)
        let got = Array(received.utf8)
        guard expected.count == got.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<expected.count { diff |= expected[i] ^ got[i] }
        return diff == 0
    }

    /// Client names that carry a task's credential: `task:ID`.
    public static let taskNamePrefix = "task:"

    /// The credential a worker gives task `id` (as `SWARM_TASK_TOKEN`), so its agent can
    /// submit child tasks without holding the cluster token. It authenticates only a client
    /// named `task:ID`, and the scheduler limits what such a client may do.
    public func taskCredential(for id: String) -> String {
        mac("swarm-task|\(id)")
    }

    /// The key a peer of this name and role proves: a task's credential for `task:ID`
    /// clients, else the cluster token itself.
    public func key(role: PeerRole, name: String) -> ClusterToken {
        guard role == .client, name.hasPrefix(Self.taskNamePrefix) else { return self }
        return ClusterToken(taskCredential(for: String(name.dropFirst(Self.taskNamePrefix.count))))
    }

    /// 32 random bytes, hex.
    public static func makeNonce() -> String {
        var rng = SystemRandomNumberGenerator()
        return Hex.lower((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }
}

/// What a handshake step asks its shell to do.
public enum HandshakeDirective: Equatable, Sendable {
    case send(Message)
    /// Send nothing more; close the connection (after flushing what was sent).
    case close
    case established(Message.Hello)
    case failed(String)
}

/// The server's side: `hello`, then (with a token) `challenge` -> `auth`, then `welcome`.
/// A pure state machine; the scheduler's connection feeds it messages until it is established.
public struct ServerHandshake: Sendable {
    enum State: Sendable {
        case awaitingHello
        case awaitingAuth(hello: Message.Hello, nonce: String)
        case established
        case failed
    }

    private var state: State = .awaitingHello
    private let ring: TokenRing
    private let serverName: String
    private let makeNonce: @Sendable () -> String
    /// Which token the peer proved, once established (`.cluster` when the server has none).
    public private(set) var scope: TokenScope?

    public init(token: ClusterToken?, serverName: String,
                makeNonce: @escaping @Sendable () -> String = ClusterToken.makeNonce) {
        self.init(ring: TokenRing(cluster: token), serverName: serverName, makeNonce: makeNonce)
    }

    /// A server accepting any token of `ring`; the one proved becomes `scope`.
    public init(ring: TokenRing, serverName: String,
                makeNonce: @escaping @Sendable () -> String = ClusterToken.makeNonce) {
        self.ring = ring
        self.serverName = serverName
        self.makeNonce = makeNonce
    }

    public var isEstablished: Bool { if case .established = state { true } else { false } }

    /// The next step for `message`. `admit` is asked about an authenticated peer before it is
    /// welcomed: a reason refuses it (e.g. a task credential whose task has ended).
    public mutating func receive(_ message: Message, admit: (Message.Hello) -> String? = { _ in nil }) -> [HandshakeDirective] {
        switch (state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.version == protocolVersion else {
                return fail(.versionMismatch, "protocol version \(hello.version) is not supported (this scheduler speaks \(protocolVersion))")
            }
            guard !hello.name.isEmpty, hello.name.utf8.count <= 255 else {
                return fail(.badMessage, "hello needs a name of 1 to 255 bytes")
            }
            if ring.requiresAuth {
                let nonce = makeNonce()
                state = .awaitingAuth(hello: hello, nonce: nonce)
                return [.send(.challenge(.init(nonce: nonce)))]
            }
            if let refusal = admit(hello) { return fail(.authFailed, refusal) }
            state = .established
            scope = .cluster
            return [.send(.welcome(.init(server: serverName))), .established(hello)]

        case (.awaitingAuth(let hello, let nonce), .auth(let auth)):
            guard let matched = ring.match(mac: auth.mac, nonce: nonce, role: hello.role, name: hello.name) else {
                return fail(.authFailed, "authentication failed: wrong cluster token")
            }
            let (proved, token) = (matched.scope, matched.key)
            guard let peerNonce = hello.nonce, !peerNonce.isEmpty else {
                return fail(.authFailed, "authentication failed: hello carried no nonce for the server's proof")
            }
            if let refusal = proved.refusal(role: hello.role) { return fail(.forbidden, refusal) }
            if let refusal = admit(hello) { return fail(.authFailed, refusal) }
            state = .established
            scope = proved
            let mac = token.proof(purpose: "server", nonce: peerNonce, role: hello.role, name: hello.name)
            let digests = hello.role == .worker ? ring.readerDigests : nil
            return [.send(.welcome(.init(server: serverName, mac: mac, readerDigests: digests))), .established(hello)]

        case (.awaitingHello, _):
            return fail(.handshakeRequired, "the first message must be 'hello', got '\(message.type)'")
        case (.awaitingAuth, _):
            return fail(.authFailed, "expected 'auth' after 'challenge', got '\(message.type)'")
        case (.established, _), (.failed, _):
            return [.failed("handshake already finished")]
        }
    }

    private mutating func fail(_ code: ErrorCode, _ reason: String) -> [HandshakeDirective] {
        state = .failed
        return [.send(.error(.init(code: code, reason: reason))), .close, .failed(reason)]
    }
}

/// The connecting side: sends `hello`, answers a `challenge`, checks the server's proof.
public struct ClientHandshake: Sendable {
    enum State: Sendable { case initial, awaitingReply, established, failed }

    private var state: State = .initial
    private let role: PeerRole
    private let name: String
    private let token: ClusterToken?
    private let nonce: String

    public init(role: PeerRole, name: String, token: ClusterToken?, nonce: String = ClusterToken.makeNonce()) {
        self.role = role
        self.name = name
        self.token = token
        self.nonce = nonce
    }

    public var isEstablished: Bool { state == .established }
    /// The optional requests the scheduler announced in its `welcome` (at most 64 names of at
    /// most 64 bytes are kept; the rest are ignored). Empty before the handshake ends.
    public private(set) var serverFeatures: Set<String> = []
    /// The scheduler's reading tokens by digest (`Welcome.readerDigests`, bounded there);
    /// empty before the handshake ends.
    public private(set) var readerDigests = BearerDigests()
    /// After a failure: true when retrying cannot help (wrong or missing token, another
    /// protocol version), so a worker should stop rather than reconnect for ever.
    public private(set) var failureIsPermanent = false

    public mutating func start() -> [HandshakeDirective] {
        state = .awaitingReply
        return [.send(.hello(.init(role: role, name: name, nonce: token == nil ? nil : nonce)))]
    }

    public mutating func receive(_ message: Message) -> [HandshakeDirective] {
        guard state == .awaitingReply else { return [.failed("handshake already finished")] }
        switch message {
        case .challenge(let challenge):
            guard let token else {
                return fail("the scheduler requires a cluster token (use --token-file or SWARM_TOKEN)")
            }
            return [.send(.auth(.init(mac: token.proof(purpose: "peer", nonce: challenge.nonce, role: role, name: name))))]
        case .welcome(let welcome):
            guard welcome.version == protocolVersion else {
                return fail("scheduler speaks protocol \(welcome.version), this build speaks \(protocolVersion)")
            }
            if let token {
                guard let mac = welcome.mac, token.verify(mac, purpose: "server", nonce: nonce, role: role, name: name) else {
                    return fail("the scheduler did not prove the cluster token (wrong token, or no token configured there)")
                }
            }
            state = .established
            serverFeatures = Set((welcome.features ?? []).prefix(64).filter { $0.utf8.count <= 64 })
            readerDigests = BearerDigests(hex: welcome.readerDigests)
            return [.established(.init(role: role, name: name))]
        case .error(let error):
            state = .failed
            failureIsPermanent = error.code == .authFailed || error.code == .versionMismatch || error.code == .forbidden
            return [.close, .failed(error.reason)]
        default:
            return fail("unexpected '\(message.type)' during the handshake", permanent: false)
        }
    }

    private mutating func fail(_ reason: String, permanent: Bool = true) -> [HandshakeDirective] {
        state = .failed
        failureIsPermanent = permanent
        return [.close, .failed(reason)]
    }
}
