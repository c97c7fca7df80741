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
}
