import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Dashboard readers for the `dashboard` workload: one HTTP connection per task following
/// `/api/tasks/ID/log` (Server-Sent Events) as the page does, read by one thread with
/// `poll`, the bytes counted and dropped. Each stream ends at its task's `end` event (the
/// scheduler then finishes the chunked answer) or at `close`. Blocking sockets for the
/// connect and the request (loopback: immediate), non-blocking reads.
/// Sendable by its lock: the reading thread and the caller touch `followers` and the counts
/// only under it (the descriptors are closed once that thread has ended).
final class LogFollowerPool: @unchecked Sendable {
    private struct Follower {
        var fd: Int32
        var tail: [UInt8] = []
        var ended = false
    }

    private let lock = NSLock()
    private var followers: [Follower] = []
    private var stopping = false
    /// Signalled when the reading thread has ended.
    private let readerDone = DispatchSemaphore(value: 0)
    private(set) var bytesRead = 0
    /// Followers refused (no connection, or an answer other than 200).
    private(set) var refused = 0

    /// Opens one follower per id on `host:port` (numeric IPv4). A follower that cannot
    /// connect is counted in `refused`.
    init(host: String, port: Int, ids: [String], token: String?) {
        for id in ids {
            guard let fd = Self.connect(host: host, port: port) else { refused += 1; continue }
            var request = "GET /api/tasks/\(id)/log HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n"
            if let token { request += "Authorization: Bearer \(token)\r\n" }
            request += "\r\n"
            let bytes = Array(request.utf8)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                Glibc.close(fd); refused += 1; continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            followers.append(Follower(fd: fd))
        }
        let thread = Thread { [self] in
            readLoop()
            readerDone.signal()
        }
        thread.name = "bench-log-followers"
        thread.start()
    }

    /// Followers whose stream carried its task's `end` event.
    var endedCount: Int { lock.withLock { followers.filter(\.ended).count } }

    /// Waits up to `seconds` for every follower to see its task's end; then closes them all.
    /// Returns how many saw it.
    func finish(waitingUpTo seconds: Double) -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && lock.withLock({ followers.contains { !$0.ended } }) { usleep(10_000) }
        let ended = endedCount
        lock.withLock { stopping = true }
        _ = readerDone.wait(timeout: .now() + 5)
        for follower in followers { Glibc.close(follower.fd) }
        followers = []
        return ended
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let end = Array("event: end\n".utf8)
        while !lock.withLock({ stopping }) {
            var polls = lock.withLock { followers.map { pollfd(fd: $0.ended ? -1 : $0.fd, events: Int16(POLLIN), revents: 0) } }
            if polls.isEmpty || poll(&polls, nfds_t(polls.count), 20) <= 0 { continue }
            for (i, entry) in polls.enumerated() where entry.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                lock.withLock {
                    guard n > 0 else {
                        // Closed by the scheduler: over, whatever it said.
                        if n == 0 { followers[i].ended = true }
                        return
                    }
                    bytesRead += n
                    // Only the last bytes are kept: enough to find `end` across two reads.
                    followers[i].tail = Array((followers[i].tail + buffer[..<n]).suffix(4_096))
                    if Self.contains(followers[i].tail, end) { followers[i].ended = true }
                }
            }
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<start + needle.count]) == needle { return true }
        }
        return false
    }

    private static func connect(host: String, port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { Glibc.close(fd); return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Glibc.close(fd); return nil }
        return fd
    }
}
