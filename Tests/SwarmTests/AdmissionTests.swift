import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler
@testable import SwarmNode

/// Admission at submit (issue 10, items 3, 6 and 13), pure: a task is refused unless every
/// frame it causes fits; its model is resolved from the runtime definitions workers report;
/// what exec will see is checked. Plus the worker's and scheduler's last lines of defence.
@Suite struct AdmissionTests {
    static func state(limits: [String: Int] = [:]) -> ClusterState {
        ClusterState(settings: SchedulerSettings(modelLimits: limits))
    }

    static func register(_ state: inout ClusterState, _ name: String, slots: Int = 4, runtimes: [RuntimeStatus] = []) throws {
        _ = try state.register(node: name, slots: slots, labels: [:], running: [], finished: [], address: nil, nowMs: 0, at: 0)
        state.setHealth(node: name, runtimes: runtimes)
    }

    static func runtime(_ name: String, defaultModel: String? = nil, command: [String]? = nil) -> RuntimeStatus {
        var status = RuntimeStatus(name: name, healthy: true)
        RuntimeDefinition(name: name, command: command ?? [name, "--model", "{model}"], defaultModel: defaultModel)
            .reportedFacts(into: &status)
        return status
    }

    static func assigned(_ directives: [SchedulerDirective]) -> [TaskAssignment] {
        directives.compactMap { if case .assign(_, let a) = $0 { a } else { nil } }
    }

    /// A spec whose JSON is exactly `bytes` long (padded through a label).
    static func spec(encodedBytes bytes: Int, id: String = "big") -> TaskSpec {
        var spec = TaskSpec(id: id, command: ["true"])
        spec.labels = ["pad": ""]
        let base = FrameBudget.encodedSize(of: spec)
        spec.labels = ["pad": String(repeating: "a", count: bytes - base)]
        return spec
    }

    // MARK: Item 3: frames

    @Test func aSpecAtTheFrameBudgetIsAcceptedAndOneByteMoreIsRefusedNamingSizeAndLimit() throws {
        #expect(FrameBudget.maxSpecBytes == 15 * 1024 * 1024)
        var state = Self.state()
        let fits = Self.spec(encodedBytes: FrameBudget.maxSpecBytes)
        #expect(FrameBudget.encodedSize(of: fits) == FrameBudget.maxSpecBytes)
        _ = try state.submit(fits, at: 1)
        let over = Self.spec(encodedBytes: FrameBudget.maxSpecBytes + 1, id: "over")
        let reason = "the task is \(FrameBudget.maxSpecBytes + 1) bytes as JSON; the limit is \(FrameBudget.maxSpecBytes)"
        #expect(throws: SchedulerError.self) { try state.submit(over, at: 1) }
        do { _ = try state.submit(over, at: 1) } catch {
            #expect(error.description.contains(reason))
        }
        // The frames the accepted task causes fit what its peers read.
        try Self.register(&state, "w1")
        let assignment = try #require(Self.assigned(state.schedule(nowMs: 2, at: 2)).first)
        #expect(MessageCodec.encode(.assign(.init(task: assignment))).count <= Frame.defaultMaxPayload)
        var info = try state.task("big")
        // The worst output tail: 64 KiB of control bytes, 6 bytes each once escaped.
        info.output = String(repeating: "\u{01}", count: 64 * 1024)
        info.reason = String(repeating: "r", count: 16 * 1024)
        info.waitReason = String(repeating: "w", count: 1024)
        #expect(MessageCodec.encode(.taskInfo(.init(requestId: Int.max, task: info))).count <= Frame.defaultMaxPayload)
        #expect(MessageCodec.encode(.waitResult(.init(requestId: Int.max, tasks: [info]))).count <= Frame.defaultMaxPayload)
    }

    @Test func theQuickBoundIsNeverUnderTheRealSize() {
        var spec = TaskSpec(id: String(repeating: "i", count: 128), command: ["\u{01}\"\\", "x"], env: ["K": "\u{7f}é"],
                            runtime: "r", model: "m", prompt: "p\n")
        spec.objective = "o"; spec.requirements = ["a", ""]; spec.complexity = "12"; spec.parent = "q"
        spec.labels = ["l": "\u{0}"]; spec.constraints = ["c": "d"]
        spec.timeout = 1.0e-7; spec.maxTimeout = 123456.789012345; spec.extendBy = 0.1; spec.extendWithin = 0.2
        spec.activityWindow = 0.3; spec.minBursts = Int.max; spec.silenceWarn = 1e-300; spec.silenceKill = 2.5e-300
        spec.killGrace = 3.3e-300; spec.burstGap = 4.4e-300; spec.priority = Int.min
        #expect(FrameBudget.admissionSize(of: spec) >= FrameBudget.encodedSize(of: spec))
        #expect(FrameBudget.admissionSize(of: TaskSpec(command: ["true"])) >= FrameBudget.encodedSize(of: TaskSpec(command: ["true"])))
    }

    @Test func escapingCountsTheWayTheFrameCarriesIt() throws {
        var state = Self.state()
        // 3 MiB of control bytes are 18 MiB once escaped: over, though the raw bytes are few.
        var spec = TaskSpec(id: "ctl", command: ["true"])
        spec.labels = ["x": String(repeating: "\u{01}", count: 3 * 1024 * 1024)]
        #expect(throws: SchedulerError.self) { try state.submit(spec, at: 1) }
        #expect(state.queuedCount == 0)
    }

    @Test func aBatchIsCheckedTaskByTaskAndAsAReplyAllOrNothing() throws {
        var state = Self.state()
        let small = TaskSpec(id: "ok", command: ["true"])
        var big = Self.spec(encodedBytes: FrameBudget.maxSpecBytes + 10)
        big.id = nil
        do {
            _ = try state.submitBatch([small, big], at: 1)
            Issue.record("an oversize task in a batch was accepted")
        } catch {
            #expect(error.description.contains("task 2: the task is"))
        }
        #expect(state.queuedCount == 0)
        #expect(throws: SchedulerError.unknownTask("ok")) { try state.task("ok") }
        // The reply: ids (and existing ones again) must fit one frame.
        #expect(FrameBudget.batchReplyProblem(givenIds: [], generated: 100_000) == nil)
        let long = (0..<70_000).map { String(format: "%0128d", $0) }
        #expect(FrameBudget.batchReplyProblem(givenIds: long, generated: 0)?.contains("smaller batches") == true)
    }

    @Test func deepContextIsRefusedBeforeItCouldBreakAnAssignment() throws {
        var state = Self.state()
        var deep = JSONValue.null
        for _ in 0..<(FrameBudget.maxContextDepth + 1) { deep = .array([deep]) }
        var spec = TaskSpec(id: "deep", command: ["true"])
        spec.context = deep
        #expect(throws: SchedulerError.self) { try state.submit(spec, at: 1) }
        guard case .array(let inner) = deep else { return }
        spec.context = inner[0]
        _ = try state.submit(spec, at: 1)
        try Self.register(&state, "w1")
        let assignment = try #require(Self.assigned(state.schedule(nowMs: 2, at: 2)).first)
        // The worker can read that assignment.
        #expect(try MessageCodec.decode(MessageCodec.encode(.assign(.init(task: assignment)))) == .assign(.init(task: assignment)))
    }

    @Test func aPermanentRejectEndsOnlyThatTaskAndKeepsTheWorker() throws {
        var state = Self.state()
        try Self.register(&state, "w1", slots: 1)
        _ = try state.submit(TaskSpec(id: "bad", command: ["true"]), at: 1)
        _ = try state.submit(TaskSpec(id: "good", command: ["true"]), at: 1)
        let first = try #require(Self.assigned(state.schedule(nowMs: 2, at: 2)).first)
        #expect(first.id == "bad")
        let directives = state.taskRejected(node: "w1", run: RunRef(id: "bad", attempt: 1), nowMs: 3, at: 3,
                                            permanent: "cannot read its assignment")
        #expect(directives == [.taskEnded(id: "bad")])
        let info = try state.task("bad")
        #expect(info.state == .failed && info.reason?.contains("cannot read its assignment") == true)
        // No hold on the worker: the next task goes there at once, with its attempts intact.
        let next = try #require(Self.assigned(state.schedule(nowMs: 3, at: 3)).first)
        #expect(next.id == "good" && next.attempt == 1)
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func theRunOfAnAssignmentIsReadFromItsFirstBytes() throws {
        let assignment = TaskAssignment(id: "t-1.x_y", attempt: 12, spec: TaskSpec(command: ["true"]), submittedAt: 1, placedAt: 2)
        #expect(AssignPeek.run(in: MessageCodec.encode(.assign(.init(task: assignment)))) == RunRef(id: "t-1.x_y", attempt: 12))
        #expect(AssignPeek.run(in: Array(#"{"type":"assign","task":{"id":"a","attempt":3,"spec":{"command":5}}}"#.utf8))
                == RunRef(id: "a", attempt: 3))
        #expect(AssignPeek.run(in: Array(#"{"type":"kill","id":"a","attempt":3}"#.utf8)) == nil)
        #expect(AssignPeek.run(in: Array(#"{"type":"assign","task":{"id":"../x","attempt":3}}"#.utf8)) == nil)
        #expect(AssignPeek.run(in: Array(#"{"type":"assign","task":{"id":"a"#.utf8)) == nil)
    }

    // MARK: Item 6: models

    @Test func aRuntimesDefaultModelIsResolvedAtSubmitAndItsLimitHolds() throws {
        var state = Self.state(limits: ["opus": 1])
        try Self.register(&state, "w1", runtimes: [Self.runtime("claude", defaultModel: "opus")])
        for i in 0..<3 { _ = try state.submit(TaskSpec(id: "t\(i)", runtime: "claude", prompt: "hi"), at: 1) }
        #expect(try state.task("t0").metrics.model == "opus")
        #expect(state.listTasks().allSatisfy { $0.metrics.model == "opus" })
        let placed = Self.assigned(state.schedule(nowMs: 2, at: 2))
        #expect(placed.count == 1)
        #expect(placed.first?.spec.model == "opus")
        #expect(state.runningCount(model: "opus") == 1)
        #expect(state.waitReason(for: "t1")?.reason.contains("model opus at its limit") == true)
    }

    @Test func runtimeDefinitionFactsTravelInRegisterAndHealth() throws {
        let status = Self.runtime("argv", defaultModel: "opus", command: ["agent", "--model", "{model}", "-p", "x{prompt}y"])
        #expect(status.defaultModel == "opus" && status.promptInArgv == true)
        #expect(status.promptArgumentBytes == 2)
        #expect(status.argvTemplateBytes == ["agent", "--model", "{model}", "-p", "x{prompt}y"].reduce(0) { $0 + ExecLimits.cost($1) })
        let register = Message.register(.init(slots: 1, labels: [:], running: [], finished: [], runtimes: [status]))
        #expect(try MessageCodec.decode(MessageCodec.encode(register)) == register)
        let health = Message.health(.init(runtimes: [status]))
        #expect(try MessageCodec.decode(MessageCodec.encode(health)) == health)
        var bad = status
        bad.argvTemplateBytes = -1
        #expect(bad.problem()?.contains("argvTemplateBytes") == true)
    }

    @Test func aModelUnknownAtSubmitIsResolvedBeforeAnyPlacement() throws {
        var state = Self.state(limits: ["opus": 1])
        for i in 0..<3 { _ = try state.submit(TaskSpec(id: "t\(i)", runtime: "claude", prompt: "hi"), at: 1) }
        #expect(try state.task("t0").metrics.model == nil)
        try Self.register(&state, "w1", runtimes: [Self.runtime("claude", defaultModel: "opus")])
        #expect(try state.task("t2").metrics.model == "opus")
        #expect(Self.assigned(state.schedule(nowMs: 2, at: 2)).count == 1)
        #expect(state.placementInvariantViolations().isEmpty)
    }

    @Test func workersThatDisagreeGiveTheFirstWorkersDefaultExplicitly() throws {
        var state = Self.state(limits: ["opus": 1])
        try Self.register(&state, "b", slots: 4, runtimes: [Self.runtime("claude", defaultModel: "sonnet")])
        try Self.register(&state, "a", slots: 1, runtimes: [Self.runtime("claude", defaultModel: "opus")])
        for i in 0..<3 { _ = try state.submit(TaskSpec(id: "t\(i)", runtime: "claude", prompt: "hi"), at: 1) }
        let placed = Self.assigned(state.schedule(nowMs: 2, at: 2))
        // Resolved once (to "a"'s default); the worker is told the model, so it runs what was counted.
        #expect(placed.count == 1)
        #expect(placed.allSatisfy { $0.spec.model == "opus" })
        // A default no task could name is not taken from a worker.
        var odd = Self.runtime("odd", defaultModel: "two words")
        odd.name = "odd"
        try Self.register(&state, "c", runtimes: [odd])
        _ = try state.submit(TaskSpec(id: "o", runtime: "odd", prompt: "hi"), at: 3)
        #expect(try state.task("o").metrics.model == nil)
        // A task naming its model keeps it.
        _ = try state.submit(TaskSpec(id: "own", runtime: "claude", model: "haiku", prompt: "hi"), at: 3)
        #expect(try state.task("own").metrics.model == "haiku")
    }

    @Test func aResolvedModelSurvivesARestart() throws {
        var state = Self.state(limits: ["opus": 1])
        try Self.register(&state, "w1", runtimes: [Self.runtime("claude", defaultModel: "opus")])
        for i in 0..<2 { _ = try state.submit(TaskSpec(id: "t\(i)", runtime: "claude", prompt: "hi"), at: 1) }
        _ = state.schedule(nowMs: 2, at: 2)
        let snapshots = state.takeChanges().tasks
        var restored = ClusterState(settings: SchedulerSettings(modelLimits: ["opus": 1]), restoring: snapshots, nowMs: 3, at: 3)
        #expect(restored.runningCount(model: "opus") == 1)
        // A worker with the runtime but no default of its own: the restored task keeps "opus",
        // whose one slot the restored run holds.
        try Self.register(&restored, "w2", runtimes: [Self.runtime("claude")])
        #expect(try restored.task("t1").metrics.model == "opus")
        #expect(Self.assigned(restored.schedule(nowMs: 4, at: 4)).isEmpty)
    }

    // MARK: Item 13: exec

    @Test func execLimitFollowsTheStackRlimit() {
        #expect(ExecLimits.limit(stackRlimit: 8 * 1024 * 1024) == 2 * 1024 * 1024)
        #expect(ExecLimits.limit(stackRlimit: nil) == 6 * 1024 * 1024)
        #expect(ExecLimits.limit(stackRlimit: 64 * 1024 * 1024) == 6 * 1024 * 1024)
        #expect(ExecLimits.limit(stackRlimit: 64 * 1024) == 128 * 1024)
    }

    @Test func manySmallVariablesCountTheirPointersAndAreRefusedAtSubmit() {
        // The issue's case: 209,000 variables of 5 bytes ("Knnn=" style) passed a count without pointers.
        var env: [String: String] = [:]
        for i in 0..<209_000 { env["V\(i)"] = "" }
        let spec = TaskSpec(id: "e", command: ["true"], env: env)
        let problem = spec.problem()
        #expect(problem?.contains("8-byte pointer") == true)
        // The budget's edge: exactly 1 MiB counted as exec counts it passes, one byte more does not.
        let argument = ExecLimits.taskBudget - ExecLimits.cost("true") - ExecLimits.cost(key: "A", value: "")
        var edge = TaskSpec(id: "edge", command: ["true"], env: ["A": ""])
        let chunk = ExecLimits.maxStringBytes - 1
        var rest = argument
        var i = 0
        var vars: [String: String] = ["A": ""]
        while rest > 0 {
            let key = "K\(i)"
            let valueBytes = min(chunk - key.utf8.count - 1, rest - key.utf8.count - 2 - ExecLimits.pointerBytes)
            vars[key] = String(repeating: "v", count: valueBytes)
            rest -= ExecLimits.cost(key: key, value: vars[key]!)
            i += 1
        }
        edge.env = vars
        #expect(rest == 0)
        #expect(edge.problem() == nil)
        edge.env!["A"] = "x"
        #expect(edge.problem()?.contains("the limit at submit is \(ExecLimits.taskBudget)") == true)
    }

    @Test func aNulInThePromptObjectiveOrARequirementIsRefused() {
        #expect(TaskSpec(id: "p", runtime: "r", prompt: "a\u{0}b").problem() == "prompt contains a NUL byte")
        var spec = TaskSpec(id: "o", command: ["true"])
        spec.objective = "x\u{0}"
        #expect(spec.problem() == "objective contains a NUL byte")
        spec.objective = nil
        spec.requirements = ["fine", "bad\u{0}"]
        #expect(spec.problem() == "requirement 2 contains a NUL byte")
    }

    @Test func aPromptThatGoesIntoArgvMustFitOneArgumentWhenTheRuntimeIsKnown() throws {
        var state = Self.state()
        let prompt = String(repeating: "p", count: 200_000)
        // Not known yet: accepted (the worker checks it before spawning).
        _ = try state.submit(TaskSpec(id: "early", runtime: "argv", prompt: prompt), at: 1)
        try Self.register(&state, "w1", runtimes: [Self.runtime("argv", command: ["agent", "-p", "{prompt}"])])
        do {
            _ = try state.submit(TaskSpec(id: "late", runtime: "argv", prompt: prompt), at: 2)
            Issue.record("a 200 KB prompt into argv was accepted")
        } catch {
            #expect(error.description.contains("puts the prompt into argv"))
        }
        let fits = String(repeating: "p", count: ExecLimits.maxStringBytes - 1 - TaskSpec.promptExtraBytes)
        _ = try state.submit(TaskSpec(id: "fits", runtime: "argv", prompt: fits), at: 3)
        // On stdin the same prompt is fine.
        try Self.register(&state, "w2", runtimes: [Self.runtime("stdin", command: ["agent"])])
        _ = try state.submit(TaskSpec(id: "stdin", runtime: "stdin", prompt: prompt), at: 4)
    }

    @Test func theWorkerChecksTheRealArgvAndEnvironmentBeforeSpawning() throws {
        let dir = NSTemporaryDirectory() + "swarm-admission-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = WorkerConfig(name: "w", slots: 1, dataDir: dir)
        config.runtimes = [RuntimeDefinition(name: "argv", command: ["agent", "{prompt}"])]
        let health = HealthMonitor(runtimes: config.runtimes, nowMs: 0)
        func plan(_ spec: TaskSpec, base: [String: String] = [:], limit: Int = ExecLimits.typicalLimit) -> String? {
            let task = TaskAssignment(id: spec.id ?? "t", attempt: 1, spec: spec)
            switch LaunchPlan.make(task: task, config: config, baseEnvironment: base, health: health, logsDir: dir,
                                   execLimit: limit, clocks: Clocks(monotonic: { 0 }, wall: { 0 })) {
            case .success: return nil
            case .failure(.fail(let state, let reason)): return "\(state.rawValue): \(reason)"
            case .failure(.refuse(let reason)): return "refused: \(reason)"
            }
        }
        #expect(plan(TaskSpec(id: "ok", runtime: "argv", prompt: "hi")) == nil)
        let long = plan(TaskSpec(id: "long", runtime: "argv", prompt: String(repeating: "p", count: 200_000)))
        // The prompt, then the line naming the task's directory (issue 11 item 5).
        let promptBytes = 200_001 + "\nYou are working in the directory \(dir)/work/long.\n".utf8.count
        #expect(long?.hasPrefix("spawn_failed: exec would refuse this task: argument 1 is \(promptBytes) bytes") == true)
        let nul = plan(TaskSpec(id: "nul", runtime: "argv", prompt: "a\u{0}b"))
        #expect(nul?.contains("argument 1 contains a NUL byte") == true)
        // The worker's own environment counts: a task fine at submit fails clearly when the
        // worker's inherited environment leaves it no room.
        var inherited: [String: String] = [:]
        for i in 0..<25 { inherited["BIG\(i)"] = String(repeating: "x", count: 100_000) }
        let crowded = plan(TaskSpec(id: "c", command: ["true"]), base: inherited)
        #expect(crowded?.hasPrefix("spawn_failed: exec would refuse this task: argv (1 strings") == true)
        #expect(crowded?.contains("exec's limit here is \(ExecLimits.typicalLimit)") == true)
        #expect(plan(TaskSpec(id: "c", command: ["true"]), base: inherited, limit: 6 * 1024 * 1024) == nil)
    }
}
