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

/// Where one request's answer goes: a whole response (`respond`) or a streamed one
/// (`beginStream`). Answer once; later answers are ignored. A responder whose connection has
/// closed drops its answer (`isOpen` tells).
public final class HTTPResponder {
    private var send: ((HTTPResponse) -> Void)?
    private var startStream: ((HTTPResponse, [UInt8]) -> HTTPStream?)?
    private let isOpenCheck: () -> Bool

    /// `send` delivers the answer (the server's connection); `startStream` opens a streamed
    /// one (nil: this responder cannot stream); `isOpen` says whether it still can answer.
    public init(send: @escaping (HTTPResponse) -> Void, startStream: ((HTTPResponse, [UInt8]) -> HTTPStream?)? = nil,
                isOpen: @escaping () -> Bool = { true }) {
        self.send = send
        self.startStream = startStream
        self.isOpenCheck = isOpen
    }

    public var isOpen: Bool { send != nil && isOpenCheck() }

    public func respond(_ response: HTTPResponse) {
        guard let send else { return }
        self.send = nil
        startStream = nil
        send(response)
    }

    /// Starts a streamed answer with `head`'s status and headers (its body is ignored): for
    /// Server-Sent Events and logs followed live. `first`: a first piece, sent with the head.
    /// Nil when already answered or not streamable.
    public func beginStream(_ head: HTTPResponse, first: [UInt8] = []) -> HTTPStream? {
        guard send != nil, let startStream else { return nil }
        send = nil
        self.startStream = nil
        return startStream(head, first)
    }
}

/// An open streamed answer (chunked). `send` pieces as they come, `finish` once. Watch
/// `queuedBytes` for a reader that does not keep up (drop it with `finish`), and `isOpen` for
/// one that left.
public final class HTTPStream {
    private let sendPiece: ([UInt8]) -> Void
    private var finishStream: (([UInt8]) -> Void)?
    private let isOpenCheck: () -> Bool
    private let queued: () -> Int

    /// `finish` gets the last piece (possibly empty) to send with the end.
    public init(send: @escaping ([UInt8]) -> Void, finish: @escaping ([UInt8]) -> Void,
                isOpen: @escaping () -> Bool, queuedBytes: @escaping () -> Int) {
        self.sendPiece = send
        self.finishStream = finish
        self.isOpenCheck = isOpen
        self.queued = queuedBytes
    }

    public var isOpen: Bool { finishStream != nil && isOpenCheck() }
    /// Bytes written to the connection and not yet taken by the kernel.
    public var queuedBytes: Int { queued() }

    public func send(_ bytes: [UInt8]) {
        guard isOpen else { return }
        sendPiece(bytes)
    }

    /// Ends the answer; `last` (if any) goes out with the end, in the same write.
    public func finish(last: [UInt8] = []) {
        guard let finishStream else { return }
        self.finishStream = nil
        finishStream(isOpenCheck() ? last : [])
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension HTTPResponder: Sendable {}

@available(*, unavailable)
extension HTTPStream: Sendable {}
