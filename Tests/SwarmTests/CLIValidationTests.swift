import Foundation
import Testing
import SwarmCluster
import SwarmProtocol

/// Issue 10 items 15, 16, 19 and 20 through the real `swarm` binary: broken pipes, counts,
/// `wait` timeouts and validation that every role shares.
@Suite struct CLIValidationTests {
    /// A usage error: exit 64 and exactly one `swarm: error:` line on stderr.
    static func expectUsageError(_ r: ProcessHarness.RunResult, _ what: String, containing text: String? = nil,
                                 sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 64, "\(what): exit \(r.status), stderr \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && r.stderr.hasPrefix("swarm: error: "), "\(what): \(r.stderr)", sourceLocation: sourceLocation)
        if let text { #expect(r.stderr.contains(text), "\(what): \(r.stderr)", sourceLocation: sourceLocation) }
    }

    /// A bad `--after` / `--after-any` id (and a bad `--file` line's) is quoted in the error
    /// with its control characters escaped: one line, no terminal escape, no line of its own.
    @Test func aBadDependencyIdIsQuotedEscapedInTheErrorLine() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        for flag in ["--after", "--after-any"] {
            let r = try harness.run(["submit", "--scheduler", "127.0.0.1:1", flag, "ok,a\u{1b}[2Jb\rswarm:fake", "--", "true"], timeout: 20)
            Self.expectUsageError(r, flag, containing: "'a\\u{1b}[2Jb\\rswarm:fake'")
            #expect(!r.stderr.contains("\u{1b}") && !r.stderr.contains("\r"), "\(r.stderr)")
        }
        #expect(TaskID.problem(with: "x\u{9b}y\n") == "task id 'x\\u{9b}y\\n' may contain only A-Z a-z 0-9 . _ -")
    }

    // MARK: Item 16: every count is validated

    @Test func everyCountOutOfRangeIsAOneLineUsageError() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let attacks = ["0", "-1", "-9223372036854775808", "9223372036854775807", "99999999999999999999999", "100000"]
        let flags: [(verb: [String], flag: String, allowsZero: Bool)] = [
            (["demo"], "--workers", false), (["demo"], "--slots", false),
            (["demo"], "--visible", true), (["demo"], "--batch", true),
            (["up"], "--workers", false), (["up"], "--slots", false),
            (["worker", "--scheduler", "127.0.0.1:1"], "--slots", false),
            (["worker", "--scheduler", "127.0.0.1:1", "--slots", "1"], "--checkout-slots", false),
            (["bench"], "--local-workers", false), (["bench"], "--repeats", false), (["bench"], "--tasks", false),
            (["bench"], "--scale-steps", false),
        ]
        for (verb, flag, allowsZero) in flags {
            for value in attacks {
                if value == "0" && allowsZero { continue }
                // 100000 is in range for slots and batch sizes; the others refuse it.
                if value == "100000" && ["--slots", "--batch", "--tasks", "--scale-steps"].contains(flag) { continue }
                let r = try harness.run(verb + ["\(flag)=\(value)"], timeout: 20)
                Self.expectUsageError(r, "\(verb[0]) \(flag)=\(value)")
            }
        }
        // The worker's prefetch hold (seconds, 0.001 to 86400): zero, negative, NaN, huge.
        for value in ["0", "-1", "0.0004", "nan", "86401", "1e300"] {
            let r = try harness.run(["worker", "--scheduler", "127.0.0.1:1", "--slots", "1", "--prefetch-hold=\(value)"], timeout: 20)
            Self.expectUsageError(r, "worker --prefetch-hold=\(value)", containing: "--prefetch-hold")
        }
        // wait's timeout: zero, negative, NaN, huge.
        for value in ["0", "-1", "nan", "1e300"] {
            Self.expectUsageError(try harness.run(["wait", "--timeout=\(value)", "x"]), "wait --timeout=\(value)")
        }
    }

    /// A negative number after a space (`--workers -1`, not `--workers=-1`) is the value,
    /// said out of range with the value, not "Missing value for '--workers <workers>'".
    @Test func aNegativeNumberAfterASpaceIsTheValueOutOfRange() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let cases: [[String]] = [
            ["up", "--workers", "-1"], ["up", "--slots", "-1"], ["demo", "--slots", "-1"], ["demo", "--batch", "-1"],
            ["worker", "--scheduler", "127.0.0.1:1", "--slots", "-1"], ["scheduler", "--lost-after", "-1"],
            ["scheduler", "--heartbeat", "-1"], ["wait", "x", "--timeout", "-1"], ["bench", "--repeats", "-1"],
        ]
        for arguments in cases {
            let what = arguments.joined(separator: " ")
            let r = try harness.run(arguments, timeout: 20)
            // bench names the range without repeating the value.
            Self.expectUsageError(r, what, containing: arguments[0] == "bench" ? "must be" : "-1")
            #expect(!r.stderr.contains("Missing value"), "\(what)")
        }
    }

    // MARK: Item 20: validation shared by all roles, one line each

    @Test func inconsistentOptionsAreOneLineUsageErrors() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let config = "\(harness.dir)/cluster.json"
        try #"{"scheduler": {"heartbeatSeconds": 20, "lostAfterSeconds": 10}}"#.write(toFile: config, atomically: true, encoding: .utf8)
        for verb in [["up"], ["scheduler"], ["worker", "--slots", "1", "--name", "w"]] {
            Self.expectUsageError(try harness.run(verb + ["--config", config]), "\(verb[0]) --config", containing: "heartbeatSeconds")
        }
        Self.expectUsageError(try harness.run(["scheduler", "--heartbeat", "20"]), "scheduler --heartbeat 20",
                              containing: "must be shorter than --lost-after")
        Self.expectUsageError(try harness.run(["worker", "--slots", "1", "--work-root", "A", "--work-dir", "B"]),
                              "worker --work-root --work-dir", containing: "exclude each other")
        Self.expectUsageError(try harness.run(["scheduler", "--model-limit", "opus"]), "--model-limit opus", containing: "KEY=VALUE")
        Self.expectUsageError(try harness.run(["scheduler", "--model-limit", "opus=99999999999"]), "--model-limit huge")
        Self.expectUsageError(try harness.run(["worker", "--slots", "1", "--label", "bad"]), "--label bad", containing: "KEY=VALUE")
        Self.expectUsageError(try harness.run(["worker", "--slots", "1", "--log-level", "loud"]), "--log-level loud")

        try #"{"runtimes": {"c": {"command": ["claude", "--model", "{modle}"]}}}"#.write(toFile: config, atomically: true, encoding: .utf8)
        Self.expectUsageError(try harness.run(["up", "--config", config]), "{modle}", containing: "unknown placeholder {modle}")

        let bare = try harness.run([])
        #expect(bare.status == 64)
        #expect(bare.stderr.contains("USAGE:") && bare.stderr.hasSuffix("swarm: error: no command given (see 'swarm --help')\n"))
    }

    @Test func aStateDirThatIsNotADirectoryIsSaidInWords() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let up = try harness.run(["up", "--listen", "127.0.0.1:0", "--data-dir", "/dev/null"], timeout: 20)
        #expect(up.status == 1)
        #expect(up.stderr.contains("/dev/null exists and is not a directory"), "\(up.stderr)")
        #expect(!up.stderr.contains("NSCocoaErrorDomain"))
        let scheduler = try harness.run(["scheduler", "--listen", "127.0.0.1:0", "--state-dir", "/dev/null/x"], timeout: 20)
        #expect(scheduler.status == 1)
        #expect(scheduler.stderr.contains("/dev/null exists and is not a directory"), "\(scheduler.stderr)")
    }

    // MARK: Item 19: a wait that times out says what it still waits for

    static let waitScript: @Sendable (Message) -> FakeScheduler.Reply = { m in
        switch m {
        case .wait:
            return .init(messages: [])  // never answers: c is still running
        case .status(let r):
            let state: TaskState = r.id == "a" ? .succeeded : r.id == "b" ? .failed : .running
            let info = TaskInfo(id: r.id, state: state, command: ["true"], exitCode: state == .succeeded ? 0 : state == .failed ? 3 : nil,
                                attempts: 1, submittedAt: 1)
            return .init(messages: [.taskInfo(.init(requestId: r.requestId, task: info))])
        default:
            return .init(messages: [.error(.init(code: .unexpected, reason: "unexpected", requestId: m.requestId))])
        }
    }

    @Test func waitTimeoutReportsPendingAndEndedTasks() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let fake = try FakeScheduler(script: Self.waitScript)
        defer { fake.stop() }
        let text = try harness.run(["wait", "--scheduler", fake.address, "--timeout", "0.5", "a", "b", "c"])
        #expect(text.status == 124)
        #expect(text.stdout == "a succeeded (exit 0)\nb failed (exit 3)\nc running (still pending)\n")
        #expect(text.stderr == "swarm: error: timed out after 0.5 s waiting for 3 tasks: 1 still pending (c), 2 ended\n")
        let json = try harness.run(["wait", "--scheduler", fake.address, "--timeout", "0.5", "--json", "a", "b", "c"])
        #expect(json.status == 124)
        let tasks = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(tasks.map { $0["id"] as? String } == ["a", "b", "c"])
        #expect(tasks.map { $0["state"] as? String } == ["succeeded", "failed", "running"])
    }

    // MARK: Item 15: a reader that stops early ends the command quietly

    static let manyTasks: @Sendable (Message) -> FakeScheduler.Reply = { m in
        guard case .listTasks(let r) = m else {
            return .init(messages: [.error(.init(code: .unexpected, reason: "unexpected", requestId: m.requestId))])
        }
        let tasks = (0..<20_000).map { TaskInfo(id: "task-\($0)", state: .succeeded, command: ["true"], exitCode: 0, attempts: 1, submittedAt: 1) }
        return .init(messages: [.taskList(.init(requestId: r.requestId, tasks: tasks))])
    }

    @Test func closedPipeEndsTheCommandQuietlyWithStatusZero() throws {
        let fake = try FakeScheduler(script: Self.manyTasks)
        defer { fake.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessHarness.swarmBinary)
        process.arguments = ["tasks", "--scheduler", fake.address]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        // Read a little, as `head -c 100` would, then close the read end.
        var got = 0
        while got < 100 {
            let chunk = out.fileHandleForReading.readData(ofLength: 100 - got)
            if chunk.isEmpty { break }
            got += chunk.count
        }
        #expect(got == 100)
        try out.fileHandleForReading.close()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!process.isRunning)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "killed by signal \(process.terminationStatus)")
        #expect(process.terminationStatus == 0)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.isEmpty, "\(stderr)")
    }
}

/// Item 20 at the config layer: the rules every role's config load applies.
@Suite struct SharedConfigValidationTests {
    @Test func configRefusesWhatEveryRoleWouldRefuse() {
        let bad: [(String, String)] = [
            (#"{"scheduler": {"heartbeatSeconds": 20, "lostAfterSeconds": 10}}"#, "must be shorter than"),
            (#"{"scheduler": {"heartbeatSeconds": 20}}"#, "must be shorter than"),
            (#"{"scheduler": {"lostAfterSeconds": 0}}"#, "between 0.01 and 1000000"),
            (#"{"runtimes": {"c": {"command": ["c", "{modle}"]}}}"#, "unknown placeholder {modle}"),
            (#"{"runtimes": {"c": {"command": ["c", "--id={ID}"]}}}"#, "unknown placeholder {ID}"),
            (#"{"workers": {"a": {"workDir": "/x", "workRoot": "/y"}}}"#, "exclude each other"),
            (#"{"scheduler": {"modelLimits": {"opus": 1e300}}}"#, "from 0 to 1000000000"),
            (#"{"contextInlineMax": 1e300}"#, "from 0 to 1000000000"),
            (#"{"timeouts": {"minBursts": 1e300}}"#, "from 0 to 1000000"),
            (#"{"timeouts": {"burstGap": -0.5}}"#, "timeouts.burstGap must be 0 to 2592000 seconds"),
        ]
        for (text, message) in bad {
            #expect(throws: ConfigError.self, "\(text)") { try ClusterFile.parse(Data(text.utf8)) }
            do { _ = try ClusterFile.parse(Data(text.utf8)) } catch {
                #expect("\(error)".contains(message), "\(text): \(error)")
            }
        }
    }

    @Test func bracesThatAreNotPlaceholdersStayLiteral() throws {
        let file = try ClusterFile.parse(Data(#"{"runtimes": {"c": {"command": ["c", "{\"a\": 1}", "{}", "{model}", "x{id}y"]}}}"#.utf8))
        #expect(file.runtimes["c"]?.command.count == 5)
    }
}
