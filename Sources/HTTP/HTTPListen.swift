import SwarmUV

/// The rule for where a scheduler's or worker's HTTP listener may bind (`--http-listen`): a
/// loopback address always; any other address only on a cluster with a token, and then every
/// request must carry `Authorization: Bearer TOKEN`, wherever it comes from. Metrics say what
/// runs where (task ids, models, worker names): no token, no data off this machine.
public enum HTTPListen {
    /// Why an HTTP listener was not started.
    public enum Failure: Error, CustomStringConvertible {
        case badAddress(String)
        case refusedWithoutToken(String)
        case bind(String, UVError)

        public var description: String {
            switch self {
            case .badAddress(let address):
                "invalid --http-listen address '\(address)' (want a numeric IPv4/IPv6 address and a port)"
            case .refusedWithoutToken(let address):
                "refusing to serve HTTP on \(address) without a cluster token: anyone who can reach it could read the cluster's metrics. Use a loopback address (127.0.0.1), or set a token (--token-file or SWARM_TOKEN); with one, every request needs 'Authorization: Bearer TOKEN'"
            case let .bind(address, error): "cannot serve HTTP on \(address): \(error)"
            }
        }
    }

    /// Starts `router` on `host:port` under the rule above; returns the server and the address
    /// it listens on (port 0 picks a free one). `token`: the cluster token, as the operator wrote it;
    /// `moreTokens`: other tokens a request may carry instead (the scoped tokens that may read).
    /// `publicPaths`: paths whose GET needs no token (pages that hold no data).
    public static func start(loop: EventLoop, host: String, port: Int, token: String?, router: HTTPRouter,
                             limits: HTTPLimits = HTTPLimits(), moreTokens: [String] = [],
                             publicPaths: Set<String> = []) throws(Failure) -> (HTTPServer, SocketAddress) {
        let display = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard let address = try? SocketAddress(host: host, port: port) else { throw .badAddress(display) }
        guard token != nil || address.isLoopback else { throw .refusedWithoutToken(display) }
        let server = HTTPServer(loop: loop, router: router, limits: limits, bearerToken: token,
                                moreBearerTokens: token == nil ? [] : moreTokens, publicPaths: publicPaths)
        do { return (server, try server.start(address)) } catch { throw .bind(display, error) }
    }
}
