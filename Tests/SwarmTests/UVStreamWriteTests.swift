import Foundation
import Testing
@testable import SwarmUV

/// `UVStream.writeNow` (the kernel takes the bytes at once, else the rest is queued behind
/// what already waits), `write`'s completion contract on top of it, and `EventLoop.soon`.
@Suite struct UVStreamWriteTests {
    /// A connected loopback pair on `loop`: the client and the server's end of it.
    private func connectedPair(_ loop: EventLoop) throws -> (server: UVTCP, client: UVTCP, accepted: UVTCP) {
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        var accepted: UVTCP?
        try server.listen { _ in accepted = try? server.accept() }
        let client = try UVTCP(loop: loop)
        var connected = false
        client.connect(try SocketAddress(host: "127.0.0.1", port: try server.localAddress().port)) { error in
            #expect(error == nil)
            connected = true
        }
        #expect(runLoop(loop) { connected && accepted != nil })
        return (server, client, try #require(accepted))
    }

    private func closeAll(_ loop: EventLoop, _ handles: [UVTCP]) throws {
        for handle in handles { handle.close() }
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aSmallWriteGoesAtOnceWithoutACompletion() throws {
        let loop = EventLoop()
        let (server, client, accepted) = try connectedPair(loop)
        var received: [UInt8] = []
        try accepted.stream.startReading { event in
            if case .data(let bytes) = event { received += Array(bytes) }
        }
        var completions = 0
        let outcome = client.stream.writeNow(Array("at once".utf8)) { _ in completions += 1 }
        #expect(outcome == .written)
        #expect(client.stream.writeQueueSize == 0)
        #expect(runLoop(loop) { received == Array("at once".utf8) })
        for _ in 0..<5 { loop.runNoWait() }
        #expect(completions == 0)  // `.written` is the whole answer
        try closeAll(loop, [client, accepted, server])
    }

    @Test func writeCompletesOnALaterIterationNeverInsideTheCall() throws {
        let loop = EventLoop()
        let (server, client, accepted) = try connectedPair(loop)
        var completed = false
        client.stream.write([1, 2, 3]) { error in
            #expect(error == nil)
            completed = true
        }
        #expect(!completed)
        #expect(runLoop(loop) { completed })
        // A closed stream's refusal also comes later, as a value.
        client.close()
        var refusal: UVError?
        client.stream.write([4]) { refusal = $0 }
        #expect(refusal == nil)
        #expect(runLoop(loop) { refusal != nil })
        #expect(refusal == .closed)
        try closeAll(loop, [accepted, server])
    }

    /// The peer does not read: the kernel's buffers fill, later writes are queued, and once
    /// the peer reads every byte arrives in order and every completion runs, in order.
    @Test func aFullSocketQueuesTheRestInOrder() throws {
        let loop = EventLoop()
        let (server, client, accepted) = try connectedPair(loop)
        let chunk = 64 * 1024, chunks = 256  // 16 MiB: more than loopback's buffers hold
        var outcomes: [WriteOutcome] = []
        var completed: [Int] = []
        for i in 0..<chunks {
            let bytes = [UInt8](repeating: UInt8(i & 0xFF), count: chunk)
            if i % 2 == 0 {
                outcomes.append(client.stream.writeNow(bytes) { error in
                    #expect(error == nil)
                    completed.append(i)
                })
            } else {
                client.stream.write(bytes) { error in
                    #expect(error == nil)
                    completed.append(i)
                }
            }
        }
        #expect(outcomes.first == .written)
        #expect(outcomes.last == .queued)
        #expect(client.stream.writeQueueSize > 0)
        var received = 0
        var inOrder = true
        try accepted.stream.startReading { event in
            guard case .data(let bytes) = event else { return }
            for byte in bytes {
                if byte != UInt8((received / chunk) & 0xFF) { inOrder = false }
                received += 1
            }
        }
        #expect(runLoop(loop, timeoutMs: 30_000) { received == chunk * chunks && client.stream.writeQueueSize == 0 })
        #expect(inOrder)
        // Completions: every odd chunk (`write`) and each even one that was queued, ascending.
        let queuedEven = outcomes.enumerated().filter { $0.element == .queued }.map { $0.offset * 2 }
        let expected = ((0..<chunks).filter { $0 % 2 == 1 } + queuedEven).sorted()
        #expect(runLoop(loop) { completed.count == expected.count })
        #expect(completed == expected)
        try closeAll(loop, [client, accepted, server])
    }

    /// Completions run in write order in the one corner where libuv alone would not: a write
    /// the kernel takes in two parts at once (the first by `uv_try_write`, the rest by the
    /// `uv_write` behind it straight away; libuv reports that in the next iteration's pending
    /// phase), then a write taken whole. Made from a pending-phase callback (the completion of
    /// such a write), the whole write's completion ran in this iteration's idle phase, first;
    /// made from a read callback (poll phase), the queued write's callback ran it first. A
    /// 4 KiB send buffer makes loopback TCP take one 64 KiB segment per call and free it (the
    /// ACK) before the call returns: the rest then goes at once. Fresh connections until that
    /// is seen (bounded).
    @Test(arguments: [true, false])
    func completionsKeepWriteOrderAfterAWriteTakenInParts(fromPendingPhase: Bool) throws {
        var seen = 0
        for _ in 0..<30 where seen == 0 {
            let loop = EventLoop()
            let (server, client, accepted) = try connectedPair(loop)
            try client.setBufferSizes(send: 4096, receive: nil)
            try accepted.setBufferSizes(send: nil, receive: 4 << 20)
            var received = 0
            try accepted.stream.startReading { if case .data(let bytes) = $0 { received += bytes.count } }
            let big = [UInt8](repeating: 7, count: 70_000)
            var order: [String] = []
            var inPartsAtOnce = false
            func writeBoth() {
                let second = client.stream.writeNow(big) { _ in order.append("second") }
                inPartsAtOnce = second == .queued && client.stream.writeQueueSize == 0
                client.stream.write([1]) { _ in order.append("third") }
                inPartsAtOnce = inPartsAtOnce && client.stream.writeQueueSize == 0
            }
            var expected = ["second", "third"]
            var phaseSure = true
            if fromPendingPhase {
                expected.insert("first", at: 0)
                let first = client.stream.writeNow(big) { error in
                    #expect(error == nil)
                    order.append("first")  // in the pending phase when the first went in parts at once
                    writeBoth()
                }
                phaseSure = first == .queued && client.stream.writeQueueSize == 0
            } else {
                try client.stream.startReading { event in
                    if case .data = event, order.isEmpty, !inPartsAtOnce { writeBoth() }
                }
                accepted.stream.write([9])
            }
            let bytes = big.count * (expected.count - 1) + 1
            #expect(runLoop(loop, timeoutMs: 20_000) { order.count == expected.count && received == bytes })
            #expect(order == expected)
            if phaseSure && inPartsAtOnce { seen += 1 }
            try closeAll(loop, [client, accepted, server])
        }
        #expect(seen > 0, "the kernel never took a write in two parts at once: the corner went untested")
    }

    @Test func writeNowToAPeerThatHasGoneFailsAsAValue() throws {
        let loop = EventLoop()
        let (server, client, accepted) = try connectedPair(loop)
        var peerGone = false
        try client.stream.startReading { event in
            if case .data = event { return }
            peerGone = true
        }
        accepted.close()
        #expect(runLoop(loop) { peerGone })
        var failure: UVError?
        for _ in 0..<50 where failure == nil {
            if case .failed(let error) = client.stream.writeNow([UInt8](repeating: 1, count: 65_536)) { failure = error }
            loop.runNoWait()
        }
        #expect(failure != nil)  // EPIPE or ECONNRESET, and no SIGPIPE
        try closeAll(loop, [client, server])
    }

    @Test func soonRunsOnTheNextIterationAndKeepsTheLoopAlive() throws {
        let loop = EventLoop()
        var order: [String] = []
        loop.soon {
            order.append("first")
            loop.soon { order.append("queued by first") }
        }
        loop.soon { order.append("second") }
        #expect(order.isEmpty)
        loop.runNoWait()
        #expect(order == ["first", "second"])
        // Nothing else is open: `run` still runs the queued work before it returns.
        loop.run()
        #expect(order == ["first", "second", "queued by first"])
        try closeLoopCheckingLeaks(loop)
    }
}
