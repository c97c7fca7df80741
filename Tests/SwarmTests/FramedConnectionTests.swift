import Foundation
import Testing
@testable import SwarmUV
import SwarmProtocol
import SwarmTransport

/// Framed connections on a real loop over loopback: frames sent in one loop iteration leave
/// in one write, in order, and a local close still sends what was queued before it.
@Suite struct FramedConnectionTests {
    /// A server connection and a client connection on `loop`, both framed and started.
    private func pair(_ loop: EventLoop) throws -> (server: UVTCP, a: FramedConnection, b: FramedConnection) {
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        var accepted: FramedConnection?
        try server.listen { _ in
            let tcp = try! server.accept()
            let connection = FramedConnection(tcp: tcp)
            accepted = connection
        }
        let client = try UVTCP(loop: loop)
        var connected = false
        client.connect(try SocketAddress(host: "127.0.0.1", port: try server.localAddress().port)) { error in
            #expect(error == nil)
            connected = true
        }
        #expect(runLoop(loop) { connected && accepted != nil })
        return (server, FramedConnection(tcp: client), accepted!)
    }

    @Test func framesOfOneIterationArriveWholeAndInOrder() throws {
        let loop = EventLoop()
        let (server, a, b) = try pair(loop)
        var received: [Int] = []
        b.onMessage = { message in
            if case .status(let ref) = message { received.append(ref.requestId) }
        }
        a.start()
        b.start()
        for i in 0..<500 { a.send(.status(.init(requestId: i, id: "task-\(i)"))) }
        #expect(runLoop(loop) { received.count == 500 })
        #expect(received == Array(0..<500))
        a.close(reason: "done")
        b.close(reason: "done")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aLocalCloseStillSendsWhatWasQueuedBeforeIt() throws {
        let loop = EventLoop()
        let (server, a, b) = try pair(loop)
        var received: [Int] = []
        var ended: ConnectionEnd?
        b.onMessage = { message in
            if case .status(let ref) = message { received.append(ref.requestId) }
        }
        b.onEnd = { ended = $0 }
        a.start()
        b.start()
        a.send(.status(.init(requestId: 1, id: "x")))
        a.send(.status(.init(requestId: 2, id: "y")))
        a.close(reason: "bye")
        #expect(runLoop(loop) { ended != nil })
        #expect(received == [1, 2])
        #expect(ended == .eof)
        b.close(reason: "done")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func prepareRunsBeforeEachPollUntilStopped() throws {
        let loop = EventLoop()
        let prepare = try UVPrepare(loop: loop)
        let timer = try UVTimer(loop: loop)
        var runs = 0
        prepare.start { runs += 1 }
        timer.start(afterMs: 1, repeatMs: 1) {}
        #expect(runLoop(loop) { runs >= 3 })
        prepare.stop()
        let stoppedAt = runs
        for _ in 0..<5 { loop.runNoWait() }
        #expect(runs == stoppedAt)
        prepare.close()
        timer.close()
        try closeLoopCheckingLeaks(loop)
    }

    // MARK: Bulk lane (item 4 of issue 10)

    /// A bulk frame: one chunk of task output of `size` bytes.
    private func bulkFrame(_ index: Int, size: Int) -> [UInt8] {
        MessageCodec.frame(.taskOutput(.init(id: "bulk-\(index)", attempt: 1, stream: "stdout",
                                             data: String(repeating: "x", count: size), at: 0)))
    }

    /// A peer that reads late and slowly gets a control frame sent after a large bulk backlog
    /// long before the backlog's end, and the backlog (far past `maxQueuedBytes`) never closes
    /// the connection: every bulk frame arrives, in order.
    @Test func controlFramesOvertakeABulkBacklogThatNeverClosesTheConnection() throws {
        let loop = EventLoop()
        let (server, a, b) = try pair(loop)
        a.maxQueuedBytes = 1 << 20
        var ended: ConnectionEnd?
        a.onEnd = { ended = $0 }
        var spaceCalls = 0
        a.onBulkSpace = { spaceCalls += 1 }
        var bulkSeen: [Int] = []
        var bulkBeforeControl: Int?
        b.onMessage = { message in
            switch message {
            case .taskOutput(let output): bulkSeen.append(Int(output.id.dropFirst(5))!)
            case .status: bulkBeforeControl = bulkSeen.count
            default: break
            }
        }
        a.start()
        // 24 MiB of output frames while the peer does not read at all: the socket's buffers fill.
        let frames = 768, size = 32 * 1024
        for i in 0..<frames { a.sendBulk(bulkFrame(i, size: size)) }
        for _ in 0..<20 { loop.runNoWait() }
        #expect(a.bulkQueuedBytes > 8 << 20, "the backlog waits in the lane, not in the socket's queue")
        a.send(.status(.init(requestId: 7, id: "control")))
        for _ in 0..<20 { loop.runNoWait() }
        #expect(a.isOpen)
        // The peer starts reading, late.
        b.start()
        #expect(runLoop(loop, timeoutMs: 30_000) { bulkSeen.count == frames || ended != nil })
        #expect(ended == nil)
        #expect(a.isOpen)
        #expect(bulkSeen == Array(0..<frames))
        // Ahead of the backlog: only what the kernel's socket buffers and the lane's threshold
        // held when it was sent came before it (well under half of the backlog).
        let before = try #require(bulkBeforeControl)
        #expect(before < frames / 2, "\(before) of \(frames) bulk frames came before the control frame")
        #expect(a.bulkQueuedBytes == 0)
        #expect(a.bulkHandedOver == a.bulkQueuedCount)
        #expect(spaceCalls > 0)
        a.close(reason: "done")
        b.close(reason: "done")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    /// A close after flush still sends the whole bulk lane (a stopping worker's last output
    /// and results), and a bulk frame's ticket is reached once it is in the socket's queue.
    @Test func closeAfterFlushSendsTheWholeBulkLane() throws {
        let loop = EventLoop()
        let (server, a, b) = try pair(loop)
        var seen = 0
        var ended: ConnectionEnd?
        b.onMessage = { if case .taskOutput = $0 { seen += 1 } }
        b.onEnd = { ended = $0 }
        a.start()
        b.start()
        var ticket: UInt64 = 0
        for i in 0..<200 { ticket = a.sendBulk(bulkFrame(i, size: 16 * 1024)) }
        #expect(ticket == 200)
        #expect(a.bulkHandedOver < ticket)
        a.closeAfterFlush(.local("bye"))
        #expect(a.bulkHandedOver == ticket)
        #expect(runLoop(loop, timeoutMs: 20_000) { ended != nil })
        #expect(seen == 200)
        #expect(ended == .eof)
        b.close(reason: "done")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }
}
