import Foundation
import Testing
import SwarmClient
import SwarmProtocol

/// The client's cancel, stats, submitBatch, drain and logs against a scripted scheduler:
/// real replies, error frames, and a scheduler that does not know the message yet (it
/// answers with an error frame and closes, as today's scheduler does).
@Suite struct ClientCommandsTests {
    static func task(_ id: String, _ state: TaskState) -> TaskInfo {
        TaskInfo(id: id, state: state, command: ["sleep", "9"], submittedAt: 1)
    }

    /// Refuses every request like a scheduler that does not implement it.
    static let unimplemented: @Sendable (Message) -> FakeScheduler.Reply = { m in
        .init(messages: [.error(.init(code: .unexpected, reason: "a client may not send '\(m.type)'", requestId: m.requestId))],
              close: true)
    }

    static func withFake(_ script: @escaping @Sendable (Message) -> FakeScheduler.Reply,
                         _ body: (SwarmClient, FakeScheduler) throws -> Void) throws {
        let fake = try FakeScheduler(script: script)
        defer { fake.stop() }
        // The client goes (closing its connection) before the fake stops.
        try {
            let client = try SwarmClient(address: fake.address, token: nil)
            try body(client, fake)
        }()
    }

    @Test func cancelReturnsTheTask() throws {
        try Self.withFake({ m in
            guard case .cancel(let ref) = m else { return Self.unimplemented(m) }
            return .init(messages: [.taskInfo(.init(requestId: ref.requestId, task: Self.task(ref.id, .cancelled)))])
        }) { client, fake in
            let info = try client.cancel("t1")
            #expect(info.state == .cancelled)
            #expect(fake.requests.map(\.type) == ["cancel"])
        }
    }

    @Test func serverErrorsKeepTheirCodeAndReason() throws {
        try Self.withFake({ m in
            .init(messages: [.error(.init(code: .unknownTask, reason: "no task with id 'x'", requestId: m.requestId))])
        }) { client, _ in
            #expect(throws: ClientError.server(.unknownTask, "no task with id 'x'")) { try client.cancel("x") }
            // The connection stays usable after an error reply.
            #expect(throws: ClientError.server(.unknownTask, "no task with id 'x'")) {
                try client.logs("x", follow: true) { _ in Issue.record("no chunk expected") }
            }
        }
    }

    @Test func everyNewRequestReportsASchedulerThatDoesNotKnowIt() throws {
        let calls: [(String, (SwarmClient) throws -> Void)] = [
            ("cancel", { _ = try $0.cancel("t") }),
            ("stats", { _ = try $0.stats() }),
            ("submitBatch", { _ = try $0.submitBatch([TaskSpec(command: ["true"])]) }),
            ("drain", { _ = try $0.drain(node: "w1") }),
            ("logs", { _ = try $0.logs("t", follow: false) { _ in } }),
            ("logs", { _ = try $0.logs("t", follow: true) { _ in } }),
        ]
        for (type, call) in calls {
            try Self.withFake(Self.unimplemented) { client, _ in
                #expect(throws: ClientError.server(.unexpected, "a client may not send '\(type)'")) { try call(client) }
            }
        }
    }

    @Test func followedLogsArriveInOrderUntilDone() throws {
        try Self.withFake({ m in
            guard case .logs(let r) = m, r.follow else { return Self.unimplemented(m) }
            let chunk = { (data: String, done: Bool) in
                Message.logChunk(.init(requestId: r.requestId, id: r.id, data: data, done: done, state: done ? .failed : nil))
            }
            return .init(messages: [chunk("one\n", false), chunk("", false), chunk("two\n", false), chunk("three", true)])
        }) { client, _ in
            var chunks: [String] = []
            let state = try client.logs("t", follow: true) { chunks.append($0) }
            #expect(chunks == ["one\n", "two\n", "three"])
            #expect(state == .failed)
        }
    }

    @Test func storedLogsAreOneChunk() throws {
        try Self.withFake({ m in
            guard case .logs(let r) = m, !r.follow else { return Self.unimplemented(m) }
            return .init(messages: [.logChunk(.init(requestId: r.requestId, id: r.id, data: "all of it", done: true, state: .running))])
        }) { client, _ in
            var text = ""
            let state = try client.logs("t", follow: false) { text += $0 }
            #expect(state == .running)
            #expect(text == "all of it")
        }
    }

    @Test func aConnectionEndingMidFollowIsAnError() throws {
        try Self.withFake({ m in
            guard case .logs(let r) = m else { return Self.unimplemented(m) }
            return .init(messages: [.logChunk(.init(requestId: r.requestId, id: r.id, data: "partial", done: false))], close: true)
        }) { client, _ in
            var text = ""
            do {
                _ = try client.logs("t", follow: true) { text += $0 }
                Issue.record("a lost connection must throw")
            } catch {
                guard case ClientError.connectionLost = error else { Issue.record("got \(error)"); return }
            }
            #expect(text == "partial")
        }
    }

    @Test func submitBatchSendsEverySpecInOneRequest() throws {
        try Self.withFake({ m in
            guard case .submitBatch(let b) = m else { return Self.unimplemented(m) }
            let ids = b.tasks.enumerated().map { $1.id ?? "gen-\($0)" }
            return .init(messages: [.batchSubmitted(.init(requestId: b.requestId, ids: ids, existing: ["a"]))])
        }) { client, fake in
            let specs = [TaskSpec(id: "a", command: ["true"]), TaskSpec(runtime: "claude", prompt: "p")]
            let result = try client.submitBatch(specs)
            #expect(result.ids == ["a", "gen-1"])
            #expect(result.existing == ["a"])
            guard case .submitBatch(let sent)? = fake.requests.first else { Issue.record("no batch sent"); return }
            #expect(sent.tasks == specs)
        }
    }

    @Test func statsAndDrainReturnTheirPayloads() throws {
        var block = StatsBlock()
        block.totals.completed = 3
        block.byModel["sonnet"] = block.totals
        let stats = Message.StatsReply(requestId: 0, cluster: block, workers: ["w1": block])
        let node = NodeInfo(name: "w1", slots: 2, freeSlots: 2, running: 0, state: .draining, labels: [:], address: nil,
                            connected: true, lastSeenMsAgo: 5, completed: 3)
        try Self.withFake({ m in
            switch m {
            case .stats(let r):
                var reply = stats
                reply.requestId = r.requestId
                return .init(messages: [.statsReply(reply)])
            case .drain(let r) where r.name == "w1":
                return .init(messages: [.nodeList(.init(requestId: r.requestId, nodes: [node]))])
            case .drain(let r):
                return .init(messages: [.error(.init(code: .unexpected, reason: "no worker named '\(r.name)'", requestId: r.requestId))])
            default:
                return Self.unimplemented(m)
            }
        }) { client, _ in
            let reply = try client.stats()
            #expect(reply.cluster == block && reply.workers == ["w1": block])
            #expect(try client.drain(node: "w1") == [node])
            #expect(throws: ClientError.server(.unexpected, "no worker named 'w9'")) { try client.drain(node: "w9") }
        }
    }
}
