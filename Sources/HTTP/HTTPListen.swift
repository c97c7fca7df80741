import SwarmTransport
import SwarmUV

/// Where an HTTPS listener's certificate comes from (`HTTPListen.start`).
public struct HTTPSOptions: Sendable, Equatable {
    /// `--http-tls-cert` and `--http-tls-key` (cluster.json `httpTlsCert`, `httpTlsKey`), else
    /// certificate mode's own `--tls-cert` and `--tls-key`: given, HTTPS on any address.
    public var cert: String?
    public var key: String?
    /// Where a self-signed certificate is kept (the scheduler's state directory, the worker's
    /// data directory) when HTTPS is needed and no certificate is given.
    public var selfSignedDirectory: String?
    /// HTTPS even on loopback without a certificate given (self-signed): tests, and anyone who
    /// wants it.
    public var always = false

    public init(cert: String? = nil, key: String? = nil, selfSignedDirectory: String? = nil) {
        self.cert = cert
        self.key = key
        self.selfSignedDirectory = selfSignedDirectory
    }
}

/// The rule for where a scheduler's or worker's HTTP listener may bind (`--http-listen`) and
/// what it speaks:
/// - a loopback address always; any other address only on a cluster with a token, and then
///   every request must carry `Authorization: Bearer TOKEN`, wherever it comes from. Metrics
///   say what runs where (task ids, models, worker names): no token, no data off this machine.
/// - HTTPS (TLS 1.3) on every address that is not loopback, and on loopback when a certificate
///   is given: the given one, else a self-signed one kept in `HTTPSOptions.selfSignedDirectory`
///   (`HTTPSCertificate.selfSigned`). Plain HTTP only on loopback without a certificate, where
///   nobody else can read or alter the bytes (README, "Encryption").
public enum HTTPListen {
    /// Why an HTTP listener was not started.
    public enum Failure: Error, CustomStringConvertible {
        case badAddress(String)
        case refusedWithoutToken(String)
        case bind(String, UVError)
        case tls(String)

        public var description: String {
            switch self {
            case .badAddress(let address):
                "invalid --http-listen address '\(address)' (want a numeric IPv4/IPv6 address and a port)"
            case .refusedWithoutToken(let address):
                "refusing to serve HTTP on \(address) without a cluster token: anyone who can reach it could read the cluster's metrics. Use a loopback address (127.0.0.1), or set a token (--token-file or SWARM_TOKEN); with one, every request needs 'Authorization: Bearer TOKEN'"
            case let .bind(address, error): "cannot serve HTTP on \(address): \(error)"
            case .tls(let reason): "cannot serve HTTPS: \(reason)"
            }
        }
    }

    /// The certificate a listener on `address` serves under the rule above, or nil for plain HTTP.
    public static func certificate(for address: SocketAddress, host: String,
                                   https: HTTPSOptions) throws(Failure) -> HTTPSCertificate? {
        do {
            if let cert = https.cert, let key = https.key { return try .given(cert: cert, key: key) }
            guard !address.isLoopback || https.always else { return nil }
            guard let directory = https.selfSignedDirectory else {
                throw Failure.tls("HTTPS on \(host) needs a certificate: give --http-tls-cert and --http-tls-key")
            }
            return try .selfSigned(in: directory, names: [host])
        } catch let error as TLSError {
            throw .tls(error.description)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .tls("\(error)")
        }
    }

    /// Starts `router` on `host:port` under the rule above; returns the server and the address
    /// it listens on (port 0 picks a free one). `token`: the cluster token, as the operator wrote it;
    /// `moreTokens`: other tokens a request may carry instead (the scoped tokens that may read).
    /// `publicPaths`: paths whose GET needs no token (pages that hold no data). The server's
    /// `certificate` says what it serves over HTTPS (nil: plain HTTP).
    public static func start(loop: EventLoop, host: String, port: Int, token: String?, router: HTTPRouter,
                             limits: HTTPLimits = HTTPLimits(), moreTokens: [String] = [],
                             publicPaths: Set<String> = [], https: HTTPSOptions = HTTPSOptions()) throws(Failure) -> (HTTPServer, SocketAddress) {
        let display = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard let address = try? SocketAddress(host: host, port: port) else { throw .badAddress(display) }
        guard token != nil || address.isLoopback else { throw .refusedWithoutToken(display) }
        let served = try Self.certificate(for: address, host: host, https: https)
        var context: TLSContext?
        if let served {
            do { context = try TLSContext(httpsCert: served.cert, key: served.key) } catch { throw .tls(error.description) }
        }
        let server = HTTPServer(loop: loop, router: router, limits: limits, bearerToken: token,
                                moreBearerTokens: token == nil ? [] : moreTokens, publicPaths: publicPaths, tls: context)
        server.certificate = served
        do { return (server, try server.start(address)) } catch { throw .bind(display, error) }
    }
}
