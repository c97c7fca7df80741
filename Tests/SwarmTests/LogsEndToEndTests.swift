import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 10 item 22 on real `swarm` processes: `swarm logs` reads the whole log from the
/// worker (with `--tail` and `--lifecycle`), falls back to the scheduler's copy with a notice
/// when the worker is gone, and `submit --wait` prints the task's output and exits with its
/// exit status.
@Suite(.serialized) struct LogsEndToEndTests {
    typealias E2E = EndToEndTests

    /// More than the scheduler keeps (its copy is trimmed past 2 MiB to the last 1 MiB): only
    /// the worker's log file has every line.
    static let lineCount = 40_000
    static let padding = String(repeating: ".", count: 60)
    static let bigTask = ["sh", "-c", "seq -f 'numbered line %07g \(padding)' 1 \(lineCount)"]
    static func expectedLines(_ range: ClosedRange<Int>) -> [String] {
        range.map { "numbered line " + String(repeating: "0", count: 7 - String($0).count) + String($0) + " " + padding }
    }

    static func schedulerAndWorker(_ harness: ProcessHarness) throws -> String {
        let address = try E2E.startScheduler(harness)
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w",
                                     "--data-dir", "\(harness.dir)/w"])
        _ = try E2E.waitForNodes(harness, address, count: 1)
        return address
    }

    static func submitBig(_ harness: ProcessHarness, _ address: String) throws {
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "big", "--"] + bigTask)
        #expect(submit.status == 0, "\(submit.stderr)")
        _ = try E2E.waitSucceeded(harness, address, "big")
    }

    @Test func logsPrintsTheWholeLogFromTheWorkerWithTailAndLifecycle() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.schedulerAndWorker(harness)
        try Self.submitBig(harness, address)

        let all = try harness.run(["logs", "--scheduler", address, "big"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stderr == "")
        let lines = all.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == Self.lineCount)
        #expect(lines == Self.expectedLines(1...Self.lineCount))

        let tail = try harness.run(["logs", "--scheduler", address, "--tail", "5", "big"])
        #expect(tail.status == 0)
        #expect(tail.stdout == Self.expectedLines((Self.lineCount - 4)...Self.lineCount).map { $0 + "\n" }.joined())

        for bad in ["0", "-1", "1000001", "99999999999999999999", "five"] {
            let r = try harness.run(["logs", "--scheduler", address, "--tail", bad, "big"])
            #expect(r.status == 64, "--tail \(bad)")
            #expect(r.stderr.contains("--tail must be a whole number from 1 to 1000000"), "--tail \(bad): \(r.stderr)")
            #expect(r.stdout == "")
        }

        // stderr lines are labelled in order; a running task's log is read too.
        _ = try harness.run(["submit", "--scheduler", address, "--id", "mixed", "--", "sh", "-c",
                             "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c; sleep 30", harness.marker])
        var mixed = ""
        for _ in 0..<200 {
            mixed = try harness.run(["logs", "--scheduler", address, "mixed"]).stdout
            if mixed.contains("c\n") { break }
            usleep(50_000)
        }
        #expect(mixed == "a\n[stderr] b\nc\n")
        // --lifecycle: the worker's lines about the run too, in their place.
        let ended = try harness.run(["submit", "--scheduler", address, "--wait", "--quiet", "--id", "short", "--", "sh", "-c", "echo x; exit 4"])
        #expect(ended.status == 1)
        let lifecycle = try harness.run(["logs", "--scheduler", address, "--lifecycle", "short"])
        let lifeLines = lifecycle.stdout.split(separator: "\n")
        #expect(lifeLines.first?.hasPrefix("[swarm] ") == true && lifeLines.first?.contains("started pid") == true, "\(lifeLines)")
        #expect(lifeLines.contains("x"))
        #expect(lifeLines.last?.hasPrefix("[swarm] ") == true && lifeLines.last?.hasSuffix("result: failed (exited with code 4)") == true, "\(lifeLines)")
        let lifeTail = try harness.run(["logs", "--scheduler", address, "--lifecycle", "--tail", "1", "short"])
        #expect(lifeTail.stdout.hasPrefix("[swarm] ") && lifeTail.stdout.hasSuffix("result: failed (exited with code 4)\n"), "\(lifeTail.stdout)")
    }

    @Test func aStoppedWorkersLogIsTheSchedulersCopyWithANotice() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.schedulerAndWorker(harness)
        try Self.submitBig(harness, address)
        harness.stop("worker")
        let r = try harness.run(["logs", "--scheduler", address, "big"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("full log is no longer available (it is on worker w, which is not connected)"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        // The end is there (the scheduler keeps the last MiB of output), the start is not.
        #expect(r.stdout.hasSuffix(Self.expectedLines(Self.lineCount...Self.lineCount)[0] + "\n"))
        #expect(!r.stdout.contains(Self.expectedLines(1...1)[0]))
    }

    @Test func submitWaitPrintsTheTasksOutputAndExitsWithItsCode() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.schedulerAndWorker(harness)

        let hello = try harness.run(["submit", "--scheduler", address, "--wait", "--", "sh", "-c", "echo hello"])
        #expect(hello.status == 0)
        #expect(hello.stdout == "hello\n")
        #expect(hello.stderr == "")

        let three = try harness.run(["submit", "--scheduler", address, "--id", "three", "--wait", "--",
                                     "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(three.status == 3)
        #expect(three.stdout == "out\n")
        #expect(three.stderr == "err\nswarm: task three failed: exited with code 3\n")

        // Streamed while it runs: what came before the pause is there before the end.
        let slow = try harness.run(["submit", "--scheduler", address, "--wait", "--", "sh", "-c",
                                    "echo early; sleep 1; echo late >&2; kill -9 $$", harness.marker])
        #expect(slow.status == 137)
        #expect(slow.stdout == "early\n")
        #expect(slow.stderr.hasPrefix("late\nswarm: task "))

        let missing = try harness.run(["submit", "--scheduler", address, "--wait", "--", "/no/such/program"])
        #expect(missing.status == 127)
        #expect(missing.stderr.contains("spawn_failed"))

        // --quiet: the id, then the outcome as 0 or 1 (today's behaviour, for scripts).
        let quiet = try harness.run(["submit", "--scheduler", address, "--id", "q", "--wait", "--quiet", "--",
                                     "sh", "-c", "echo out; exit 3"])
        #expect(quiet.status == 1)
        #expect(quiet.stdout == "q\n")
        let quietOK = try harness.run(["submit", "--scheduler", address, "--wait", "--quiet", "--", "true"])
        #expect(quietOK.status == 0)
        #expect(quietOK.stdout.split(separator: "\n").count == 1)
        let noWait = try harness.run(["submit", "--scheduler", address, "--quiet", "--", "true"])
        #expect(noWait.status == 64)
        #expect(noWait.stderr.contains("--quiet goes with --wait"))
    }
}
