import Foundation
import Logging
import Testing
import SwarmProtocol
import SwarmScheduler
import SwarmUV

/// Issue 10 item 22's bounds on the scheduler in this process: a worker and clients on raw
/// sockets. A client that stops reading stops the reads from the worker (nothing piles up in
/// the scheduler); when it reads again, the relay goes on to the end. Reads per client are capped.
@Suite(.serialized) struct LogRelayServerTests {
    /// Frames from a raw socket, one decoder for the connection's life.
    final class Reader: @unchecked Sendable {
        let socket: RawSocket
        private var decoder = FrameDecoder(maxPayload: 64 << 20)
        init(_ socket: RawSocket) { self.socket = socket }

        /// The next message, nil when the socket's receive timeout passed or it closed.
        func next() -> Message? {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                if let payload = try? decoder.next() { return try? MessageCodec.decode(payload) }
                let n = buffer.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return nil }
                decoder.feed(buffer[0..<n])
            }
        }

        /// Skips messages until `match` returns a value (at most `limit` messages).
        func until<T>(limit: Int = 10_000, _ match: (Message) -> T?) -> T? {
            for _ in 0..<limit {
                guard let message = next() else { return nil }
                if let value = match(message) { return value }
            }
            return nil
        }
    }

    static func connect(_ port: Int, role: PeerRole, name: String, timeoutMs: Int = RawSocket.readTimeoutSeconds * 1000) throws -> Reader {
        let socket = try RawSocket(port: port)
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        socket.send(.hello(.init(role: role, name: name)))
        let reader = Reader(socket)
        guard case .welcome? = reader.next() else { throw POSIXError(.EPROTO) }
        return reader
    }

    /// A scheduler on its own loop thread; `body` gets its port.
    static func withScheduler(lostAfterMs: Int64? = nil, _ body: (Int) throws -> Void) throws {
        var config = SchedulerConfig()
        if let lostAfterMs {
            config.settings.lostAfterMs = lostAfterMs
            config.settings.heartbeatMs = Int(lostAfterMs / 4)
        }
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        try body(scheduler.port)
    }

    /// Registers worker `w`, runs task `t` "on it" (started, succeeded): its log is on `w`.
    static func taskRanOnWorker(_ port: Int) throws -> (worker: Reader, client: Reader) {
        let worker = try connect(port, role: .worker, name: "w")
        worker.socket.send(.register(.init(slots: 1, labels: [:], running: [], finished: [])))
        #expect(worker.until { if case .registered = $0 { true } else { nil } } == true)
        let client = try connect(port, role: .client, name: "c")
        client.socket.send(.submit(.init(requestId: 1, task: TaskSpec(id: "t", command: ["true"]))))
        #expect(client.until { if case .submitted = $0 { true } else { nil } } == true)
        let assignment = try #require(worker.until { if case .assign(let a) = $0 { a.task } else { nil } })
        worker.socket.send(.taskStarted(.init(id: "t", attempt: assignment.attempt, pid: 1, startedAt: 1)))
        let result = TaskResult(id: "t", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "",
                                pid: 1, attempt: assignment.attempt, startedAt: 1, finishedAt: 2)
        worker.socket.send(.taskFinished(.init(result: result)))
        #expect(worker.until { if case .resultAck = $0 { true } else { nil } } == true)
        return (worker, client)
    }

    static let chunk = String(repeating: String(repeating: "x", count: 1023) + "\n", count: 1024)

    /// Answers every `readLog` with a full chunk (the end after `chunks` of them) until
    /// `stop`; counts the reads.
    static func serve(_ worker: Reader, chunks: Int, reads: Locked<Int>, stop: Locked<Bool>) -> Thread {
        let thread = Thread {
            while !stop.withLock({ $0 }) {
                guard case .readLog(let read)? = worker.next() else { continue }
                let served = reads.withLock { $0 += 1; return $0 }
                let last = served >= chunks
                worker.socket.send(.logData(.init(readId: read.readId, id: read.id, offset: read.offset,
                                                  nextOffset: read.offset + (last ? 0 : chunk.utf8.count),
                                                  data: last ? "" : chunk, eof: last)))
            }
        }
        thread.start()
        return thread
    }

    @Test func aClientThatStopsReadingStopsTheReadsThenGetsEverything() throws {
        try Self.withScheduler { port in
            let (worker, client) = try Self.taskRanOnWorker(port)
            // Short waits on the worker's side: the serving thread checks `stop` often.
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(worker.socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let reads = Locked(0), stop = Locked(false)
            // 15 MiB: more than the client's queue and both socket buffers hold (5 reads on
            // loopback here), so unpaced the reads would not stop before the end.
            let total = 16
            let server = Self.serve(worker, chunks: total, reads: reads, stop: stop)
            defer {
                stop.withLock { $0 = true }
                while !server.isFinished { usleep(10_000) }
            }
            client.socket.send(.logs(.init(requestId: 2, id: "t", follow: false)))
            // Not reading: the reads stop once the client's queue and the socket buffers are full.
            // (Not before the first read: on a loaded machine the serving thread may not have
            // run within the first 200 ms.)
            var last = -1
            for _ in 0..<150 {
                usleep(200_000)
                let now = reads.withLock { $0 }
                if now == last && now > 0 { break }
                last = now
            }
            #expect(last > 0)
            #expect(last < 12, "\(last) reads for a client that reads nothing")
            // Reading now: everything, in order, then the end.
            var bytes = 0
            var done = false
            while !done, let message = client.next() {
                guard case .logChunk(let chunk) = message, chunk.requestId == 2 else { continue }
                #expect(chunk.stream == "log" || chunk.done)
                bytes += chunk.data.utf8.count
                done = chunk.done
                if done { #expect(chunk.state == .succeeded) }
            }
            #expect(done)
            #expect(bytes == (total - 1) * Self.chunk.utf8.count)
            #expect(reads.withLock { $0 } == total)
        }
    }

    @Test func oneConnectionReadsAtMostFourLogsAtOnce() throws {
        try Self.withScheduler { port in
            let (worker, client) = try Self.taskRanOnWorker(port)
            defer { withExtendedLifetime(worker) {} }
            // The worker answers nothing: the four relays stay open.
            for requestId in 10..<15 { client.socket.send(.logs(.init(requestId: requestId, id: "t", follow: false))) }
            let refused = client.until { message -> Message.ErrorMessage? in
                if case .error(let e) = message { e } else { nil }
            }
            #expect(refused?.requestId == 14)
            #expect(refused?.reason.contains("already reads 4 logs at once") == true)
            // Ids with path characters are refused before anything is read.
            client.socket.send(.logs(.init(requestId: 20, id: "../t", follow: false)))
            let unknown = client.until { message -> Message.ErrorMessage? in
                if case .error(let e) = message, e.requestId == 20 { e } else { nil }
            }
            #expect(unknown?.code == .unknownTask)
        }
    }

    /// A worker that stops answering (hung, SIGSTOP) is marked lost: the reads it had end
    /// then, and the client gets the scheduler's copy at once. Before, the lost worker's
    /// relays were never ended: `swarm logs` timed out (exit 2) and `logs -f` hung forever.
    @Test func aReadFromAWorkerMarkedLostEndsWithTheSchedulersCopy() throws {
        try Self.withScheduler(lostAfterMs: 1_000) { port in
            let (worker, client) = try Self.taskRanOnWorker(port)
            defer { withExtendedLifetime(worker) {} }
            client.socket.send(.logs(.init(requestId: 2, id: "t", follow: true)))
            // The worker gets the read and then says nothing more (no answer, no heartbeat).
            #expect(worker.until { if case .readLog = $0 { true } else { nil } } == true)
            let last = client.until { message -> Message.LogChunk? in
                if case .logChunk(let chunk) = message, chunk.requestId == 2, chunk.done { chunk } else { nil }
            }
            #expect(last?.state == .succeeded)
            #expect(last?.notice?.contains("no longer available") == true, "\(String(describing: last))")
        }
    }
}
