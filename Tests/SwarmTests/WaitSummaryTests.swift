import Foundation
import Testing
import SwarmClient
@testable import SwarmScheduler
import SwarmProtocol

/// Every `waitResult` fits the 16 MiB frame limit, however many tasks a wait names and however
/// large they are (before: a wait on 50,000 ended tasks made a 37.5 MB frame, and a wait on two
/// tasks of ~15 MiB specs would make ~30 MiB; the CLI read them only because it accepted 512 MiB).
@Suite(.serialized) struct WaitSummaryTests {
    /// The worst a task's summary can be (every string long and all escapes, numbers at their
    /// largest) stays within its bound, and the most ids a wait may name fit one frame.
    @Test func aSummaryIsBoundedWhateverTheTask() throws {
        let nasty = String(repeating: "\u{1}\"", count: 100_000)
        var info = TaskInfo(id: String(repeating: "i", count: TaskID.maxLength), state: .failed,
                            command: Array(repeating: "\u{1}", count: 10_000) + [nasty], node: nasty,
                            exitCode: Int.max, signal: Int.max, reason: nasty, attempts: Int.max,
                            submittedAt: .max, placedAt: .max, startedAt: .max, finishedAt: .max, output: nasty)
        info.parent = String(repeating: "p", count: TaskID.maxLength)
        info.priority = .max
        info.labels = Dictionary(uniqueKeysWithValues: (0..<1_000).map { ("k\($0)\u{1}", nasty) })
        info.waitReason = nasty
        info.after = (0..<Bounds.dependencies).map { String(repeating: "a", count: TaskID.maxLength - 4) + "\($0)" }
        info.afterAny = info.after
        info.metrics.runtime = nasty; info.metrics.model = nasty; info.metrics.complexity = nasty
        info.metrics.contextMode = nasty; info.metrics.contextFile = nasty
        info.metrics.workDir = nasty; info.metrics.logFile = nasty
        info.metrics.complexityScore = .max; info.metrics.initialTimeoutMs = .max; info.metrics.finalTimeoutMs = .max
        info.metrics.extensions = .max; info.metrics.silenceWarnings = .max; info.metrics.outputBytes = .max
        info.metrics.outputBursts = .max; info.metrics.timeToFirstOutputMs = .max; info.metrics.firstOutputAt = .max
        info.metrics.startedAtUs = .max; info.metrics.firstOutputAtUs = .max; info.metrics.exitedAtUs = .max
        let summary = info.waitSummary()
        let bytes = try FastJSONEncoder().encode(summary).count
        #expect(bytes <= WaitSummary.maxSummaryBytes, "\(bytes) bytes")
        #expect(summary.output == nil && summary.id == info.id && summary.parent == info.parent)
        #expect(summary.command.last?.hasSuffix(" bytes]") == true && summary.labels?["…"] != nil)
        let envelope = MessageCodec.encode(.waitResult(.init(requestId: Int.max, tasks: []))).count
        #expect(WaitSummary.maxIds * WaitSummary.maxSummaryBytes + WaitSummary.maxIds + envelope <= Frame.defaultMaxPayload)

        // An ordinary task is not changed but for its output.
        var plain = TaskInfo(id: "t1", state: .succeeded, command: ["sh", "-c", "echo hi"], exitCode: 0, submittedAt: 1, output: "hi\n")
        plain.labels = ["team": "a"]
        plain.metrics.workDir = "/tmp/swarm/work/t1"
        var expected = plain
        expected.output = nil
        #expect(plain.waitSummary() == expected)
        // A cut says how much it left out and stays within its limit.
        let cut = WaitSummary.cut(String(repeating: "é", count: 1_000), limit: 64)
        #expect(WaitSummary.encodedBytes(cut) <= 64 && cut.hasPrefix("éé") && cut.hasSuffix(" bytes]"))
    }

    /// Long id lists are cut into parts of at most `maxIds`, none of a single task (which
    /// would come back whole, output and all).
    @Test func longWaitsGoInEvenParts() {
        #expect(SwarmClient.waitParts(1) == [0..<1])
        #expect(SwarmClient.waitParts(2_000) == [0..<2_000])
        #expect(SwarmClient.waitParts(2_001) == [0..<1_000, 1_000..<2_001])
        for count in [2, 3, 2_001, 4_001, 50_000, 123_457] {
            let parts = SwarmClient.waitParts(count, maxIds: 2_000)
            #expect(parts.first?.lowerBound == 0 && parts.last?.upperBound == count)
            #expect(parts.allSatisfy { $0.count >= 2 && $0.count <= 2_000 })
            #expect(zip(parts, parts.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        }
    }

    /// On a real loop: tasks with 6 MB specs and more tasks than one wait may name. Each reply
    /// fits a frame, a wait over the limit is refused with the number, and the client's wait
    /// still reports every task, in order.
    @Test func waitsOnManyLargeTasksGetRepliesWithinAFrame() throws {
        let scheduler = InProcessScheduler(SchedulerConfig())
        defer { #expect(scheduler.stop() == nil) }
        let admin = try SwarmClient(address: scheduler.address, token: nil)
        let large = String(repeating: "x", count: 6_000_000)
        var ids: [String] = []
        for i in 0..<3 {
            var spec = TaskSpec(id: "big\(i)", command: ["true"])
            spec.labels = ["blob": large]
            ids.append(try admin.submit(spec))
        }
        let small = (0..<(WaitSummary.maxIds + 100)).map { TaskSpec(id: "s\($0)", command: ["true"]) }
        ids += try admin.submitBatch(small).ids
        // No worker: end them all here (cancelled), as the loop would.
        let allIds = ids
        _ = scheduler.onLoop { server in
            for id in allIds { if let d = try? server.state.cancel(id, at: 2) { server.execute(d) } }
        }

        let socket = try handshakenSocket(port: scheduler.port, name: "waiter")
        socket.send(MessageCodec.frame(.wait(.init(requestId: 1, ids: Array(ids.prefix(WaitSummary.maxIds + 1))))))
        guard case .error(let refused)? = socket.readMessage() else { Issue.record("a wait over the limit was not refused"); return }
        #expect(refused.requestId == 1 && refused.reason.contains("at most \(WaitSummary.maxIds)"), "\(refused.reason)")

        socket.send(MessageCodec.frame(.wait(.init(requestId: 2, ids: Array(ids.prefix(50))))))
        guard let payload = socket.readPayload(), case .waitResult(let reply) = try MessageCodec.decode(payload) else {
            Issue.record("no wait reply within the frame limit"); return
        }
        #expect(payload.count <= Frame.defaultMaxPayload, "\(payload.count) bytes")
        #expect(reply.tasks.map(\.id) == Array(ids.prefix(50)))
        // The 6 MB label does not fit a summary: it is counted, not sent.
        #expect(reply.tasks[0].labels == ["…": "+1 labels (6000004 bytes) left out"])
        #expect(payload.count < 1 << 20, "\(payload.count) bytes")

        let infos = try admin.wait(ids + ["big0"], timeoutSeconds: 60)
        #expect(infos.map(\.id) == ids)
        #expect(infos.allSatisfy { $0.state == .cancelled && $0.output == nil })
    }
}
