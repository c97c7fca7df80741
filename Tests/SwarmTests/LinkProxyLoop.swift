import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The thread of a `LinkProxy`: one `poll` loop over its listener and every connection pair.
/// Each direction reads what the link may take (at most `maxQueued` bytes in flight, so a
/// slow link pushes back on the sender as a real one does), stamps it with the time it comes
/// out (`LinkShaper`), and writes it once due. Thread-confined; only `control` is shared.
final class LinkProxyLoop {
    /// One direction of one connection.
    struct Flow {
        /// Chunks on the link, each with when it comes out; oldest from `head`.
        var onLink: [(dueNs: UInt64, bytes: [UInt8])] = []
        var head = 0
        /// Bytes that came out, not yet written to the far socket (from `written`).
        var ready: [UInt8] = []
        var written = 0
        /// Bytes read and not yet written.
        var queued = 0
        /// The sending side ended its stream; `shutDown`: the far side was told (SHUT_WR).
        var readEnded = false
        var shutDown = false

        var waitingToWrite: Bool { written < ready.count }
        var nextDueNs: UInt64? { head < onLink.count ? onLink[head].dueNs : nil }
    }

    final class Pair {
        let client: Int32
        let target: Int32
        var connecting = true
        /// Client to target, and back.
        var up = Flow()
        var down = Flow()
        /// Bytes read from both sides (for `resetEveryBytes`).
        var carried = 0
        var closed = false

        init(client: Int32, target: Int32) {
            self.client = client
            self.target = target
        }
    }

    static let chunkBytes = 16 * 1024
    static let maxQueued = 64 * 1024

    private let listener: Int32
    private let target: sockaddr_in
    private let control: Locked<LinkProxy.Control>
    private var pairs: [Pair] = []
    private var upLink = LinkShaper()
    private var downLink = LinkShaper()
    private var settings = LinkProxy.Settings()
    private var resetsHandled = 0
    private var stats = LinkProxy.Stats()
    private var buffer = [UInt8](repeating: 0, count: LinkProxyLoop.chunkBytes)

    init(listener: Int32, targetHost: String, targetPort: Int, control: Locked<LinkProxy.Control>) {
        self.listener = listener
        self.target = Libc.inetAddress(targetHost, port: targetPort)
        self.control = control
    }

    func run() {
        while true {
            let (wanted, resetRequests, stopping) = control.withLock { ($0.settings, $0.resetRequests, $0.stopping) }
            if stopping { break }
            if wanted != settings {
                settings = wanted
                upLink.reshape(delayMs: wanted.upDelayMs, bytesPerSecond: wanted.upBytesPerSecond)
                downLink.reshape(delayMs: wanted.downDelayMs, bytesPerSecond: wanted.downBytesPerSecond)
            }
            if resetRequests > resetsHandled {
                for pair in pairs { reset(pair) }
                resetsHandled = resetRequests
            }
            let now = Libc.monotonicNs()
            for pair in pairs { deliver(pair, now: now) }
            pairs.removeAll { $0.closed }
            stats.open = pairs.count
            control.withLock { [stats, resetsHandled] in
                $0.stats = stats
                $0.resetsHandled = resetsHandled
            }
            waitAndRead(now: now)
        }
        for pair in pairs where !pair.closed {
            close(pair.client)
            close(pair.target)
        }
        close(listener)
        control.withLock { [stats] in $0.stats = stats; $0.stats.open = 0 }
    }

    // MARK: - Writing

    /// Moves what is due off the link, writes what the sockets take, passes ends on.
    private func deliver(_ pair: Pair, now: UInt64) {
        if !pair.connecting {
            flush(&pair.up, to: pair.target, pair, now: now, count: \.bytesUp)
        }
        if !pair.closed { flush(&pair.down, to: pair.client, pair, now: now, count: \.bytesDown) }
        if !pair.closed && pair.up.shutDown && pair.down.shutDown {
            close(pair.client)
            close(pair.target)
            pair.closed = true
        }
    }

    private func flush(_ flow: inout Flow, to fd: Int32, _ pair: Pair, now: UInt64, count: WritableKeyPath<LinkProxy.Stats, Int>) {
        while let due = flow.nextDueNs, due <= now {
            flow.ready.append(contentsOf: flow.onLink[flow.head].bytes)
            flow.head += 1
        }
        if flow.head == flow.onLink.count { flow.onLink.removeAll(keepingCapacity: true); flow.head = 0 }
        while flow.waitingToWrite {
            let n = flow.ready.withUnsafeBytes { bytes in
                send(fd, bytes.baseAddress! + flow.written, bytes.count - flow.written, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                flow.written += n
                flow.queued -= n
                stats[keyPath: count] += n
            } else {
                if errno != EAGAIN && errno != EWOULDBLOCK { reset(pair) }
                return
            }
        }
        flow.ready.removeAll(keepingCapacity: true)
        flow.written = 0
        if flow.readEnded && flow.queued == 0 && !flow.shutDown {
            shutdown(fd, Int32(SHUT_WR))
            flow.shutDown = true
        }
    }

    // MARK: - Polling and reading

    private func waitAndRead(now: UInt64) {
        var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        var owners: [(pair: Pair, isClient: Bool)] = []
        var nextDue = UInt64.max
        for pair in pairs {
            let clientEvents = (canRead(pair.up) ? POLLIN : 0) | (pair.down.waitingToWrite ? POLLOUT : 0)
            let targetEvents = pair.connecting ? POLLOUT : (canRead(pair.down) ? POLLIN : 0) | (pair.up.waitingToWrite ? POLLOUT : 0)
            // No events wanted: left out, or a hang-up would be reported on every turn.
            fds.append(pollfd(fd: clientEvents == 0 ? -1 : pair.client, events: Int16(clientEvents), revents: 0))
            fds.append(pollfd(fd: targetEvents == 0 ? -1 : pair.target, events: Int16(targetEvents), revents: 0))
            owners.append((pair, true))
            owners.append((pair, false))
            nextDue = min(nextDue, pair.up.nextDueNs ?? .max, pair.down.nextDueNs ?? .max)
        }
        // At most 20 ms, so settings, resets and stop requests are seen promptly.
        let waitMs = nextDue == .max ? 20 : Int32(min(20, (nextDue > now ? nextDue - now : 0) / 1_000_000))
        guard poll(&fds, nfds_t(fds.count), waitMs) > 0 else { return }
        if fds[0].revents != 0 { acceptAll() }
        for (index, owner) in owners.enumerated() where fds[index + 1].revents != 0 && !owner.pair.closed {
            let pair = owner.pair
            if owner.isClient {
                read(from: pair.client, into: &pair.up, pair, link: &upLink)
            } else if pair.connecting {
                connected(pair)
            } else {
                read(from: pair.target, into: &pair.down, pair, link: &downLink)
            }
        }
    }

    private func canRead(_ flow: Flow) -> Bool { !flow.readEnded && flow.queued < Self.maxQueued }

    private func read(from fd: Int32, into flow: inout Flow, _ pair: Pair, link: inout LinkShaper) {
        guard canRead(flow) else { return }
        let room = min(Self.chunkBytes, Self.maxQueued - flow.queued)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, room, 0) }
        if n > 0 {
            flow.onLink.append((link.release(count: n, nowNs: Libc.monotonicNs()), Array(buffer[0..<n])))
            flow.queued += n
            pair.carried += n
            if let every = settings.resetEveryBytes, pair.carried >= every { reset(pair) }
        } else if n == 0 {
            flow.readEnded = true
        } else if errno != EAGAIN && errno != EWOULDBLOCK {
            reset(pair)  // a reset (or error) on one side is passed on to the other
        }
    }

    private func acceptAll() {
        while true {
            guard let accept4 = Libc.accept4 else { return }
            let client = accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            guard client >= 0 else { return }
            stats.accepted += 1
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let pair = Pair(client: client, target: fd)
            guard fd >= 0 else { reset(pair); continue }
            Self.noDelay(client)
            Self.noDelay(fd)
            var address = target
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            pairs.append(pair)
            if result == 0 {
                pair.connecting = false
            } else if errno != EINPROGRESS {
                reset(pair)
            }
        }
    }

    /// The target answered the connect: go on, or pass its refusal on as a reset.
    private func connected(_ pair: Pair) {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(pair.target, SOL_SOCKET, SO_ERROR, &error, &length)
        if error == 0 { pair.connecting = false } else { reset(pair) }
    }

    /// Closes both ends with RST (SO_LINGER 0): what each peer sees when a link resets.
    private func reset(_ pair: Pair) {
        guard !pair.closed else { return }
        var hard = linger(l_onoff: 1, l_linger: 0)
        for fd in [pair.client, pair.target] where fd >= 0 {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, socklen_t(MemoryLayout<linger>.size))
            close(fd)
        }
        pair.closed = true
        stats.resets += 1
    }

    private static func noDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
