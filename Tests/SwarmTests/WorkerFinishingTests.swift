import Foundation
import Logging
import Testing
import SwarmProtocol
import SwarmTransport
@testable import SwarmNode
@testable import SwarmUV

/// How a run's end leaves the worker (WorkerAgent+Finishing.swift), in a real worker on a real
/// loop against a scheduler end on the same loop: results of runs that end together are sent
/// before their files are written, and a `resultAck` never finds its run's files unwritten.
@Suite(.serialized) struct WorkerFinishingTests {
    /// The scheduler's side: answers the handshake and the register; at each result, notes
    /// whether the worker had written its file yet, and acknowledges it at once.
    final class SchedulerEnd {
        var connection: FramedConnection?
        var results: [String] = []
        /// Results whose file existed when the result arrived.
        var writtenBeforeSend: [String] = []
        let resultsDir: String
        /// Acknowledges nothing until this many results arrived, then all of them in one write.
        var holdAcksUntil: Int?
        private var held: [Message.ResultAck] = []

        init(resultsDir: String) { self.resultsDir = resultsDir }

        func accept(_ tcp: UVTCP) {
            let connection = FramedConnection(tcp: tcp)
            self.connection = connection
            connection.onMessage = { [weak self, unowned connection] message in
                guard let self else { return }
                switch message {
                case .hello: connection.send(.welcome(.init(server: "fake")))
                case .register: connection.send(.registered(.init(heartbeatMs: 1_000)))
                case .taskFinished(let finished):
                    let id = finished.result.id
                    self.results.append(id)
                    if FileManager.default.fileExists(atPath: "\(self.resultsDir)/\(id).json") { self.writtenBeforeSend.append(id) }
                    let ack = Message.ResultAck(id: id, attempt: finished.result.attempt)
                    if let until = self.holdAcksUntil {
                        self.held.append(ack)
                        guard self.results.count >= until else { return }
                        for ack in self.held { connection.send(.resultAck(ack)) }
                        self.held = []
                    } else {
                        connection.send(.resultAck(ack))
                    }
                    // On the wire now: the worker reads it in its next poll.
                    connection.flush()
                default: break
                }
            }
            connection.start()
        }
    }

    @Test func resultsLeaveBeforeTheirFilesAndAnAckFindsItsFilesWritten() throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-finishing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = SchedulerEnd(resultsDir: dir + "/results")
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        var config = WorkerConfig(name: "w", slots: 16, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        // One run's files per loop iteration: the acks arrive while most are still unwritten.
        config.finishedFilesSliceMicros = 0
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        let ids = (1...12).map { "fin-\($0)" }
        let link = try #require(scheduler.connection)
        for id in ids { link.send(.assign(.init(task: TaskAssignment(id: id, command: ["true"], env: nil, attempt: 1)))) }
        link.flush()
        var unwrittenWhenAcked: Int?
        #expect(runLoop(loop, timeoutMs: 20_000) {
            if scheduler.results.count == ids.count, worker.journal.entries().isEmpty, unwrittenWhenAcked == nil {
                unwrittenWhenAcked = worker.unwritten.count
            }
            return unwrittenWhenAcked != nil
        })
        #expect(Set(scheduler.results) == Set(ids))
        // Sent first: no result's file was there when the scheduler read the result.
        #expect(scheduler.writtenBeforeSend.isEmpty)
        // Every acknowledged run had its files written when the journal forgot it.
        #expect(unwrittenWhenAcked == 0)
        for id in ids {
            let result = try String(contentsOfFile: "\(dir)/results/\(id).json", encoding: .utf8)
            #expect(result.contains("\"succeeded\""))
            let log = try String(contentsOfFile: TaskLog.path(logsDir: dir + "/logs", id: id), encoding: .utf8)
            #expect(log.hasSuffix("swarm  result: succeeded\n"))
        }
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
        link.close(reason: "test over")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    /// Acknowledgements that arrive together (a layer of runs ended) are handled a slice per
    /// loop iteration, not all in the iteration that read them: the heartbeat and everything
    /// else get the loop in between. With a slice of 0 µs, one per iteration.
    @Test func acknowledgementsThatArriveTogetherAreHandledASlicePerIteration() throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-acks-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = SchedulerEnd(resultsDir: dir + "/results")
        let ids = (1...40).map { "ack-\($0)" }
        scheduler.holdAcksUntil = ids.count
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        var config = WorkerConfig(name: "w", slots: ids.count, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        config.finishedFilesSliceMicros = 0
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        let link = try #require(scheduler.connection)
        for id in ids { link.send(.assign(.init(task: TaskAssignment(id: id, command: ["true"], env: nil, attempt: 1)))) }
        link.flush()
        // The acks pending after each loop iteration.
        var seen: [Int] = []
        #expect(runLoop(loop, timeoutMs: 30_000) {
            seen.append(worker.pendingAcks.count)
            return scheduler.results.count == ids.count && worker.pendingAcks.isEmpty && worker.journal.entries().isEmpty
        })
        #expect(seen.max() == ids.count)
        // Never more than one handled per iteration.
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 - $1 <= 1 })
        #expect(worker.unwritten.isEmpty)
        for id in ids { #expect(FileManager.default.fileExists(atPath: "\(dir)/results/\(id).json")) }
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
        link.close(reason: "test over")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    /// Runs that end together (killed by one write of kills) have their results sent a slice
    /// per loop iteration: with a slice of 0 µs, one per iteration, never all in one.
    @Test func resultsOfRunsEndingTogetherAreSentASlicePerIteration() throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-deliver-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = SchedulerEnd(resultsDir: dir + "/results")
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        let ids = (1...30).map { "end-\($0)" }
        var config = WorkerConfig(name: "w", slots: ids.count, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        config.deliverSliceMicros = 0
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        let link = try #require(scheduler.connection)
        for id in ids { link.send(.assign(.init(task: TaskAssignment(id: id, command: ["sleep", "600"], env: nil, attempt: 1)))) }
        link.flush()
        #expect(runLoop(loop, timeoutMs: 30_000) { worker.runningCount == ids.count })
        for id in ids { link.send(.kill(.init(id: id, attempt: 1, reason: "test"))) }
        link.flush()
        // Results waiting to be sent after each loop iteration.
        var seen: [Int] = []
        #expect(runLoop(loop, timeoutMs: 30_000) {
            seen.append(worker.finishing.count)
            return scheduler.results.count == ids.count
        })
        // Never more than one sent per iteration (more may end meanwhile).
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 - $1 <= 1 })
        #expect(seen.max() ?? 0 >= 1)
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
        link.close(reason: "test over")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }
}
