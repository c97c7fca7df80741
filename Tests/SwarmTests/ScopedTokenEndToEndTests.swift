import Foundation
import Testing

/// Issue 16 items 2 and 3 (and their item-4 tests) with real `swarm` processes: each scoped
/// token does its role's share and no more, and a secret given with `--secret-env` reaches
/// its task's environment and nowhere else on disk or in any output.
@Suite(.serialized) struct ScopedTokenEndToEndTests {
    /// The hex of `text`'s bytes, as `od -An -tx1` prints them once blanks are dropped.
    static func hex(_ text: String) -> String { text.utf8.map { String(format: "%02x", $0) }.joined() }

    /// Every file under `dir` but `except`, read whole (bounded: the harness's own files).
    static func filesContaining(_ needle: String, under dir: String, except: Set<String>) -> [String] {
        var found: [String] = []
        let bytes = Array(needle.utf8)
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return ["cannot list \(dir)"] }
        var seen = 0
        while let relative = walker.nextObject() as? String, seen < 100_000 {
            seen += 1
            let path = "\(dir)/\(relative)"
            var isDirectory: ObjCBool = false
            guard !except.contains(path), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
                  !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else { continue }
            if Array(data).firstRange(of: bytes) != nil { found.append(relative) }
        }
        return found
    }

    /// A scheduler with all four tokens (trace-level log, durable state, HTTP listener) and a
    /// worker holding only the worker token.
    struct Cluster {
        let harness: ProcessHarness
        var files: [String: String] = [:]
        var address = ""
        var http = ""
        /// The worker's HTTP listener (its `/metrics`).
        var workerHTTP = ""
        /// Client options with the read, submit or cluster token.
        var read: [String] { ["--scheduler", address, "--token-file", files["read"]!] }
        var submit: [String] { ["--scheduler", address, "--token-file", files["submit"]!] }
        var cluster: [String] { ["--scheduler", address, "--token-file", files["cluster"]!] }

        init(_ harness: ProcessHarness) throws {
            self.harness = harness
            for role in ["cluster", "worker", "submit", "read"] {
                files[role] = "\(harness.dir)/\(role).token"
                try "\(role)-token-\(UInt64.random(in: 0...UInt64.max))\n".write(toFile: files[role]!, atomically: true, encoding: .utf8)
            }
            let scheduler = try harness.start("scheduler", [
                "scheduler", "--listen", "127.0.0.1:0", "--state-dir", "\(harness.dir)/state", "--log-level", "trace",
                "--token-file", files["cluster"]!, "--worker-token-file", files["worker"]!,
                "--submit-token-file", files["submit"]!, "--read-token-file", files["read"]!, "--http-listen", "127.0.0.1:0"])
            address = String(try #require(scheduler.waitForLine(containing: "listening on")?.split(separator: " ").last))
            http = String(try #require(scheduler.waitForLine(containing: "http listening on")?.split(separator: " ").last))
            let worker = try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w1", "--log-level", "trace",
                                                      "--data-dir", "\(harness.dir)/w1", "--token-file", files["worker"]!,
                                                      "--http-listen", "127.0.0.1:0"])
            workerHTTP = String(try #require(worker.waitForLine(containing: "http listening on")?.split(separator: " ").last))
            _ = try EndToEndTests.waitForNodes(harness, address, count: 1, extra: ["--token-file", files["read"]!])
        }

        /// The token of `role` as its file holds it.
        func token(_ role: String) throws -> String {
            try String(contentsOfFile: files[role]!, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Each token against what its role may not do (one line, non-zero each time), and the
    /// HTTP listener's bearer tokens.
    @Test func eachTokenDoesItsRolesShareAndNoMore() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let c = try Cluster(harness)
        // A submit token cannot register a worker; the worker token cannot act as a client.
        let fake = try harness.run(["worker", "--scheduler", c.address, "--slots", "1", "--name", "fake",
                                    "--data-dir", "\(harness.dir)/fake", "--token-file", c.files["submit"]!], timeout: 30)
        #expect(fake.status == 1)
        #expect(fake.stderr.contains("a submit token may not register a worker"), "\(fake.stderr)")
        let workerAsClient = try harness.run(["nodes", "--scheduler", c.address, "--token-file", c.files["worker"]!])
        #expect(workerAsClient.status != 0)
        #expect(workerAsClient.stderr.contains("the worker token may only connect as a worker"), "\(workerAsClient.stderr)")
        // A read token cannot submit or cancel; a submit token cannot drain or gc.
        for (arguments, type) in [(["submit"] + c.read + ["--", "true"], "submit"), (["cancel"] + c.read + ["x"], "cancel"),
                                  (["drain"] + c.submit + ["w1"], "drain"), (["gc"] + c.submit, "gc")] {
            let r = try harness.run(arguments)
            #expect(r.status != 0, "\(arguments)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && r.stderr.contains("may not send '\(type)'"), "\(arguments): \(r.stderr)")
        }
        // Fetching artifacts is for the submit token, not the read token.
        let made = try harness.run(["submit", "--wait", "--quiet"] + c.submit + ["--id", "art", "--artifact", "out.txt", "--",
                                                                                  "sh", "-c", "echo made > out.txt"], timeout: 60)
        #expect(made.status == 0, "\(made.stderr)")
        let fetchByReader = try harness.run(["fetch"] + c.read + ["-o", "\(harness.dir)/by-reader", "art"])
        #expect(fetchByReader.status != 0)
        #expect(fetchByReader.stderr.contains("the read token may not send 'blobGet'"), "\(fetchByReader.stderr)")
        let fetchBySubmitter = try harness.run(["fetch"] + c.submit + ["-o", "\(harness.dir)/by-submitter", "art"])
        #expect(fetchBySubmitter.status == 0, "\(fetchBySubmitter.stderr)")
        #expect((try? String(contentsOfFile: "\(harness.dir)/by-submitter/out.txt", encoding: .utf8)) == "made\n")
        if MetricsEndToEndTests.curl != nil {
            for role in ["read", "submit", "cluster"] {
                let scrape = try MetricsEndToEndTests.get("http://\(c.http)/metrics", headers: ["Authorization: Bearer \(try c.token(role))"])
                #expect(scrape.status == 200, "\(role)")
            }
            #expect(try MetricsEndToEndTests.get("http://\(c.http)/metrics", headers: ["Authorization: Bearer \(try c.token("worker"))"]).status == 401)
            // The worker holds only the worker token; it knows the others by the digests the
            // scheduler sent in its welcome, and takes the same ones for its /metrics.
            for role in ["worker", "read", "submit", "cluster"] {
                let scrape = try MetricsEndToEndTests.get("http://\(c.workerHTTP)/metrics", headers: ["Authorization: Bearer \(try c.token(role))"])
                #expect(scrape.status == 200, "worker /metrics with the \(role) token: \(scrape.status)")
            }
            for wrong in ["nope", try c.token("read") + "x", ""] {
                #expect(try MetricsEndToEndTests.get("http://\(c.workerHTTP)/metrics", headers: ["Authorization: Bearer \(wrong)"]).status == 401)
            }
            #expect(try MetricsEndToEndTests.get("http://\(c.workerHTTP)/metrics").status == 401)
        }
    }

    /// A task given a secret with `--secret-env` prints its bytes as hex (it sees it) and
    /// submits a child with the credential the scheduler sent it (its worker holds only the
    /// worker token). The secret is then grepped for in swarm.db and its WAL while the
    /// scheduler runs, in every CLI output and /metrics, and after both stop in every file of
    /// the run (trace-level logs, the worker's data dir): found only in its own file.
    @Test func aSecretIsFoundOnlyInItsTasksEnvironment() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let c = try Cluster(harness)
        let secret = "s3cret-\(UInt64.random(in: 0...UInt64.max))-\(UInt64.random(in: 0...UInt64.max))"
        let secretFile = "\(harness.dir)/secret.txt"
        try (secret + "\n").write(toFile: secretFile, atomically: true, encoding: .utf8)
        let script = #"printf %s "$MY_SECRET" | od -An -tx1 | tr -d ' \n'; echo; "$1" submit --wait --quiet --id sec-child -- true"#
        let submitted = try harness.run(["submit"] + c.submit + ["--id", "sec", "--secret-env", "MY_SECRET=\(secretFile)",
                                                                 "--", "sh", "-c", script, "sh", ProcessHarness.swarmBinary])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let wait = try harness.run(["wait", "--json", "--timeout", "60"] + c.read + ["sec"], timeout: 90)
        let info = try #require((try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]])?.first)
        #expect(info["state"] as? String == "succeeded", "\(info)")
        #expect((info["output"] as? String)?.contains(Self.hex(secret)) == true, "\(info)")
        #expect(info["secretEnv"] as? [String: String] == ["MY_SECRET": "***"], "\(info)")
        let shown = try harness.run(["status"] + c.read + ["sec"])
        #expect(shown.stdout.contains("secrets:   MY_SECRET=***"), "\(shown.stdout)")
        let child = try harness.run(["status", "--json"] + c.read + ["sec-child"])
        #expect(child.stdout.contains("\"parent\" : \"sec\""), "\(child.stdout) \(child.stderr)")

        var outputs: [String] = [submitted.stdout + submitted.stderr, wait.stdout, shown.stdout]
        for credentials in [c.read, c.cluster] {
            for arguments in [["status", "sec"], ["status", "--json", "sec"], ["tasks"], ["tasks", "--json"], ["logs", "sec"],
                              ["wait", "--json", "sec"], ["stats", "--json"], ["nodes", "--json"]] {
                let r = try harness.run([arguments[0]] + credentials + arguments.dropFirst())
                #expect(r.status == 0, "\(arguments): \(r.stderr)")
                outputs.append(r.stdout + r.stderr)
            }
        }
        if MetricsEndToEndTests.curl != nil {
            outputs.append(try MetricsEndToEndTests.get("http://\(c.http)/metrics", headers: ["Authorization: Bearer \(try c.token("read"))"]).body)
        }
        for (index, output) in outputs.enumerated() { #expect(!output.contains(secret), "output \(index)") }
        #expect(Self.filesContaining(secret, under: "\(harness.dir)/state", except: []).isEmpty)
        harness.stop("worker")
        harness.stop("scheduler")
        #expect(FileManager.default.fileExists(atPath: "\(harness.dir)/state/swarm.db"))
        #expect(Self.filesContaining(secret, under: harness.dir, except: [secretFile]).isEmpty)
        // The search can fail: the secret's own file is found.
        #expect(Self.filesContaining(secret, under: harness.dir, except: []) == ["secret.txt"])
    }

    /// A secret sealed under one cluster token cannot be opened under the next: the task ends
    /// `failed` saying so when it is placed, and the scheduler goes on.
    @Test func aSecretSealedUnderAnotherClusterTokenFailsItsTaskWhenPlaced() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        try "old-token\n".write(toFile: "\(harness.dir)/old", atomically: true, encoding: .utf8)
        try "new-token\n".write(toFile: "\(harness.dir)/new", atomically: true, encoding: .utf8)
        try "v\n".write(toFile: "\(harness.dir)/secret", atomically: true, encoding: .utf8)
        let state = ["--listen", "127.0.0.1:0", "--state-dir", "\(harness.dir)/state"]
        let first = try harness.start("scheduler-1", ["scheduler"] + state + ["--token-file", "\(harness.dir)/old"])
        let before = String(try #require(first.waitForLine(containing: "listening on")?.split(separator: " ").last))
        let submitted = try harness.run(["submit", "--scheduler", before, "--token-file", "\(harness.dir)/old", "--id", "s1",
                                         "--secret-env", "K=\(harness.dir)/secret", "--", "true"])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        harness.stop("scheduler-1")
        let second = try harness.start("scheduler-2", ["scheduler"] + state + ["--token-file", "\(harness.dir)/new"])
        let after = String(try #require(second.waitForLine(containing: "listening on")?.split(separator: " ").last))
        let token = ["--scheduler", after, "--token-file", "\(harness.dir)/new"]
        try harness.start("worker", ["worker", "--slots", "1", "--name", "w1", "--data-dir", "\(harness.dir)/w1"] + token)
        let wait = try harness.run(["wait", "--json", "--timeout", "30"] + token + ["s1"], timeout: 60)
        let info = try #require((try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]])?.first)
        #expect(info["state"] as? String == "failed", "\(info)")
        #expect((info["reason"] as? String)?.contains("the scheduler cannot decrypt its secret K") == true, "\(info)")
        // Still serving: a task without secrets runs.
        let next = try harness.run(["submit", "--wait", "--quiet"] + token + ["--", "true"], timeout: 60)
        #expect(next.status == 0, "\(next.stderr)")
    }

    @Test func withoutAClusterTokenSecretsAndScopedTokensAreRefused() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        try "x\n".write(toFile: "\(harness.dir)/secret", atomically: true, encoding: .utf8)
        try "read-only\n".write(toFile: "\(harness.dir)/read", atomically: true, encoding: .utf8)
        let scoped = try harness.run(["scheduler", "--listen", "127.0.0.1:0", "--in-memory", "--read-token-file", "\(harness.dir)/read"], timeout: 30)
        #expect(scoped.status == 1)
        #expect(scoped.stderr.contains("--read-token-file needs the cluster token beside it"), "\(scoped.stderr)")
        let address = try EndToEndTests.startScheduler(harness, extra: ["--in-memory"])
        let r = try harness.run(["submit", "--scheduler", address, "--secret-env", "K=\(harness.dir)/secret", "--", "true"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("secretEnv needs a cluster token on the scheduler"), "\(r.stderr)")
    }
}
