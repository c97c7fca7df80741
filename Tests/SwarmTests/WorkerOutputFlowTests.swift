import Foundation
import Logging
import Testing
import SwarmProtocol
import SwarmTransport
@testable import SwarmNode
@testable import SwarmUV

/// Item 4 of issue 10 in a real worker on a real loop, against a scheduler (a framed
/// connection on the same loop) that stops reading: a result overtakes the output backlog,
/// follows its own task's output, and the connection is never cut for output volume.
@Suite(.serialized) struct WorkerOutputFlowTests {
    /// The scheduler's side: answers the handshake and the register, records the rest.
    final class SchedulerEnd {
        var connection: FramedConnection?
        var accepted = 0
        var received: [Message] = []
        var ended: ConnectionEnd?

        func accept(_ tcp: UVTCP) {
            accepted += 1
            let connection = FramedConnection(tcp: tcp)
            self.connection = connection
            connection.onEnd = { [weak self] in self?.ended = $0 }
            connection.onMessage = { [weak self, unowned connection] message in
                switch message {
                case .hello: connection.send(.welcome(.init(server: "fake")))
                case .register: connection.send(.registered(.init(heartbeatMs: 50)))
                default: self?.received.append(message)
                }
            }
            connection.start()
        }

        func finishedIndex(_ id: String) -> Int? {
            received.firstIndex { if case .taskFinished(let f) = $0 { f.result.id == id } else { false } }
        }
    }

    @Test func aResultOvertakesTheOutputBacklogOfAnotherTaskAndTheConnectionHolds() throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-flow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = SchedulerEnd()
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        var config = WorkerConfig(name: "w", slots: 2, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        let marker = "worker-flow-\(getpid())"
        let total = 30_000_000
        let loud = TaskAssignment(id: "loud", command: ["sh", "-c", "head -c \(total) /dev/zero | tr '\\0' x; sleep 1.5", marker], env: nil, attempt: 1)
        // quiet ends once loud's output has piled up past what the worker holds for it (a
        // gate file, bounded at 20 s), not after a fixed sleep that a loaded machine can outlast before loud has
        // printed anything.
        let gate = dir + "/gate"
        let quiet = TaskAssignment(id: "quiet", command: ["sh", "-c", "i=0; while [ ! -e \"$1\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo done",
                                                          marker, gate], env: nil, attempt: 1)
        let link = try #require(scheduler.connection)
        link.send(.assign(.init(task: loud)))
        link.send(.assign(.init(task: quiet)))
        link.flush()
        // The scheduler hangs: it reads nothing while `loud` prints and `quiet` ends.
        link.tcp.stream.stopReading()
        var atResult: (handedOver: UInt64, queued: UInt64)?
        #expect(runLoop(loop, timeoutMs: 20_000) {
            // A lasting backlog: the socket's buffers are full, the lane too, and the relay
            // has dropped past its cap (a moment's queue in the lane drains into the kernel).
            if worker.session.relay.droppedBytes > 0, !FileManager.default.fileExists(atPath: gate) {
                FileManager.default.createFile(atPath: gate, contents: nil)
            }
            if atResult == nil, worker.outbox.contains(where: { $0.id == "quiet" }), let c = worker.connection {
                atResult = (c.bulkHandedOver, c.bulkQueuedCount)
            }
            return atResult != nil
        })
        let moment = try #require(atResult)
        #expect(moment.queued > moment.handedOver, "an output backlog waited in the lane when quiet's result was sent")
        link.start()
        #expect(runLoop(loop, timeoutMs: 60_000) { scheduler.finishedIndex("loud") != nil || scheduler.ended != nil })
        #expect(scheduler.ended == nil)
        #expect(scheduler.accepted == 1, "the worker reconnected")
        let quietResult = try #require(scheduler.finishedIndex("quiet"))
        let outputs = scheduler.received.enumerated().compactMap { item -> (Int, Message.TaskOutput)? in
            if case .taskOutput(let o) = item.element { (item.offset, o) } else { nil }
        }
        // Behind its own output ("done" went into the lane behind loud's output)...
        let quietOutput = try #require(outputs.first { $0.1.id == "quiet" })
        #expect(quietOutput.1.data == "done\n")
        #expect(quietOutput.0 < quietResult)
        // ...but not behind the backlog: of loud's output, only what was in the socket's queue
        // and at most the lane's worth more came before it (in the order the lane handed
        // frames over: the first `handedOver` frames were in the socket's queue already).
        let ahead = outputs.filter { $0.0 < quietResult }.dropFirst(Int(moment.handedOver))
            .filter { $0.1.id == "loud" }.reduce(0) { $0 + $1.1.data.utf8.count }
        #expect(ahead <= WorkerAgent.outputLaneBytes + OutputRelay.Limits().pieceBytes)
        let behind = outputs.filter { $0.0 > quietResult && $0.1.id == "loud" }.reduce(0) { $0 + $1.1.data.utf8.count }
        #expect(behind > OutputRelay.Limits().perRunBytes / 2, "loud's waiting output came after quiet's result")
        // Every byte of loud's output arrived or is counted by a marker in its place.
        // (A marker after an unfinished line comes after a newline of its own, not output.)
        var shown = 0, dropped = 0
        let loudOutputs = outputs.map(\.1).filter { $0.id == "loud" }
        func isMarker(_ output: Message.TaskOutput) -> Bool { output.stream == "stderr" && output.data.contains("[swarm: ") }
        for (index, output) in loudOutputs.enumerated() {
            if isMarker(output) {
                let text = output.data.drop { $0 == "\n" }
                dropped += Int(text.dropFirst(8).prefix { $0.isNumber }) ?? 0
            } else if !(output.data == "\n" && index + 1 < loudOutputs.count && isMarker(loudOutputs[index + 1])) {
                shown += output.data.utf8.count
            }
        }
        #expect(dropped > 0)
        #expect(shown + dropped == total)
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped && scheduler.ended != nil })
        server.close()
        try closeLoopCheckingLeaks(loop)
    }
}
