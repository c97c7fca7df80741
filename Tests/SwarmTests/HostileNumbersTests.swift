import Foundation
import Testing
import SwarmProtocol

/// Issue 10, items 1 and 2 end to end: extreme numbers sent as raw frames to a real
/// `swarm scheduler` process (a trap would kill it) and through the CLI's flags.
@Suite(.serialized) struct HostileNumbersTests {
    /// A raw peer past the (tokenless) handshake.
    static func peer(_ port: Int, role: PeerRole, name: String) throws -> RawSocket {
        let socket = try RawSocket(port: port)
        socket.send(.hello(.init(role: role, name: name)))
        guard case .welcome? = socket.readMessage() else { throw POSIXError(.EPROTO) }
        return socket
    }

    static func isRegistered(_ message: Message) -> Bool {
        if case .registered = message { return true }
        return false
    }

    /// The next message `skip` does not pass over, within a few frames.
    static func next(_ socket: RawSocket, skipping skip: (Message) -> Bool = { _ in false }) -> Message? {
        for _ in 0..<20 {
            guard let message = socket.readMessage() else { return nil }
            if !skip(message) { return message }
        }
        return nil
    }

    static func isError(_ message: Message?, _ code: ErrorCode) -> Bool {
        if case .error(let e)? = message { return e.code == code }
        return false
    }

    /// Item 1: priority Int64.min (and its neighbours) in a raw submit.
    @Test func extremeSubmitNumbersNeverKillTheScheduler() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness)
        let port = Int(address.split(separator: ":").last!)!
        let client = try Self.peer(port, role: .client, name: "c")
        for (n, priority) in [Int.min, Int.max, Int.min + 1, -1_000_000_001].enumerated() {
            var spec = TaskSpec(command: ["true"])
            spec.priority = priority
            client.send(.submit(.init(requestId: n, task: spec)))
            #expect(Self.isError(Self.next(client), .invalidTask), "priority \(priority)")
        }
        var spec = TaskSpec(command: ["true"])
        spec.minBursts = .min
        client.send(.submit(.init(requestId: 9, task: spec)))
        #expect(Self.isError(Self.next(client), .invalidTask))
        let tasks = try harness.run(["tasks", "--scheduler", address, "--json"])
        #expect(tasks.status == 0 && tasks.stdout.hasPrefix("["), "tasks: \(tasks.stderr)")
    }

    /// Item 2: a worker's register, health, heartbeat, taskStarted and results with numbers
    /// out of range.
    @Test func extremeWorkerNumbersNeverKillTheScheduler() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness)
        let port = Int(address.split(separator: ":").last!)!
        let client = try Self.peer(port, role: .client, name: "c")

        // Item 2: a register whose runtime counts are Int.max is refused (error, then closed).
        let bad = try Self.peer(port, role: .worker, name: "bad")
        bad.send(.register(.init(slots: 1, labels: [:], running: [], finished: [],
                                 runtimes: [RuntimeStatus(name: "r", healthy: true, passed: .max, failed: 1, totalLatencyMs: .max)])))
        #expect(Self.isError(Self.next(bad), .badMessage))
        #expect(bad.readUntilClosed().closed)

        // A worker that registers properly, then reports impossible numbers.
        let evil = try Self.peer(port, role: .worker, name: "evil")
        evil.send(.register(.init(slots: 1, labels: [:], running: [], finished: [])))
        guard case .registered? = Self.next(evil) else { Issue.record("no registered"); return }
        evil.send(.health(.init(runtimes: [RuntimeStatus(name: "r", healthy: true, passed: .max, failed: .max)])))
        #expect(Self.isError(Self.next(evil, skipping: Self.isRegistered), .badMessage))
        evil.send(.heartbeat(.init(freeSlots: 1, running: [], usage: ProcessUsage(pid: -1, cpuUserMs: .max, cpuSystemMs: .min, maxRssKiB: .max, at: .min))))
        #expect(Self.isError(Self.next(evil, skipping: Self.isRegistered), .badMessage))

        // Two tasks, both run there; each result carries Int64.max figures.
        for id in ["victim-1", "victim-2"] {
            client.send(.submit(.init(requestId: 100, task: TaskSpec(id: id, command: ["true"]))))
            guard case .submitted? = Self.next(client) else { Issue.record("\(id) not submitted"); return }
            guard case .assign(let assign)? = Self.next(evil, skipping: Self.isRegistered) else {
                Issue.record("\(id) not assigned")
                return
            }
            evil.send(.taskStarted(.init(id: id, attempt: assign.task.attempt, pid: 1, startedAt: -1)))
            #expect(Self.isError(Self.next(evil, skipping: Self.isRegistered), .badMessage))
            var result = TaskResult(id: id, state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "ok",
                                    pid: 1, attempt: assign.task.attempt, startedAt: -1, finishedAt: .max)
            result.metrics.extensions = .max
            result.metrics.silenceWarnings = .max
            evil.send(.taskFinished(.init(result: result)))
            guard case .resultAck? = Self.next(evil, skipping: Self.isRegistered) else { Issue.record("\(id): result not acknowledged"); return }
        }

        // The scheduler is alive, its statistics readable, and the runs ended `failed`
        // saying why (not hanging, not with the impossible figures).
        let stats = try harness.run(["stats", "--scheduler", address, "--json"])
        #expect(stats.status == 0, "stats: \(stats.stderr)")
        let status = try harness.run(["status", "--scheduler", address, "--json", "victim-2"])
        #expect(status.status == 0, "status: \(status.stderr)")
        let info = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(info?["state"] as? String == "failed")
        #expect((info?["reason"] as? String)?.contains("invalid result") == true)
        #expect(info?["extensions"] as? Int == 0)
        #expect(info?["finishedAt"] as? Int != Int(Int64.max))
    }

    /// Item 1 on the CLI: a flag with an extreme number is a one-line usage error, not a trap.
    @Test func extremeNumberFlagsAreUsageErrors() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let cases: [[String]] = [
            ["--priority", "-9223372036854775808"],
            ["--priority", "9223372036854775807"],
            ["--min-bursts", "-9223372036854775808"],
            ["--timeout", "1e400"],
            ["--timeout", "nan"],
            ["--max-timeout", "-inf"],
            ["--kill-grace", "1e300"],
        ]
        for flags in cases {
            let r = try harness.run(["submit", "--scheduler", "127.0.0.1:1"] + flags + ["--", "true"])
            #expect(r.status == 64, "\(flags): exit \(r.status), \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines.first?.hasPrefix("swarm: error: ") == true, "\(flags): \(r.stderr)")
        }
    }
}
