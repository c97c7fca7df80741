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
        /// Results whose journal record existed when the result arrived.
        var writtenBeforeSend: [String] = []
        let journalPath: String
        /// Acknowledges nothing until this many results arrived, then all of them in one write.
        var holdAcksUntil: Int?
        private var held: [Message.ResultAck] = []

        init(dataDir: String) { journalPath = dataDir + "/runs/journal.jsonl" }

        /// The journal's records in order: "result ID" or "ack ID" (starts left out).
        static func records(_ path: String) -> [String] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                if let result = object["result"] as? [String: Any], let id = result["id"] as? String { return "result \(id)" }
                if let ack = object["ack"] as? [String: Any], let id = ack["id"] as? String { return "ack \(id)" }
                return nil
            }
        }

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
                    if Self.records(self.journalPath).contains("result \(id)") { self.writtenBeforeSend.append(id) }
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

    /// A real worker on a real loop, registered with a `SchedulerEnd` on the same loop, its
    /// data in a fresh temporary directory. `finish()` stops the worker, closes both ends,
    /// checks that no handle leaked and removes the directory.
    final class Rig {
        let loop = EventLoop()
        let dir: String
        let server: UVTCP
        let scheduler: SchedulerEnd
        let worker: WorkerAgent
        let link: FramedConnection

        init(_ name: String, slots: Int, prepare: (SchedulerEnd) -> Void = { _ in },
             configure: (inout WorkerConfig) -> Void) throws {
            dir = NSTemporaryDirectory() + "worker-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            server = try UVTCP(loop: loop)
            try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
            let scheduler = SchedulerEnd(dataDir: dir)
            prepare(scheduler)
            self.scheduler = scheduler
            let server = self.server
            try server.listen { _ in scheduler.accept(try! server.accept()) }
            var config = WorkerConfig(name: "w", slots: slots, dataDir: dir)
            config.schedulerPort = try server.localAddress().port
            configure(&config)
            worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
            try worker.start()
            let worker = self.worker
            guard runLoop(loop, until: { worker.registered }), let link = scheduler.connection else {
                try? FileManager.default.removeItem(atPath: dir)
                throw POSIXError(.ETIMEDOUT)
            }
            self.link = link
        }

        /// Assigns each id's `command` (attempt 1) in one write.
        func assign(_ ids: [String], command: (Int) -> [String]) {
            for (index, id) in ids.enumerated() {
                link.send(.assign(.init(task: TaskAssignment(id: id, command: command(index), env: nil, attempt: 1))))
            }
            link.flush()
        }

        func finish() throws {
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var stopped = false
            worker.stop { stopped = true }
            #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
            link.close(reason: "test over")
            server.close()
            try closeLoopCheckingLeaks(loop)
        }
    }

    @Test func resultsLeaveBeforeTheirFilesAndAnAckFindsItsFilesWritten() throws {
        // One run's files per loop iteration: the acks arrive while most are still unwritten.
        let rig = try Rig("finishing", slots: 16) { $0.finishedFilesSliceMicros = 0 }
        let (loop, dir, scheduler, worker) = (rig.loop, rig.dir, rig.scheduler, rig.worker)
        let ids = (1...12).map { "fin-\($0)" }
        // Odd ones print (their log is created), even ones are silent (no log file).
        rig.assign(ids) { $0 % 2 == 0 ? ["echo", "hi"] : ["true"] }
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
        // Every acknowledged run had its files written when the journal forgot it: its result
        // record comes before its acknowledgement, and no result file is made any more.
        #expect(unwrittenWhenAcked == 0)
        let records = SchedulerEnd.records(scheduler.journalPath)
        for (index, id) in ids.enumerated() {
            let result = try #require(records.firstIndex(of: "result \(id)"), "\(id) has no result record")
            let ack = try #require(records.firstIndex(of: "ack \(id)"), "\(id) has no ack record")
            #expect(result < ack)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/results/\(id).json"))
            let log = try? String(contentsOfFile: TaskLog.path(logsDir: dir + "/logs", id: id), encoding: .utf8)
            if index % 2 == 0 {
                #expect(log?.contains("stdout hi\n") == true && log?.hasSuffix("swarm  result: succeeded\n") == true, "\(log ?? "no log")")
            } else {
                #expect(log == nil, "a silent run has no log file")
            }
        }
        try rig.finish()
    }

    /// Acknowledgements that arrive together (a layer of runs ended) are handled a slice per
    /// loop iteration, not all in the iteration that read them: the heartbeat and everything
    /// else get the loop in between. With a slice of 0 µs, one per iteration.
    @Test func acknowledgementsThatArriveTogetherAreHandledASlicePerIteration() throws {
        let ids = (1...40).map { "ack-\($0)" }
        let rig = try Rig("acks", slots: ids.count, prepare: { $0.holdAcksUntil = ids.count }) { $0.finishedFilesSliceMicros = 0 }
        let (loop, scheduler, worker) = (rig.loop, rig.scheduler, rig.worker)
        rig.assign(ids) { _ in ["true"] }
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
        let records = SchedulerEnd.records(scheduler.journalPath)
        for id in ids { #expect(records.contains("result \(id)") && records.contains("ack \(id)")) }
        try rig.finish()
    }

    /// Acknowledged runs are measured for retention in passes at least
    /// `RetentionShell.measureGapMs` apart (each pass is a thread), not a pass per
    /// acknowledgement or two: with one acknowledgement per loop iteration, 40 runs take a few
    /// passes, and every run is kept in the end.
    @Test func acknowledgedRunsAreMeasuredInFewPasses() throws {
        let ids = (1...40).map { "measure-\($0)" }
        let rig = try Rig("measure", slots: ids.count, prepare: { $0.holdAcksUntil = ids.count }) { $0.finishedFilesSliceMicros = 0 }
        let (loop, worker) = (rig.loop, rig.worker)
        let startMs = loop.nowMs
        rig.assign(ids) { _ in ["true"] }
        #expect(runLoop(loop, timeoutMs: 30_000) {
            worker.retention.core.keptCount == ids.count && !worker.retention.measuring
        })
        let elapsedMs = loop.nowMs - startMs
        // At most one pass per gap since the first acknowledgement, whatever the iterations.
        #expect(worker.retention.measurePasses >= 1)
        #expect(UInt64(worker.retention.measurePasses) <= elapsedMs / RetentionShell.measureGapMs + 1)
        #expect(worker.retention.measurePasses < ids.count / 4)
        try rig.finish()
    }

    /// Runs that end together (killed by one write of kills) have their results sent a slice
    /// per loop iteration: with a slice of 0 µs, one per iteration, never all in one.
    @Test func resultsOfRunsEndingTogetherAreSentASlicePerIteration() throws {
        let ids = (1...30).map { "end-\($0)" }
        let rig = try Rig("deliver", slots: ids.count) { $0.deliverSliceMicros = 0 }
        let (loop, scheduler, worker, link) = (rig.loop, rig.scheduler, rig.worker, rig.link)
        rig.assign(ids) { _ in ["sleep", "600"] }
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
        try rig.finish()
    }
}
