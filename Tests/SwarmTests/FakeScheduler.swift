import Foundation
import Synchronization
import SwarmProtocol

/// A scripted scheduler on loopback for client tests: accepts connections one at a time on
/// its own thread, answers `hello` with `welcome` (no token), then hands every request to
/// `script`, which returns the frames to send back and whether to close the connection
/// afterwards. Plain POSIX sockets: this is test scaffolding, not the product.
final class FakeScheduler: @unchecked Sendable {
    struct Reply {
        var messages: [Message]
        var close = false
        /// Payloads sent as frames after `messages`, as they are (e.g. ones no peer can decode).
        var raw: [[UInt8]] = []
    }

    let port: Int
    var address: String { "127.0.0.1:\(port)" }
    /// Every request received, in order (handshake excluded).
    var requests: [Message] { received.withLock { $0 } }

    private let listenFd: Int32
    private let stopping = Atomic<Bool>(false)
    private let received = Locked<[Message]>([])
    private let finished = DispatchSemaphore(value: 0)

    init(script: @escaping @Sendable (Message) -> Reply) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listenFd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let thread = Thread { [self] in
            serve(script)
            finished.signal()
        }
        thread.start()
    }

    /// Stops accepting and waits for the serving thread (bounded).
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        _ = finished.wait(timeout: .now() + 15)
        close(listenFd)
    }

    private func serve(_ script: (Message) -> Reply) {
        while !stopping.load(ordering: .sequentiallyConsistent) {
            var poller = pollfd(fd: listenFd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let fd = accept(listenFd, nil, nil)
            guard fd >= 0 else { continue }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            converse(fd, script)
            close(fd)
        }
    }

    /// One connection: the handshake, then requests until the script closes or the peer goes.
    private func converse(_ fd: Int32, _ script: (Message) -> Reply) {
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var greeted = false
        while true {
            while let payload = try? decoder.next() {
                guard let message = try? MessageCodec.decode(payload) else { return }
                if !greeted {
                    greeted = true
                    send(fd, .welcome(.init(server: "fake")))
                    continue
                }
                received.withLock { $0.append(message) }
                let reply = script(message)
                for m in reply.messages { send(fd, m) }
                for payload in reply.raw { send(fd, frame: Frame.encode(payload)) }
                if reply.close { return }
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            decoder.feed(buffer[0..<n])
        }
    }

    private func send(_ fd: Int32, _ message: Message) {
        send(fd, frame: MessageCodec.frame(message))
    }

    private func send(_ fd: Int32, frame bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            sent += n
        }
    }
}
