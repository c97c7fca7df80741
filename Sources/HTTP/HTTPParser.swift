import CHTTPParser

/// An HTTP/1.1 request parser over Debian's http_parser, with `HTTPLimits` enforced as bytes
/// arrive. Pure: bytes in, one request (or a refusal) out; no I/O and no clock. It stops after
/// each whole request, so pipelined requests are taken one at a time and the caller decides
/// when to go on (`parse` again with the bytes it did not consume).
public final class HTTPRequestParser {
    /// What a call to `parse` found.
    public enum Outcome: Equatable {
        /// Every byte was taken and no request is whole yet.
        case needMore
        /// A whole request, found in the first `consumed` bytes given.
        case request(HTTPRequest, consumed: Int)
        /// The bytes are no request this server answers: reply `status` (with `reason`) and close.
        case refused(HTTPStatus, String)
    }

    private let parser: UnsafeMutablePointer<http_parser>
    private let limits: HTTPLimits
    private var target: [UInt8] = []
    private var headers: [(name: String, value: String)] = []
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var inValue = false
    private var headerBytes = 0
    private var body: [UInt8] = []
    private var finished: HTTPRequest?
    private var refusal: (HTTPStatus, String)?
    /// Whether part of a request has been read (the request timeout runs while it is).
    public private(set) var inRequest = false

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
    }

    deinit { parser.deallocate() }

    /// Feeds `bytes` (never empty). After `.request`, call again with the bytes past `consumed`
    /// (which may hold the next, pipelined, request). After `.refused` the parser is spent.
    public func parse(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        if let refusal { return .refused(refusal.0, refusal.1) }
        guard bytes.count > 0 else { return .needMore }
        if HTTPParserErrno(rawValue: swarm_http_errno(parser)) == HPE_PAUSED { http_parser_pause(parser, 0) }
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let consumed = withUnsafePointer(to: Self.settings) { settings in
            http_parser_execute(parser, settings, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        parser.pointee.data = nil
        if let request = finished {
            finished = nil
            return .request(request, consumed: consumed)
        }
        if let refusal { return .refused(refusal.0, refusal.1) }
        let errno = HTTPParserErrno(rawValue: swarm_http_errno(parser))
        if errno != HPE_OK {
            let reason = "malformed request: " + String(cString: http_errno_description(errno))
            refusal = (.badRequest, reason)
            return .refused(.badRequest, reason)
        }
        return .needMore
    }

    private typealias HTTPParserErrno = http_errno

    // MARK: Callbacks (C function pointers: they find the parser through `data`)

    private static func of(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPRequestParser {
        Unmanaged<HTTPRequestParser>.fromOpaque(p!.pointee.data!).takeUnretainedValue()
    }

    private static let settings: http_parser_settings = {
        var s = http_parser_settings()
        http_parser_settings_init(&s)
        s.on_message_begin = { p in of(p).begin() }
        s.on_url = { p, at, n in of(p).url(UnsafeRawBufferPointer(start: at, count: n)) }
        s.on_header_field = { p, at, n in of(p).headerField(UnsafeRawBufferPointer(start: at, count: n)) }
        s.on_header_value = { p, at, n in of(p).headerValue(UnsafeRawBufferPointer(start: at, count: n)) }
        s.on_headers_complete = { p in of(p).headersComplete() }
        s.on_body = { p, at, n in of(p).bodyBytes(UnsafeRawBufferPointer(start: at, count: n)) }
        s.on_message_complete = { p in of(p).complete() }
        return s
    }()

    private func begin() -> Int32 {
        inRequest = true
        // Emptied keeping their storage: one request after another on a kept-alive connection
        // (a dashboard's log streams) allocates none of it again.
        target.removeAll(keepingCapacity: true)
        headers.removeAll(keepingCapacity: true)
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        inValue = false; headerBytes = 0; body = []
        return 0
    }

    private func refuse(_ status: HTTPStatus, _ reason: String) -> Int32 {
        if refusal == nil { refusal = (status, reason) }
        return -1
    }

    private func url(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard target.count + bytes.count <= limits.maxTargetBytes else {
            return refuse(.uriTooLong, "request target longer than \(limits.maxTargetBytes) bytes")
        }
        target += bytes
        return 0
    }

    private func headerField(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        if inValue { flushHeader() }
        return addHeaderBytes(bytes, to: &field)
    }

    private func headerValue(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        inValue = true
        return addHeaderBytes(bytes, to: &value)
    }

    private func addHeaderBytes(_ bytes: UnsafeRawBufferPointer, to part: inout [UInt8]) -> Int32 {
        headerBytes += bytes.count
        guard headerBytes <= limits.maxHeaderBytes else {
            return refuse(.headersTooLarge, "headers longer than \(limits.maxHeaderBytes) bytes")
        }
        part += bytes
        return 0
    }

    private func flushHeader() {
        // Whitespace around a value is not part of it (RFC 9110 5.5); http_parser drops the
        // leading run only. "Bearer TOKEN " is the token.
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        headers.append((String(decoding: field, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        inValue = false
    }

    private func headersComplete() -> Int32 {
        if inValue || !field.isEmpty { flushHeader() }
        guard headers.count <= limits.maxHeaderCount else {
            return refuse(.headersTooLarge, "more than \(limits.maxHeaderCount) header lines")
        }
        let method = Self.methodName(parser)
        let declared = swarm_http_has_content_length(parser) != 0 ? parser.pointee.content_length : 0
        let hasBody = declared > 0 || swarm_http_chunked(parser) != 0
        if hasBody && (method == "GET" || method == "HEAD") {
            return refuse(.badRequest, "a \(method) request may not carry a body")
        }
        guard declared <= UInt64(limits.maxBodyBytes) else {
            return refuse(.payloadTooLarge, "body longer than \(limits.maxBodyBytes) bytes")
        }
        return 0
    }

    private func bodyBytes(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        guard body.count + bytes.count <= limits.maxBodyBytes else {
            return refuse(.payloadTooLarge, "body longer than \(limits.maxBodyBytes) bytes")
        }
        body += bytes
        return 0
    }

    private func complete() -> Int32 {
        // An upgrade (websocket, h2c) is not spoken here: answered as plain HTTP, then closed.
        let keepAlive = http_should_keep_alive(parser) != 0 && swarm_http_upgrade(parser) == 0
        finished = HTTPRequest(method: Self.methodName(parser), target: String(decoding: target, as: UTF8.self),
                               headers: headers, body: body, keepAlive: keepAlive)
        inRequest = false
        // Stop after this request: the caller answers it before reading the next.
        http_parser_pause(parser, 1)
        return 0
    }

    private static func methodName(_ p: UnsafeMutablePointer<http_parser>) -> String {
        switch http_method(rawValue: swarm_http_method(p)) {
        case HTTP_GET: "GET"
        case HTTP_HEAD: "HEAD"
        case HTTP_POST: "POST"
        case let method: String(cString: http_method_str(method))
        }
    }
}

/// Used on one connection's thread only: not Sendable, on purpose.
@available(*, unavailable)
extension HTTPRequestParser: Sendable {}
