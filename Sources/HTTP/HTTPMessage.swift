/// One parsed HTTP/1.1 request. Header names are kept as sent; look them up with `header(_:)`.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request target as sent (path and query).
    public var target: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Whether the client asked to keep the connection open after this request.
    public var keepAlive: Bool

    public init(method: String, target: String, headers: [(name: String, value: String)] = [],
                body: [UInt8] = [], keepAlive: Bool = true) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The target without its query string. An absolute-form target (`http://host:port/x`,
    /// what a client sends through a proxy, and which a server must accept: RFC 9112 3.2.2)
    /// gives its path (`/x`; `/` when it has none).
    public var path: Substring {
        // Origin form (`/x?y`, every browser's request) on bytes: a Character walk of the
        // target cost ~13k instructions per look, and each request is looked at several times.
        let utf8 = target.utf8
        if utf8.first == UInt8(ascii: "/") {
            return target[..<(utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex)]
        }
        var rest = Substring(target)
        if rest.first != "/", let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://"),
           ["http", "https"].contains(rest[..<colon].lowercased()) {
            rest = rest[rest.index(colon, offsetBy: 3)...]
            guard let start = rest.firstIndex(where: { $0 == "/" || $0 == "?" }), rest[start] == "/" else { return "/" }
            rest = rest[start...]
        }
        return rest.firstIndex(of: "?").map { rest[..<$0] } ?? rest
    }

    /// The first value of header `name`, compared without regard to case.
    public func header(_ name: String) -> String? {
        headers.first { Self.sameName($0.name, name) }?.value
    }

    /// Whether two header names are the same, ASCII letters compared without regard to case
    /// (names are tokens: the parser refuses any other byte). Allocates nothing: it runs for
    /// every header of every request.
    public static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A)
        }
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.body == b.body && a.keepAlive == b.keepAlive
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// A status code with its reason phrase.
public struct HTTPStatus: Sendable, Equatable {
    public let code: Int
    public let reason: String

    public init(_ code: Int, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static let ok = HTTPStatus(200, "OK")
    public static let badRequest = HTTPStatus(400, "Bad Request")
    public static let unauthorized = HTTPStatus(401, "Unauthorized")
    public static let notFound = HTTPStatus(404, "Not Found")
    public static let methodNotAllowed = HTTPStatus(405, "Method Not Allowed")
    public static let requestTimeout = HTTPStatus(408, "Request Timeout")
    public static let payloadTooLarge = HTTPStatus(413, "Payload Too Large")
    public static let uriTooLong = HTTPStatus(414, "URI Too Long")
    public static let headersTooLarge = HTTPStatus(431, "Request Header Fields Too Large")
    public static let internalError = HTTPStatus(500, "Internal Server Error")
    public static let unavailable = HTTPStatus(503, "Service Unavailable")
}

/// A whole response: status, headers and body. `Content-Length`, `Connection` and `Date`-free
/// framing are added when it is written (`serialized`).
public struct HTTPResponse: Sendable, Equatable {
    public var status: HTTPStatus
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: HTTPStatus, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response (errors and short answers).
    public static func text(_ status: HTTPStatus, _ text: String, headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
                     body: Array((text + "\n").utf8))
    }

    /// The bytes on the wire. `close`: says `Connection: close` (the server closes after it).
    /// `headOnly`: the head of a HEAD answer (the length the body would have, no body).
    public func serialized(close: Bool, headOnly: Bool = false) -> [UInt8] {
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n"
        head += close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n"
        var bytes = Array(head.utf8)
        if !headOnly { bytes += body }
        return bytes
    }

    public static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.status == b.status && a.body == b.body
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}
