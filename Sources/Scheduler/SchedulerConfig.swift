import SwarmProtocol
import SwarmTransport
import SwarmUV

/// Everything `swarm scheduler` is told on its command line.
public struct SchedulerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 7700
    public var stateDir = ".swarm/scheduler"
    /// Keep the state in `stateDir/swarm.db` (SQLite): acknowledged tasks survive a restart
    /// (`swarm scheduler`, `swarm up`). When false the state lives in memory only and
    /// `stateDir` is not touched (`swarm demo`, tests).
    public var durable = false
    public var token: ClusterToken?
    /// Scoped tokens (`--worker-token-file`, `--submit-token-file`, `--read-token-file`): each
    /// lets its holder do one role's share (`TokenScope`). They need `token` beside them.
    public var workerToken: ClusterToken?
    public var submitToken: ClusterToken?
    public var readToken: ClusterToken?
    /// Every token peers may prove.
    public var tokenRing: TokenRing { TokenRing(cluster: token, worker: workerToken, submit: submitToken, read: readToken) }
    /// Without a token, only a loopback address may be bound unless this is set.
    public var insecureListenAny = false
    /// Certificate mode (`--tls-cert`, `--tls-key`, `--tls-ca`): mutual TLS. Without it, a
    /// token means TLS with a PSK from the token, and no token means plaintext (loopback).
    public var tls: TLSCertificateFiles?
    public var settings = SchedulerSettings()
    /// How many finished tasks stay in memory and in `swarm.db` (durable schedulers only:
    /// without a store every task stays in memory).
    public var retention = SchedulerRetention()
    /// How often a retention step runs (a step deletes at most `retentionBatch` tasks in
    /// one transaction; while more are past the limits, steps follow every 50 ms).
    public var retentionIntervalMs: UInt64 = 10_000
    public var retentionBatch = 500
    public var name = "scheduler"
    /// A connection that has not finished its handshake by then is closed.
    public var handshakeTimeoutMs: UInt64 = 10_000
    /// Until its handshake is done a peer may send only small frames, and only this many
    /// peers may be in that state at once: strangers cannot make us hold much memory.
    public var maxHandshakeFrame = 64 * 1024
    public var maxPendingHandshakes = 1024
    /// Pending handshakes from one address at most, and the rest of the admission rules
    /// (see `HandshakeAdmission`).
    public var maxPendingHandshakesPerAddress = 128
    /// From this many pending handshakes on, each must finish within `pressureHandshakeTimeoutMs`.
    public var handshakePressureAt = 512
    public var pressureHandshakeTimeoutMs: UInt64 = 2_000
    /// Limits on what clients make the scheduler hold (see `ClientLimits`).
    public var clientLimits = ClientLimits()
    /// The largest frame an authenticated peer may send.
    public var maxFrame = Frame.defaultMaxPayload
    /// `--http-listen HOST:PORT`: where `/metrics` is served (nil: no HTTP listener). See
    /// `HTTPListen` for which addresses are allowed.
    public var httpHost: String?
    public var httpPort = 0
    /// `--http-tls-cert`, `--http-tls-key`: the certificate the HTTP listener serves over
    /// HTTPS (default: certificate mode's own pair, else a self-signed one where HTTPS is
    /// needed; see `HTTPListen`).
    public var httpTLSCert: String?
    public var httpTLSKey: String?

    public init() {}
}

/// Why the scheduler could not start.
public enum SchedulerStartError: Error, CustomStringConvertible {
    case refusedInsecureBind(String)
    case badAddress(String)
    case bind(String, UVError)
    case state(TaskStoreError)
    case blobs(String)
    case http(String)
    case tokens(String)
    case tls(String)

    public var description: String {
        switch self {
        case .refusedInsecureBind(let address):
            "refusing to listen on \(address) without a cluster token: anyone who can reach it could run commands. Use --token-file F (or SWARM_TOKEN), or --insecure-listen-any"
        case .badAddress(let address): "invalid listen address '\(address)' (want a numeric IPv4/IPv6 address)"
        case let .bind(address, error): "cannot listen on \(address): \(error)"
        case .state(let error): "\(error)"
        case .blobs(let problem): "cannot open the blob store: \(problem)"
        case .http(let problem): problem
        case .tokens(let problem): problem
        case .tls(let problem): problem
        }
    }
}
