import Foundation
import Testing
import SwarmClient
@testable import SwarmProtocol
@testable import SwarmScheduler

/// Issue 16 item 3: `secretEnv` sealed at the scheduler, opened only into an assignment.
@Suite struct SecretEnvTests {
    static let token = ClusterToken("cluster-secret-0")
    static let sealer = SecretSealer(token: token)

    @Test func aSealedValueOpensOnlyUnderItsKeyAndName() throws {
        let sealed = Self.sealer.seal("hunter2", name: "API_KEY")
        #expect(sealed.hasPrefix(SecretSealer.prefix))
        #expect(!sealed.contains("hunter2"))
        #expect(Self.sealer.open(sealed, name: "API_KEY") == "hunter2")
        #expect(Self.sealer.seal("hunter2", name: "API_KEY") != sealed)  // a fresh nonce each time
        #expect(Self.sealer.open(sealed, name: "OTHER") == nil)
        #expect(SecretSealer(token: ClusterToken("another")).open(sealed, name: "API_KEY") == nil)
        #expect(SecretSealer(token: ClusterToken(Self.token.taskCredential(for: "t"))).open(sealed, name: "API_KEY") == nil)
        var damaged = Array(sealed.utf8)
        damaged[damaged.count - 5] = damaged[damaged.count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(Self.sealer.open(String(decoding: damaged, as: UTF8.self), name: "API_KEY") == nil)
        #expect(Self.sealer.open("hunter2", name: "API_KEY") == nil)
    }

    /// What exec will take for a sealed value is known from its length, at every padding.
    @Test func theSizeOfASealedValueGivesItsPlainSize() {
        for n in Array(0...40) + [Bounds.secretValueBytes - 1, Bounds.secretValueBytes] {
            let sealed = Self.sealer.seal(String(repeating: "x", count: n), name: "K")
            #expect(SecretSealer.plainBytes(sealed) == n, "\(n)")
            #expect(sealed.utf8.count == SecretSealer.sealedBytes(n), "\(n)")
        }
        #expect(SecretSealer.plainBytes("plain") == 5)
    }

    /// The edges: 32 variables and 16 KiB a value; names unlike env's; no NUL in a plain value.
    @Test func secretsAreBoundedInCountAndSize() {
        func problem(_ secrets: [String: String], env: [String: String]? = nil, plain: Bool = false) -> String? {
            var spec = TaskSpec(id: "t", command: ["true"], env: env)
            spec.secretEnv = secrets
            return plain ? spec.secretProblem(plain: true) : spec.problem()
        }
        let many = Dictionary(uniqueKeysWithValues: (1...Bounds.secretsPerTask).map { ("K\($0)", "v") })
        #expect(problem(many) == nil)
        #expect(problem(many.merging(["K0": "v"]) { a, _ in a }) == "a task may carry at most 32 secret variables (secretEnv), got 33")
        let full = String(repeating: "v", count: Bounds.secretValueBytes)
        #expect(problem(["K": full]) == nil)
        #expect(problem(["K": full + "v"]) == "secret K is over 16384 bytes")
        #expect(problem(["K": Self.sealer.seal(full, name: "K")]) == nil)  // the scheduler's copy
        #expect(problem(["K": SecretSealer.prefix + full + "v"], plain: true) == "secret K is over 16384 bytes")
        #expect(problem(["K": "a\u{0}b"]) == "secret K contains a NUL byte")
        #expect(problem(["K": SecretSealer.prefix + "\u{0}"], plain: true) == "secret K contains a NUL byte")
        #expect(problem(["A=B": "v"]) == "invalid secret variable name 'A=B'")
        #expect(problem(["": "v"]) == "invalid secret variable name ''")
        #expect(problem(["K": "v"], env: ["K": "w"]) == "K is both in env and in secretEnv")
        // Counted in exec's budget as the plain value it becomes.
        let big = Dictionary(uniqueKeysWithValues: (1...32).map { ("K\($0)", String(repeating: "v", count: 16_000)) })
        let pads = Dictionary(uniqueKeysWithValues: (1...5).map { ("PAD\($0)", String(repeating: "p", count: 120_000)) })
        var spec = TaskSpec(id: "t", command: ["true"], env: pads)
        #expect(spec.problem() == nil)
        spec.secretEnv = big
        #expect(spec.problem()?.hasPrefix("command and environment take") == true)
        spec.secretEnv = Self.sealer.seal(big)
        #expect(spec.problem()?.hasPrefix("command and environment take") == true)
        spec.env = nil
        #expect(spec.problem() == nil)
    }

    @Test func theSchedulerSealsWhatArrivesAndOpensItOnlyIntoTheAssignment() throws {
        var spec = TaskSpec(id: "t1", command: ["true"])
        spec.secretEnv = ["API_KEY": "hunter2"]
        let message = Message.submit(.init(requestId: 7, task: spec))
        let sealed = try SecretSealing.sealed(message, sealer: { Self.sealer })
        guard case .submit(let submit) = sealed else { Issue.record("not a submit"); return }
        let stored = try #require(submit.task.secretEnv?["API_KEY"])
        #expect(stored.hasPrefix(SecretSealer.prefix))
        #expect(!String(decoding: try MessageCodec.encode(sealed), as: UTF8.self).contains("hunter2"))
        // In a batch too, each task.
        let batch = try SecretSealing.sealed(.submitBatch(.init(requestId: 1, tasks: [TaskSpec(id: "a", command: ["true"]), spec])), sealer: { Self.sealer })
        #expect(!String(decoding: try MessageCodec.encode(batch), as: UTF8.self).contains("hunter2"))
        // No key, no secrets.
        #expect(throws: ClientRefusal(code: .invalidTask, reason: "secretEnv needs a cluster token on the scheduler: secret values are kept encrypted under a key derived from it (start it with --token-file or SWARM_TOKEN)")) {
            try SecretSealing.sealed(message, sealer: { nil })
        }
        let plainTask = Message.submit(.init(requestId: 1, task: TaskSpec(id: "p", command: ["true"])))
        #expect(try SecretSealing.sealed(plainTask, sealer: { nil }) == plainTask)
        // Checked as plain before sealing hides the bytes.
        var bad = spec
        bad.secretEnv = ["K": "a\u{0}"]
        #expect(throws: ClientRefusal(code: .invalidTask, reason: "task 2 of the batch: secret K contains a NUL byte")) {
            try SecretSealing.sealed(.submitBatch(.init(requestId: 1, tasks: [spec, bad])), sealer: { Self.sealer })
        }

        let assignment = TaskAssignment(id: "t1", attempt: 1, spec: submit.task)
        let sent = try SecretSealing.outfitted(assignment, sealer: { Self.sealer }, token: Self.token).get()
        #expect(sent.spec.secretEnv == ["API_KEY": "hunter2"])
        #expect(sent.taskToken == Self.token.taskCredential(for: "t1"))
        let other = SecretSealing.outfitted(assignment, sealer: { SecretSealer(token: ClusterToken("rotated")) }, token: Self.token)
        #expect(throws: SecretOpenFailure(name: "API_KEY")) { try other.get() }
        #expect(SecretSealing.openFailure(SecretOpenFailure(name: "API_KEY")).contains("cannot decrypt its secret API_KEY"))
    }

    /// `--secret-env K=FILE` and a line's `secretEnv`: each file read by the client, less one
    /// trailing newline.
    @Test func theClientReadsEachSecretFromItsFile() throws {
        var options = TaskOptions()
        options.command = ["true"]
        options.secretEnvFiles = ["A": "a.txt", "B": "/abs/b.txt", "C": "c.txt"]
        let files = ["/base/a.txt": "alpha\n", "/abs/b.txt": "beta\r\n", "/base/c.txt": "gamma\n\n"]
        let spec = try options.spec(baseDirectory: "/base", naming: .fields, readFile: { path, _ in
            guard let text = files[path] else { throw FileReadError("no such file") }
            return text
        })
        #expect(spec.secretEnv == ["A": "alpha", "B": "beta", "C": "gamma\n"])
        options.secretEnvFiles = ["A": "missing"]
        #expect(throws: TaskOptionsError("cannot read --secret-env A 'missing': no such file")) {
            try options.spec(readFile: { _, _ in throw FileReadError("no such file") })
        }
    }
}
