import Foundation
import SwarmHTTP
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Dashboard readers for the `dashboard` workload: one follower per task reading
/// `/api/tasks/ID/log` (Server-Sent Events) until its task's `end`, as the page does, all on
/// one event loop thread of their own (libuv: epoll), as cheap as a browser's network thread.
/// Like a browser, the readers keep their HTTP/1.1 connections alive: a stream that ended
/// (its chunked answer complete) leaves its connection idle in the pool, and the next stream
/// is asked on an idle connection instead of a new one; a new connection is made only when
/// none is idle (so the pool grows to the streams open at once: one per concurrent stream,
/// at most `maxIdle` kept). `open` hands a batch's ids over and returns at once, so the
/// bench's own connects never sit between the submit and the wait; the pool lives for the
/// whole workload (`close` ends it), its idle connections open across batches as a browser's
/// stay open while the dashboard is.
/// Sendable: what both threads touch is behind `Locked`; the connections are touched on the
/// loop thread only.
final class LogFollowerPool: @unchecked Sendable {
    /// What one batch's followers saw, and what they cost this process.
    struct Figures: Sendable {
        /// Followers whose answer carried their task's `end` event.
        var ended = 0
        /// Of those, answers that were a live stream (chunked): the task had not ended when
        /// the request came. The others were the whole log of an ended task at once.
        var streamed = 0
        /// Followers refused (no connection, an error status, or closed without `end`).
        var refused = 0
        var bytesRead = 0
        /// Connections made (the others' requests went on an idle kept-alive connection).
        var connects = 0
        /// Requests asked on a connection that had carried an answer before.
        var reused = 0
        /// CPU time of the followers' thread during the batch, ns (CLOCK_THREAD_CPUTIME_ID).
        var cpuNs: Int64 = 0
    }

    /// Idle connections kept at most; past it the one left idle is closed.
    let maxIdle: Int
    private let address: SocketAddress?
    private let request: (String) -> [UInt8]
    private let thread: EventLoopThread
    private let state = Locked((figures: Figures(), waiting: 0, cpuAtOpen: Int64(0)))
    /// Connections open, busy or idle. Loop thread only.
    private var connections: [ObjectIdentifier: Connection] = [:]
    /// Idle connections, the last one idle first to go out again. Loop thread only.
    private var idle: [Connection] = []

    /// Starts the followers' loop thread; nothing is connected until `open`.
    init(host: String, port: Int, token: String?, maxIdle: Int = 128) {
        self.address = try? SocketAddress(host: host, port: port)
        self.maxIdle = maxIdle
        let auth = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        request = { id in Array("GET /api/tasks/\(id)/log HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n\(auth)\r\n".utf8) }
        thread = EventLoopThread(name: "bench-followers") { _ in }
    }

    /// Follows `ids` (a batch), from the loop thread; returns at once.
    func open(_ ids: [String]) {
        state.withLock { $0.waiting += ids.count; $0.figures = Figures() }
        thread.loop.execute { [self] in
            let cpu = Self.threadCPU()
            state.withLock { $0.cpuAtOpen = cpu }
            for id in ids { follow(id) }
        }
    }

    /// Waits up to `seconds` for the batch's followers to be done; closes those that are not
    /// (their connections: a page that stops reading). Returns what they saw and cost.
    func finish(waitingUpTo seconds: Double) -> Figures {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && state.withLock({ $0.waiting > 0 }) { usleep(2_000) }
        let done = Locked(false)
        thread.loop.execute { [self] in
            for connection in connections.values where connection.id != nil { drop(connection) }
            let cpu = Self.threadCPU()
            state.withLock {
                $0.figures.cpuNs = cpu - $0.cpuAtOpen
                $0.figures.refused += max(0, $0.waiting)
                $0.waiting = 0
            }
            done.withLock { $0 = true }
        }
        while !done.withLock({ $0 }) { usleep(1_000) }
        return state.withLock { $0.figures }
    }

    /// Closes every connection and ends the thread.
    func close() {
        thread.loop.execute { [self] in
            for connection in connections.values { connection.tcp.close() }
            connections = [:]
            idle = []
        }
        thread.shutdown()
        thread.join()
    }

    private static func threadCPU() -> Int64 {
        var cpu = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu)
        return Int64(cpu.tv_sec) * 1_000_000_000 + Int64(cpu.tv_nsec)
    }

    /// One follower, on the loop thread: on an idle connection, else a new one.
    private func follow(_ id: String, retried: Bool = false) {
        if let connection = idle.popLast() {
            state.withLock { $0.figures.reused += 1 }
            return ask(id, on: connection, retried: retried)
        }
        guard let address, let tcp = try? UVTCP(loop: thread.loop) else { return report(ended: false) }
        let connection = Connection(tcp: tcp)
        connections[ObjectIdentifier(connection)] = connection
        connection.id = id
        state.withLock { $0.figures.connects += 1 }
        tcp.connect(address) { [self] error in
            guard error == nil else { return lost(connection) }
            do {
                try tcp.stream.startReading { [self] event in
                    guard case .data(let bytes) = event else { return lost(connection) }
                    read(bytes, on: connection)
                }
            } catch {
                return lost(connection)
            }
            ask(id, on: connection, retried: retried)
        }
    }

    private func ask(_ id: String, on connection: Connection, retried: Bool) {
        connection.begin(id, retried: retried)
        connection.tcp.stream.write(request(id))
    }

    private func read(_ bytes: UnsafeRawBufferPointer, on connection: Connection) {
        state.withLock { $0.figures.bytesRead += bytes.count }
        guard connection.id != nil else { return drop(connection) }   // bytes unasked: not HTTP as spoken here
        switch connection.reader.read(bytes) {
        case .needMore: return
        case .failed: lost(connection)
        case .complete(_, let keepAlive):
            let ok = connection.reader.status == 200 && connection.sawEnd
            report(ended: ok, streamed: ok && connection.streamed)
            connection.id = nil
            guard keepAlive, idle.count < maxIdle else { return drop(connection) }
            idle.append(connection)
        }
    }

    /// The connection ended or failed. A request on a kept-alive connection that the server
    /// closed before answering (its idle timeout crossing the request) is asked again on a new
    /// one, once, as a browser does; anything else is a refused follower.
    private func lost(_ connection: Connection) {
        let id = connection.id, retry = connection.reused && !connection.reader.started && !connection.retried
        connection.id = nil
        drop(connection)
        guard let id else { return }
        if retry { return follow(id, retried: true) }
        report(ended: false)
    }

    private func drop(_ connection: Connection) {
        connections[ObjectIdentifier(connection)] = nil
        idle.removeAll { $0 === connection }
        connection.tcp.close()
        if connection.id != nil {
            connection.id = nil
            report(ended: false)
        }
    }

    private func report(ended: Bool, streamed: Bool = false) {
        state.withLock {
            $0.waiting -= 1
            if ended { $0.figures.ended += 1 } else { $0.figures.refused += 1 }
            if streamed { $0.figures.streamed += 1 }
        }
    }

    /// One kept-alive connection and the follower it carries now (`id`). Loop thread only.
    private final class Connection {
        let tcp: UVTCP
        private(set) var reader: HTTPResponseReader!
        /// The task followed now (nil: idle).
        var id: String?
        /// Whether this connection carried an answer before the one asked now.
        private(set) var reused = false
        private(set) var retried = false
        private(set) var sawEnd = false
        private var answers = 0
        /// The body's last bytes: enough to find `event: end` across two reads.
        private var tail: [UInt8] = []
        private static let endEvent = Array("event: end\n".utf8)

        var streamed: Bool { reader.chunked }

        init(tcp: UVTCP) {
            self.tcp = tcp
            reader = HTTPResponseReader { [unowned self] body in self.scan(body) }
        }

        func begin(_ id: String, retried: Bool) {
            self.id = id
            self.retried = retried
            reused = answers > 0
            answers += 1
            sawEnd = false
            tail = []
        }

        private func scan(_ body: UnsafeRawBufferPointer) {
            guard !sawEnd else { return }
            let window = tail.isEmpty ? Array(body) : tail + body
            if Self.find(Self.endEvent, in: window) { sawEnd = true; return }
            tail = Array(window.suffix(Self.endEvent.count - 1))
        }

        private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Bool {
            guard haystack.count >= needle.count else { return false }
            for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
                if haystack[i..<i + needle.count].elementsEqual(needle) { return true }
            }
            return false
        }
    }
}
