import Foundation
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Dashboard readers for the `dashboard` workload: one HTTP connection per task following
/// `/api/tasks/ID/log` (Server-Sent Events) as the page does, all on one event loop thread
/// of their own (libuv: epoll), as cheap as a browser's network thread: non-blocking
/// connects, the request written once connected, the bytes read as they come, counted and
/// dropped. `open` hands the ids over and returns at once, so the bench's own connects never
/// sit between the submit and the wait. A follower is done at its task's `end` event (it then
/// closes, as a page that stops reading) or when its connection fails or closes first.
/// Sendable: what both threads touch is behind `Locked`; `followers` is touched on the loop
/// thread only.
final class LogFollowerPool: @unchecked Sendable {
    /// What the followers saw, and what they cost this process.
    struct Figures: Sendable {
        /// Followers whose answer carried their task's `end` event.
        var ended = 0
        /// Of those, answers that were a live stream (chunked): the task had not ended when
        /// the request came. The others were the whole log of an ended task at once.
        var streamed = 0
        /// Followers refused (no connection, or closed without `end`).
        var refused = 0
        var bytesRead = 0
        /// CPU time of the followers' thread, nanoseconds (CLOCK_THREAD_CPUTIME_ID).
        var cpuNs: Int64 = 0
    }

    private let address: SocketAddress?
    private let host: String
    private let token: String?
    private let thread: EventLoopThread
    private let state = Locked((figures: Figures(), waiting: 0))
    /// Followers not yet over. Loop thread only.
    private var followers: [ObjectIdentifier: Follower] = [:]

    /// Starts the followers' loop thread; nothing is connected until `open`.
    init(host: String, port: Int, token: String?) {
        self.address = try? SocketAddress(host: host, port: port)
        self.host = host
        self.token = token
        thread = EventLoopThread(name: "bench-followers") { _ in }
    }

    /// Follows `ids` (one connection each), from the loop thread; returns at once.
    func open(_ ids: [String]) {
        state.withLock { $0.waiting += ids.count }
        thread.loop.execute { [self] in
            for id in ids { follow(id) }
        }
    }

    /// Waits up to `seconds` for every follower to be done; then closes what is left and ends
    /// the thread. Returns what they saw and cost.
    func finish(waitingUpTo seconds: Double) -> Figures {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && state.withLock({ $0.waiting > 0 }) { usleep(2_000) }
        thread.loop.execute { [self] in
            for follower in followers.values { follower.tcp.close() }
            followers = [:]
            var cpu = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu)
            state.withLock { $0.figures.cpuNs = Int64(cpu.tv_sec) * 1_000_000_000 + Int64(cpu.tv_nsec) }
        }
        thread.shutdown()
        thread.join()
        return state.withLock { $0.figures }
    }

    /// One follower, on the loop thread.
    private func follow(_ id: String) {
        let loop = thread.loop
        guard let address, let tcp = try? UVTCP(loop: loop) else { return done(ended: false, streamed: false) }
        var request = "GET /api/tasks/\(id)/log HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        let follower = Follower(tcp: tcp)
        followers[ObjectIdentifier(follower)] = follower
        tcp.connect(address) { [self] error in
            guard error == nil else { return follower.end { done(follower, ended: false, streamed: false) } }
            tcp.stream.write(Array((request + "\r\n").utf8))
            do {
                try tcp.stream.startReading { [self] event in
                    guard case .data(let bytes) = event else {
                        return follower.end { done(follower, ended: false, streamed: follower.streamed) }
                    }
                    state.withLock { $0.figures.bytesRead += bytes.count }
                    if follower.saw(bytes) { follower.end { done(follower, ended: true, streamed: follower.streamed) } }
                }
            } catch {
                follower.end { done(follower, ended: false, streamed: false) }
            }
        }
    }

    private func done(_ follower: Follower? = nil, ended: Bool, streamed: Bool) {
        if let follower { followers[ObjectIdentifier(follower)] = nil }
        state.withLock {
            $0.waiting -= 1
            if ended { $0.figures.ended += 1 } else { $0.figures.refused += 1 }
            if ended && streamed { $0.figures.streamed += 1 }
        }
    }

    /// One connection's reading: the head, then the last bytes, enough to find `event: end`
    /// across two reads. Loop thread only.
    private final class Follower {
        let tcp: UVTCP
        private(set) var streamed = false
        private var readAny = false
        private var tail: [UInt8] = []
        private var over = false
        private static let endEvent = Array("event: end\n".utf8)
        private static let chunked = Array("Transfer-Encoding: chunked".utf8)

        init(tcp: UVTCP) { self.tcp = tcp }

        /// Reads `bytes`; true once `event: end` has come.
        func saw(_ bytes: UnsafeRawBufferPointer) -> Bool {
            if !readAny {
                // The first read holds the head: a live stream is chunked, an ended task's
                // answer has a length.
                readAny = true
                streamed = Self.find(Self.chunked, in: Array(bytes.prefix(1_024)))
            }
            let window = tail + bytes
            if Self.find(Self.endEvent, in: window) { return true }
            tail = Array(window.suffix(Self.endEvent.count - 1))
            return false
        }

        /// Closes the connection and reports, once.
        func end(_ report: () -> Void) {
            guard !over else { return }
            over = true
            tcp.close()
            report()
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
