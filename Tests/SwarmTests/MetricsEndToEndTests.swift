import Foundation
import Testing

/// `--http-listen` on real `swarm scheduler` and `swarm worker` processes: /metrics scraped
/// with a real HTTP client (curl) during a run, checked for the counts of what ran, and by
/// `promtool check metrics` when Debian's prometheus package is installed.
@Suite(.serialized) struct MetricsEndToEndTests {
    static let curl = ["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// GET `url` with curl (bounded): status code and body.
    static func get(_ url: String, headers: [String] = [], options: [String] = []) throws -> (status: Int, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(curl))
        process.arguments = ["-s", "--max-time", "10", "-w", "\n%{http_code}"] + options + headers.flatMap { ["-H", $0] } + [url]
        let output = try CapturedRun.run(process, timeout: 20)
        var lines = output.stdout.components(separatedBy: "\n")
        let status = Int(lines.popLast() ?? "") ?? 0
        return (status, lines.joined(separator: "\n"))
    }

    /// The value of the sample `series` (name and labels exactly as exposed), if present.
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// promtool's verdict on `text` (nil: promtool is not installed).
    static func promtoolProblems(_ text: String, dir: String) throws -> String? {
        guard let promtool else { return nil }
        let file = "\(dir)/scrape-\(UInt32.random(in: 0...UInt32.max)).txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" check metrics < \"$1\"", promtool, file]
        let output = try CapturedRun.run(process, timeout: 30)
        return output.status == 0 ? "" : "promtool exit \(output.status): \(output.stdout)\(output.stderr)"
    }

    @Test(.enabled(if: curl != nil, "curl is not installed: no real HTTP client to scrape with"))
    func scrapesOfSchedulerAndWorkerCountTheTasksThatRan() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--state-dir", "\(harness.dir)/state",
                                                        "--http-listen", "127.0.0.1:0"])
        let address = String(try #require(scheduler.waitForLine(containing: "listening on")?.split(separator: " ").last))
        let http = String(try #require(scheduler.waitForLine(containing: "http listening on")?.split(separator: " ").last))
        let worker = try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w1",
                                                  "--data-dir", "\(harness.dir)/w1", "--http-listen", "127.0.0.1:0"])
        let workerHTTP = String(try #require(worker.waitForLine(containing: "http listening on")?.split(separator: " ").last))
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1)

        let before = try Self.get("http://\(http)/metrics")
        #expect(before.status == 200)
        #expect(Self.sample(before.body, "swarm_workers{state=\"ready\"}") == 1)
        #expect(Self.sample(before.body, "swarm_slots") == 2)

        let commands = [["true"], ["true"], ["true"], ["sh", "-c", "echo hello; exit 3"]]
        for (i, command) in commands.enumerated() {
            let r = try harness.run(["submit", "--scheduler", address, "--id", "m\(i)", "--"] + command)
            #expect(r.status == 0, "submit: \(r.stderr)")
        }
        let wait = try harness.run(["wait", "--scheduler", address, "--timeout", "60", "m0", "m1", "m2", "m3"], timeout: 90)
        #expect(wait.status != 0, "m3 fails, so wait reports a failure")

        let scrape = try Self.get("http://\(http)/metrics")
        #expect(scrape.status == 200)
        let text = scrape.body
        #expect(Self.sample(text, "swarm_tasks_submitted_total") == 4)
        #expect(Self.sample(text, "swarm_tasks_ended_total{state=\"succeeded\"}") == 3)
        #expect(Self.sample(text, "swarm_tasks_ended_total{state=\"failed\"}") == 1)
        #expect(Self.sample(text, "swarm_task_placements_total") == 4)
        #expect(Self.sample(text, "swarm_task_run_seconds_count") == 4)
        #expect(Self.sample(text, "swarm_task_wait_seconds_count") == 4)
        #expect((Self.sample(text, "swarm_state_commit_seconds_count") ?? 0) > 0)
        #expect((Self.sample(text, "swarm_heartbeats_received_total") ?? -1) >= 0)
        #expect((Self.sample(text, "swarm_received_bytes_total") ?? 0) > 0)
        #expect((Self.sample(text, "swarm_sent_bytes_total") ?? 0) > 0)
        // A series appears once its label values were seen at a scrape; none runs now.
        #expect((Self.sample(text, "swarm_tasks_running{model=\"none\",runtime=\"none\"}") ?? 0) == 0)
        #expect(text.contains("# HELP swarm_tasks_ended_total "))
        #expect(text.contains("# TYPE swarm_task_run_seconds histogram"))

        let workerScrape = try Self.get("http://\(workerHTTP)/metrics")
        #expect(workerScrape.status == 200)
        #expect(Self.sample(workerScrape.body, "swarm_worker_tasks_started_total") == 4)
        #expect(Self.sample(workerScrape.body, "swarm_worker_spawn_seconds_count") == 4)
        #expect(Self.sample(workerScrape.body, "swarm_worker_output_bytes_total") == 6)
        #expect(Self.sample(workerScrape.body, "swarm_worker_running_tasks") == 0)
        #expect((Self.sample(workerScrape.body, "process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((Self.sample(workerScrape.body, "process_cpu_seconds_total") ?? 0) > 0)

        #expect(try Self.get("http://\(http)/nope").status == 404)
        for (name, body) in [("scheduler", text), ("worker", workerScrape.body)] {
            guard let problems = try Self.promtoolProblems(body, dir: harness.dir) else {
                print("promtool is not installed (Debian's prometheus package): skipping `promtool check metrics`")
                break
            }
            #expect(problems.isEmpty, "\(name): \(problems)")
        }
    }

    @Test(.enabled(if: curl != nil, "curl is not installed: no real HTTP client to scrape with"))
    func withATokenScrapesNeedTheBearerToken() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let tokenFile = "\(harness.dir)/token"
        try "metrics-token-1234567890".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--in-memory",
                                                        "--token-file", tokenFile, "--http-listen", "127.0.0.1:0"])
        let http = String(try #require(scheduler.waitForLine(containing: "http listening on")?.split(separator: " ").last))
        #expect(try Self.get("http://\(http)/metrics").status == 401)
        #expect(try Self.get("http://\(http)/metrics", headers: ["Authorization: Bearer wrong"]).status == 401)
        let ok = try Self.get("http://\(http)/metrics", headers: ["Authorization: Bearer metrics-token-1234567890"])
        #expect(ok.status == 200)
        #expect(ok.body.contains("swarm_tasks_submitted_total"))
    }

    @Test func aNonLoopbackHTTPAddressWithoutATokenIsRefused() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let r = try harness.run(["scheduler", "--listen", "127.0.0.1:0", "--in-memory", "--http-listen", "0.0.0.0:0"], timeout: 30)
        #expect(r.status == 1)
        #expect(r.stderr.contains("refusing to serve HTTP on 0.0.0.0:0 without a cluster token"), "\(r.stderr)")
        let bad = try harness.run(["scheduler", "--listen", "127.0.0.1:0", "--in-memory", "--http-listen", "nonsense"], timeout: 30)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--http-listen wants HOST:PORT"), "\(bad.stderr)")
        let worker = try harness.run(["worker", "--scheduler", "127.0.0.1:1", "--slots", "1", "--name", "w",
                                      "--data-dir", "\(harness.dir)/w", "--http-listen", "0.0.0.0:0"], timeout: 30)
        #expect(worker.status == 1)
        #expect(worker.stderr.contains("refusing to serve HTTP on 0.0.0.0:0 without a cluster token"), "\(worker.stderr)")
    }
}
