/// Every bound the HTTP server enforces, as numbers. A request past one is answered with the
/// status named beside it and its connection closed; the defaults are what `swarm scheduler`
/// and `swarm worker` run with. Tests shrink them to reach the edges quickly.
public struct HTTPLimits: Sendable, Equatable {
    /// Bytes of the request target (path and query). Past it: 414.
    public var maxTargetBytes = 8_192
    /// Bytes of all header names and values of one request together. Past it: 431.
    public var maxHeaderBytes = 16_384
    /// Header lines in one request. Past it: 431.
    public var maxHeaderCount = 64
    /// Bytes of a request body (none on GET and HEAD: 400). Past it: 413.
    public var maxBodyBytes = 65_536
    /// Milliseconds a kept-alive connection may stay silent between requests; then it is closed.
    public var idleTimeoutMs: Int64 = 30_000
    /// Milliseconds from a request's first byte to its last: a slow sender (one byte now and
    /// then) cannot hold a connection past it. Then: 408 and close.
    public var requestTimeoutMs: Int64 = 10_000
    /// Connections open at once; one more is answered 503 and closed. Room for the
    /// dashboard's log streams (`DashboardLimits.maxStreams`, 128) and as many again.
    public var maxConnections = 256
    /// With `maxConnections` open, a newcomer takes the slot of the oldest connection that has
    /// not shown a token yet (no request past the token check other than a public page; over
    /// HTTPS maybe not even its handshake) and is at least this old, rather than being refused:
    /// 256 silent sockets, reopened as the timeouts close them, would otherwise lock every
    /// scraper and browser out. A connection younger than this is never evicted, so a client
    /// that sends its request promptly gets through.
    public var evictUnprovenAfterMs: Int64 = 1_000
    /// Kept-alive connections idle at once: their last answer written, no byte of a next request
    /// read (a browser's, or the bench's readers', pool between two requests). When an answer
    /// leaves one more idle, the connection idle longest is closed; and a connection accepted
    /// with `maxConnections` open takes the place of the one idle longest (503 only when none
    /// is idle). Each is also closed after `idleTimeoutMs`.
    public var maxIdleConnections = 128
    /// Requests served on one connection before it is closed (`Connection: close` on the last).
    public var maxRequestsPerConnection = 10_000
    /// Milliseconds a connection the server closes, its peer still sending, is read (and what
    /// comes dropped) before it is really closed: closing with unread bytes makes the kernel
    /// send RST, and the peer's kernel then drops the answer (a 503, a 4xx, the last answer of
    /// `Connection: close`) before the client reads it. At most `maxConnections` linger.
    public var lingerMs: Int64 = 2_000
    /// Milliseconds a piece of a streamed answer (a log line to the dashboard) may wait to be
    /// written with the pieces after it: one write, not one per piece. Below a screen frame
    /// or two, so a reader sees no difference. 0: each piece is written at once.
    public var streamFlushMs: Int64 = 25
    /// Milliseconds a streamed answer's head may wait for its first piece, to go out in one
    /// write with it (a log stream opened for a task that then prints and ends soon costs one
    /// write). The reader learns the stream is open at most this late; no piece waits longer
    /// than `streamFlushMs`. 0: the head is written at once.
    public var streamHeadDelayMs: Int64 = 250
    /// HTTPS: lines a failed TLS handshake (or record) may log, each with the peer and the
    /// reason, in a window of `tlsFailureLogWindowMs` from the first; the failures past them
    /// are counted and one line at the window's end says how many (`LineBudget`). So a flood
    /// of bad handshakes writes at most 10 + 1 lines a minute.
    public var tlsFailureLogLines = 10
    public var tlsFailureLogWindowMs: Int64 = 60_000

    public init() {}

    /// Bytes read and not yet parsed that a connection may hold: one whole request at its
    /// bounds, plus slack for the request line. Above it the server stops reading from that
    /// peer until the request in hand is answered (pipelined requests wait in the kernel).
    public var maxBufferedBytes: Int { maxTargetBytes + maxHeaderBytes + maxBodyBytes + 4_096 }
}
