/// Routes a request by its path, then its method: an unknown path gets 404, a known path with
/// another method 405 (with `Allow`). HEAD is answered by the GET handler (the server sends
/// its head only). Paths are matched exactly; prefixes (`/api/...`) by `addPrefix`.
public struct HTTPRouter {
    /// Answers one request through `responder`, now or later (on the loop thread).
    public typealias Handler = (HTTPRequest, HTTPResponder) -> Void

    private var exact: [String: [String: Handler]] = [:]
    private var prefixes: [(prefix: String, methods: [String: Handler])] = []

    public init() {}

    /// `handler` answers `method` requests for exactly `path`.
    public mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        exact[path, default: [:]][method] = handler
    }

    /// `handler` answers `method` requests for every path starting with `prefix` (longest wins).
    public mutating func addPrefix(_ method: String, _ prefix: String, _ handler: @escaping Handler) {
        if let i = prefixes.firstIndex(where: { $0.prefix == prefix }) {
            prefixes[i].methods[method] = handler
        } else {
            prefixes.append((prefix, [method: handler]))
            prefixes.sort { $0.prefix.count > $1.prefix.count }
        }
    }

    /// Calls the handler for `request`, or answers 404 or 405 itself.
    public func handle(_ request: HTTPRequest, _ responder: HTTPResponder) {
        let path = String(request.path)
        guard let methods = exact[path] ?? prefixes.first(where: { path.hasPrefix($0.prefix) })?.methods else {
            responder.respond(.text(.notFound, "no such path: \(path.prefix(200))"))
            return
        }
        let method = request.method == "HEAD" ? "GET" : request.method
        guard let handler = methods[method] else {
            var allowed = methods.keys.sorted()
            if allowed.contains("GET") { allowed.append("HEAD") }
            responder.respond(.text(.methodNotAllowed, "\(request.method.prefix(20)) is not allowed on \(path.prefix(200))",
                                    headers: [("Allow", allowed.joined(separator: ", "))]))
            return
        }
        handler(request, responder)
    }
}

/// Where one request's answer goes. Answer once; later answers are ignored. A responder whose
/// connection has closed drops its answer (`isOpen` tells).
public final class HTTPResponder {
    private var send: ((HTTPResponse) -> Void)?
    private let isOpenCheck: () -> Bool

    /// `send` delivers the answer (the server's connection); `isOpen` says whether it still can.
    public init(send: @escaping (HTTPResponse) -> Void, isOpen: @escaping () -> Bool = { true }) {
        self.send = send
        self.isOpenCheck = isOpen
    }

    public var isOpen: Bool { send != nil && isOpenCheck() }

    public func respond(_ response: HTTPResponse) {
        guard let send else { return }
        self.send = nil
        send(response)
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension HTTPResponder: Sendable {}
