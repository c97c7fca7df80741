import Foundation
import Testing
@testable import SwarmProtocol

/// Pure tests of `MessageCodec`, the wire types and task id rules.
@Suite struct MessageCodingTests {
    static let info = TaskInfo(id: "t-1", state: .timedOut, command: ["sleep", "9"], node: "w1", exitCode: nil,
                               signal: 15, reason: "took too long", attempts: 2, submittedAt: 1_700_000_000_000,
                               placedAt: 1_700_000_000_001, startedAt: 1_700_000_000_002,
                               finishedAt: 1_700_000_000_003, output: "tail\n")
    static let result = TaskResult(id: "t-2", state: .failed, exitCode: 3, signal: nil, reason: "exited with code 3",
                                   output: "boom\n", pid: 4242, attempt: 1, startedAt: 10, finishedAt: 20)
    static let node = NodeInfo(name: "w1", slots: 4, freeSlots: 1, running: 3, state: .draining,
                               labels: ["zone": "a"], address: "10.0.0.1:5000", connected: true,
                               lastSeenMsAgo: 250, completed: 17)

    /// One sample of every `Message` case.
    static let samples: [Message] = [
        .hello(.init(role: .worker, name: "w1", nonce: "abc")),
        .challenge(.init(nonce: "n0")),
        .auth(.init(mac: "deadbeef")),
        .welcome(.init(server: "sched", mac: "cafe")),
        .error(.init(code: .duplicateId, reason: "dup", requestId: 5)),
        .register(.init(slots: 3, labels: ["gpu": "no"], running: [RunRef(id: "a", attempt: 1)],
                       finished: [RunRef(id: "b", attempt: 2), RunRef(id: "c", attempt: 1)])),
        .registered(.init(heartbeatMs: 1000)),
        .registered(.init(heartbeatMs: 250, lostAfterMs: 1500)),
        .heartbeat(.init(freeSlots: 2, running: [RunRef(id: "a", attempt: 3)])),
        .assign(.init(task: TaskAssignment(id: "a", command: ["echo", "hi"], env: ["K": "V"], attempt: 2))),
        .taskStarted(.init(id: "a", attempt: 1, pid: 99, startedAt: 1_700_000_000_123)),
        .taskFinished(.init(result: result)),
        .resultAck(.init(id: "a", attempt: 1)),
        .reject(.init(id: "a", attempt: 1, reason: "full")),
        .kill(.init(id: "a", attempt: 2, reason: "cancel")),
        .leave(.init(reason: "stopping")),
        .submit(.init(requestId: 1, task: TaskSpec(id: "job-1", command: ["ls", "/tmp"], env: ["A": "1"]))),
        .status(.init(requestId: 2, id: "job-1")),
        .wait(.init(requestId: 3, ids: ["x", "y"])),
        .listTasks(.init(requestId: 4)),
        .listNodes(.init(requestId: 5)),
        .submitted(.init(requestId: 6, id: "job-1")),
        .taskInfo(.init(requestId: 7, task: info)),
        .waitResult(.init(requestId: 8, tasks: [info])),
        .taskList(.init(requestId: 9, tasks: [info, TaskInfo(id: "q", state: .queued, command: ["true"], submittedAt: 1)])),
        .nodeList(.init(requestId: 10, nodes: [node])),
    ]

    private func json(_ message: Message) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(MessageCodec.encode(message)))
        return try #require(object as? [String: Any])
    }

    private func decodeError(_ text: String) -> MessageError? {
        do {
            _ = try MessageCodec.decode(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func samplesCoverEveryCase() {
        #expect(Set(Self.samples.map(\.type)).count == 25)
    }

    @Test(arguments: samples)
    func roundTrip(_ message: Message) throws {
        let decoded = try MessageCodec.decode(MessageCodec.encode(message))
        #expect(decoded == message)
    }

    @Test(arguments: samples)
    func typeFieldIsPresent(_ message: Message) throws {
        let object = try json(message)
        #expect(object["type"] as? String == message.type)
    }

    @Test func frameIsHeaderPlusEncodedPayload() throws {
        let message = Message.listTasks(.init(requestId: 12))
        // Key order is not fixed (the encoder does not sort keys), so compare lengths and content.
        let payload = MessageCodec.encode(message)
        let frame = MessageCodec.frame(message)
        #expect(frame.count == 4 + payload.count)
        #expect(Array(frame.prefix(4)) == Array(Frame.encode(payload).prefix(4)))
        #expect(Array(frame.prefix(4)) == [0, 0, 0, UInt8(payload.count)])
        var decoder = FrameDecoder()
        decoder.feed(frame)
        let body = try #require(try decoder.next())
        #expect(Set(body) == Set(payload))
        #expect(try MessageCodec.decode(body) == message)
    }

    @Test func payloadFieldsSitBesideType() throws {
        let object = try json(.submit(.init(requestId: 1, task: TaskSpec(id: "j", command: ["ls"]))))
        #expect(Set(object.keys) == ["type", "requestId", "task"])
        #expect(object["requestId"] as? Int == 1)
        let task = try #require(object["task"] as? [String: Any])
        #expect(task["command"] as? [String] == ["ls"])
    }

    @Test func fieldNamesAreCamelCase() throws {
        let finished = try json(.taskFinished(.init(result: Self.result)))
        let result = try #require(finished["result"] as? [String: Any])
        // Every field is always present (null when unknown), so scripts can rely on the keys.
        #expect(Set(result.keys) == ["id", "state", "exitCode", "signal", "reason", "output", "pid", "attempt", "attempts",
                                     "submittedAt", "placedAt", "startedAt", "finishedAt", "node", "runtime", "model",
                                     "complexity", "complexityScore", "initialTimeoutMs", "finalTimeoutMs", "extensions",
                                     "silenceWarnings", "outputBytes", "outputBursts", "timeToFirstOutputMs", "firstOutputAt",
                                     "contextMode", "contextFile", "workDir", "logFile",
                                     "startedAtUs", "firstOutputAtUs", "exitedAtUs", "runMs", "prepareMs", "inputBytesFetched",
                                     "collectMs", "worktreeMs", "worktreeReused", "artifacts", "skippedArtifacts", "git"])
        let started = try json(.taskStarted(.init(id: "a", attempt: 1, pid: 1, startedAt: 5)))
        #expect(Set(started.keys) == ["type", "id", "attempt", "pid", "startedAt"])
        let nodes = try json(.nodeList(.init(requestId: 1, nodes: [Self.node])))
        let first = try #require((nodes["nodes"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["name", "slots", "freeSlots", "running", "state", "labels", "address",
                                    "connected", "lastSeenMsAgo", "completed", "runtimes", "allowsCommands", "prefetched"])
        let hb = try json(.heartbeat(.init(freeSlots: 1, running: [])))
        #expect(Set(hb.keys) == ["type", "freeSlots", "running"])
        let text = String(decoding: MessageCodec.encode(.registered(.init(heartbeatMs: 7))), as: UTF8.self)
        #expect(text.contains("\"heartbeatMs\":7"))
        #expect(!text.contains("_"))
    }

    @Test func stateRawValuesAreTheContract() throws {
        let text = String(decoding: MessageCodec.encode(.taskInfo(.init(requestId: 1, task: Self.info))), as: UTF8.self)
        #expect(text.contains("\"state\":\"timed_out\""))
        #expect(TaskState.silenceKilled.rawValue == "silence_killed")
        #expect(TaskState.spawnFailed.rawValue == "spawn_failed")
    }

    @Test func taskInfoEncodesAbsentValuesAsNull() throws {
        let info = TaskInfo(id: "q", state: .queued, command: ["true"], submittedAt: 42)
        let text = String(decoding: try JSONEncoder().encode(info), as: UTF8.self)
        #expect(text.contains("\"exitCode\":null"))
        #expect(text.contains("\"node\":null"))
        #expect(text.contains("\"signal\":null"))
        #expect(text.contains("\"placedAt\":null"))
        #expect(text.contains("\"finishedAt\":null"))
        // Never a missing key, output included (null in listings and while running).
        #expect(text.contains("\"output\":null"))
        let wire = String(decoding: MessageCodec.encode(.taskList(.init(requestId: 1, tasks: [info]))), as: UTF8.self)
        #expect(wire.contains("\"exitCode\":null"))
        #expect(wire.contains("\"node\":null"))
        #expect(try JSONDecoder().decode(TaskInfo.self, from: Data(text.utf8)) == info)
    }

    @Test func malformedJSON() {
        guard case .malformedJSON = decodeError("{\"type\":") else {
            Issue.record("truncated JSON must be malformedJSON, got \(String(describing: decodeError("{\"type\":")))")
            return
        }
        guard case .malformedJSON = decodeError("not json at all") else {
            Issue.record("garbage must be malformedJSON")
            return
        }
    }

    @Test(arguments: ["[1,2,3]", "[{\"type\":\"listTasks\",\"requestId\":1}]", "42", "\"hello\"", "null"])
    func nonObjectTopLevelIsMalformed(_ text: String) {
        let error = decodeError(text)
        guard case .malformedJSON = error else {
            Issue.record("\(text) gave \(String(describing: error))")
            return
        }
    }

    @Test func missingType() {
        #expect(decodeError("{\"requestId\":1}") == .missingType)
        #expect(decodeError("{}") == .missingType)
        #expect(decodeError("{\"type\":7,\"requestId\":1}") == .missingType)
    }

    @Test func unknownType() {
        #expect(decodeError("{\"type\":\"launchMissiles\",\"requestId\":1}") == .unknownType("launchMissiles"))
    }

    @Test func missingRequiredFieldNamesTheField() throws {
        let error = try #require(decodeError("{\"type\":\"submit\",\"requestId\":1}"))
        guard case let .invalidFields(type, detail) = error else {
            Issue.record("expected invalidFields, got \(error)")
            return
        }
        #expect(type == "submit")
        #expect(detail.contains("task"))
        #expect(detail == "missing field 'task'")
    }

    @Test func nestedMissingFieldGivesItsPath() throws {
        let error = decodeError("{\"type\":\"submit\",\"requestId\":1,\"task\":{\"id\":\"x\",\"command\":\"ls\"}}")
        #expect(error == .invalidFields(type: "submit", detail: "wrong type at 'task.command'"))
    }

    @Test func wrongFieldTypeIsInvalidFields() {
        let error = decodeError("{\"type\":\"status\",\"requestId\":\"one\",\"id\":\"x\"}")
        #expect(error == .invalidFields(type: "status", detail: "wrong type at 'requestId'"))
    }

    // MARK: Task ids and specs

    @Test(arguments: ["a", "Task_1", "job-2024.01.01", "..a", "A-Z_a-z.0-9", String(repeating: "x", count: 128)])
    func validTaskIds(_ id: String) {
        #expect(TaskID.problem(with: id) == nil)
    }

    @Test(arguments: ["has space", "slash/inside", "back\\slash", "semi;colon", "tab\t", "é", "a\0b", "star*"])
    func taskIdsWithInvalidCharacters(_ id: String) throws {
        let problem = try #require(TaskID.problem(with: id))
        #expect(problem.contains("may contain only"))
    }

    @Test func emptyAndOverlongTaskIds() throws {
        #expect(try #require(TaskID.problem(with: "")).contains("got 0"))
        #expect(try #require(TaskID.problem(with: String(repeating: "x", count: 129))).contains("got 129"))
    }

    @Test func dotAndDotDotAreReserved() throws {
        #expect(try #require(TaskID.problem(with: ".")).contains("reserved"))
        #expect(try #require(TaskID.problem(with: "..")).contains("reserved"))
    }

    @Test func generatedIdsHaveTheDocumentedShape() throws {
        let regex = try Regex("^job-1700000000123-[a-z0-9]{6}$")
        var seen = Set<String>()
        for _ in 0..<50 {
            let id = TaskID.generate(prefix: "job", at: 1_700_000_000_123)
            #expect(id.wholeMatch(of: regex) != nil, "\(id)")
            #expect(TaskID.problem(with: id) == nil)
            seen.insert(id)
        }
        #expect(seen.count > 40)
        #expect(TaskID.generate(at: 5).wholeMatch(of: try Regex("^task-5-[a-z0-9]{6}$")) != nil)
    }

    @Test func taskSpecProblems() {
        #expect(TaskSpec(command: ["true"]).problem() == nil)
        #expect(TaskSpec(command: []).problem() == "a task needs a command, or a runtime with a prompt")
        #expect(TaskSpec(command: [""]).problem() == "the command's program name is empty")
        #expect(TaskSpec(id: "..", command: ["true"]).problem()?.contains("reserved") == true)
        #expect(TaskSpec(command: ["env"], env: ["A=B": "x"]).problem()?.contains("environment") == true)
        #expect(TaskSpec(command: ["env"], env: ["": "x"]).problem()?.contains("environment") == true)
    }
}
