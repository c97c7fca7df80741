import CHTTPParser

/// A client's side of HTTP/1.1: reads the responses that come back on one connection, one
/// after another (keep-alive), over Debian's http_parser. Pure: bytes in, what was found out;
/// no I/O. The body is handed to `body` as it arrives, unframed (chunked encoding taken off)
/// and not kept, so a long answer (a log followed live) costs no memory here. Used by the
/// bench's dashboard readers and by tests; not for answers to HEAD requests (their head
/// announces a body that does not come).
public final class HTTPResponseReader {
    /// What a call to `read` found.
    public enum Outcome: Equatable {
        /// Every byte was taken; the response is not complete yet.
        case needMore
        /// The response is complete in the first `consumed` bytes given. `keepAlive`: the
        /// connection may carry the next request (else the client closes it).
        case complete(consumed: Int, keepAlive: Bool)
        /// The bytes are no HTTP response (or the connection ended inside one): close.
        case failed(String)
    }

    private let parser: UnsafeMutablePointer<http_parser>
    /// Where the body's bytes go, as they are read (the chunks' payloads, in order).
    private let body: (UnsafeRawBufferPointer) -> Void
    private var completed = false
    private var failure: String?
    /// The status of the response being read (0 until its head is whole).
    public private(set) var status = 0
    /// Whether the response being read is chunked (known once its head is whole): a streamed
    /// answer, as the dashboard's live log streams are.
    public private(set) var chunked = false
    /// Whether a byte of the response being read has come.
    public private(set) var started = false

    public init(body: @escaping (UnsafeRawBufferPointer) -> Void = { _ in }) {
        self.body = body
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_RESPONSE)
    }

    deinit { parser.deallocate() }

    /// Feeds bytes read from the connection. After `.complete`, the bytes past `consumed`
    /// belong to the next response (a server sends none unasked). After `.failed` the reader
    /// is spent.
    public func read(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        if let failure { return .failed(failure) }
        guard bytes.count > 0 else { return .needMore }
        if http_errno(rawValue: swarm_http_errno(parser)) == HPE_PAUSED { http_parser_pause(parser, 0) }
        return execute(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    /// The connection ended: completes a response whose end is the close (no length, not
    /// chunked); any other response still being read failed.
    public func peerClosed() -> Outcome {
        if let failure { return .failed(failure) }
        guard started else { return .failed("the connection closed before a response") }
        if http_errno(rawValue: swarm_http_errno(parser)) == HPE_PAUSED { http_parser_pause(parser, 0) }
        return execute(nil, 0)
    }

    private func execute(_ at: UnsafePointer<CChar>?, _ count: Int) -> Outcome {
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        let consumed = withUnsafePointer(to: Self.settings) { http_parser_execute(parser, $0, at, count) }
        parser.pointee.data = nil
        if completed {
            completed = false
            started = false
            return .complete(consumed: consumed, keepAlive: http_should_keep_alive(parser) != 0)
        }
        let errno = http_errno(rawValue: swarm_http_errno(parser))
        if errno != HPE_OK {
            failure = "malformed response: " + String(cString: http_errno_description(errno))
            return .failed(failure!)
        }
        if count == 0 {
            failure = "the connection closed inside a response"
            return .failed(failure!)
        }
        return .needMore
    }

    // MARK: Callbacks (C function pointers: they find the reader through `data`)

    private static func of(_ p: UnsafeMutablePointer<http_parser>?) -> HTTPResponseReader {
        Unmanaged<HTTPResponseReader>.fromOpaque(p!.pointee.data!).takeUnretainedValue()
    }

    private static let settings: http_parser_settings = {
        var s = http_parser_settings()
        http_parser_settings_init(&s)
        s.on_message_begin = { p in
            let reader = of(p)
            reader.started = true
            reader.status = 0
            reader.chunked = false
            return 0
        }
        s.on_headers_complete = { p in
            let reader = of(p)
            reader.status = Int(swarm_http_status(p!))
            reader.chunked = swarm_http_chunked(p!) != 0
            return 0
        }
        s.on_body = { p, at, n in
            of(p).body(UnsafeRawBufferPointer(start: at, count: n))
            return 0
        }
        s.on_message_complete = { p in
            of(p).completed = true
            // Stop after this response: the caller decides what the connection does next.
            http_parser_pause(p, 1)
            return 0
        }
        return s
    }()
}

/// Used on one connection's thread only: not Sendable, on purpose.
@available(*, unavailable)
extension HTTPResponseReader: Sendable {}
