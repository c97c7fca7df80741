import Foundation
import Testing

/// kill -9 in the middle of a blob transfer (issue 11, item 6): the scheduler during a
/// client's upload of an input, a worker during its download of one. Nothing partial is ever
/// held or seen by a task: the task itself checks its input's size and hash, and every start
/// of it is traced to a file.
///
/// Each kill is made deterministic by freezing the other side first: once a transfer's
/// temporary file has bytes, the sender (the submitting client) or the receiver (the worker)
/// is stopped with SIGSTOP, so the transfer cannot finish before the SIGKILL lands.
@Suite(.serialized) struct WorkspaceCrashTests {
    static let inputBytes = 64 << 20

    /// The task's command: traces its start, then fails loudly (exit 3) unless `big.bin` has
    /// exactly `size` bytes hashing to `sha256`.
    static func checkingCommand(sha256: String, size: Int, trace: String) -> [String] {
        let script = """
            sum=$(sha256sum big.bin | cut -c1-64); size=$(stat -c %s big.bin)
            echo "attempt $SWARM_ATTEMPT on $SWARM_NODE: $size $sum" >> "$1"
            if [ "$sum" != \(sha256) ] || [ "$size" != \(size) ]; then echo "PARTIAL INPUT: $size bytes, sha256 $sum" >&2; exit 3; fi
            echo input whole
            """
        return ["sh", "-c", script, "check", trace]
    }

    /// Every traced start saw the whole input; returns how many there were.
    static func tracedStarts(_ trace: String, sha256: String) -> Int {
        let lines = ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").split(separator: "\n")
        for line in lines {
            #expect(line.hasSuffix(": \(inputBytes) \(sha256)"), "a task started with a partial input: \(line)")
        }
        return lines.count
    }

    /// Polls (bounded) until a transfer has bytes in a temporary file under `root`, then
    /// stops `freeze` (SIGSTOP) and kills `victim` (SIGKILL); true when the transfer was
    /// caught unfinished (its temporary file still there once `freeze` stood still).
    static func killDuringTransfer(under root: String, freeze: Int32, victim: ProcessHarness.Child,
                                   giveUpWhen finished: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(60)
        var caught = false
        while Date() < deadline && !finished() {
            if let partial = WorkspaceFixtures.transferInProgress(under: root) {
                kill(freeze, SIGSTOP)
                caught = FileManager.default.fileExists(atPath: partial.path)
                break
            }
            usleep(500)
        }
        kill(victim.pid, SIGKILL)
        victim.process.waitUntilExit()
        if freeze != victim.pid { kill(freeze, SIGCONT) }
        return caught
    }

    @Test func schedulerKilledDuringAnUploadHoldsNoPartialBlobAndTheResubmitRuns() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness)
        let scheduler = try #require(harness.childNamed("scheduler"))
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "w1",
                                     "--data-dir", "\(harness.dir)/w1"])
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1)
        let data = "\(harness.dir)/big.bin", trace = "\(harness.dir)/trace.txt"
        let sha = try WorkspaceFixtures.randomFile(data, bytes: Self.inputBytes)
        let submitArguments = ["submit", "--scheduler", address, "--id", "big", "--input", data, "--"]
            + Self.checkingCommand(sha256: sha, size: Self.inputBytes, trace: trace)

        // The upload starts; once the scheduler has part of it, the client stands still and
        // the scheduler dies.
        let submit = try harness.start("submit", submitArguments)
        let blobs = "\(harness.dir)/state/blobs"
        let caught = Self.killDuringTransfer(under: blobs, freeze: submit.pid, victim: scheduler) { !submit.process.isRunning }
        #expect(caught, "the upload was not caught in flight")

        // Restarted on the same state dir: only whole, hash-correct blobs are there.
        for _ in 0..<3_000 where submit.process.isRunning { usleep(10_000) }
        let again = try harness.start("scheduler-2", ["scheduler", "--listen", address, "--state-dir", "\(harness.dir)/state"])
        #expect(again.waitForLine(containing: "listening on") != nil)
        #expect(WorkspaceFixtures.blobStoreProblems(blobs) == [])

        // The submit ended (before the restart, or after, had it retried): with a clear
        // error, or with the task in.
        for _ in 0..<3000 where submit.process.isRunning { usleep(10_000) }
        #expect(!submit.process.isRunning, "submit still running 35 s after the scheduler died")
        let submitErrors = (try? String(contentsOfFile: "\(harness.dir)/submit.log", encoding: .utf8)) ?? ""
        if submit.process.terminationStatus != 0 {
            #expect(submitErrors.hasPrefix("swarm: error:") && submitErrors.split(separator: "\n").count == 1,
                    "submit's error: \(submitErrors)")
        }

        // The resubmit (same id) goes in, or finds the first in; either way the task runs
        // with the whole input.
        let resubmit = try harness.run(submitArguments)
        #expect(resubmit.status == 0 || resubmit.stderr.contains("already exists"), "resubmit: \(resubmit.stderr)")
        let info = try EndToEndTests.waitSucceeded(harness, address, "big")
        #expect((info["output"] as? String)?.contains("input whole") == true, "\(info["output"] ?? "")")
        #expect(Self.tracedStarts(trace, sha256: sha) >= 1)
        #expect(WorkspaceFixtures.blobStoreProblems(blobs) == [])
        #expect(!WorkspaceFixtures.files(under: blobs).isEmpty, "the input is held")
    }

    @Test func workerKilledDuringAnInputDownloadNeverStartsTheTaskOnAPartialInput() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try EndToEndTests.startScheduler(harness, extra: ["--lost-after", "2", "--heartbeat", "0.2"])
        let data = "\(harness.dir)/big.bin", trace = "\(harness.dir)/trace.txt"
        let sha = try WorkspaceFixtures.randomFile(data, bytes: Self.inputBytes)
        // Held by the scheduler before any worker exists: the download is the only transfer.
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "big", "--input", data, "--"]
            + Self.checkingCommand(sha256: sha, size: Self.inputBytes, trace: trace))
        try #require(submit.status == 0, "submit: \(submit.stderr)")

        let workerArguments = ["worker", "--scheduler", address, "--slots", "1", "--name", "a", "--data-dir", "\(harness.dir)/a"]
        let worker = try harness.start("worker-a", workerArguments)
        let cache = "\(harness.dir)/a/blobs"
        let caught = Self.killDuringTransfer(under: cache, freeze: worker.pid, victim: worker) { !worker.process.isRunning }
        #expect(caught, "the download was not caught in flight")
        #expect(Self.tracedStarts(trace, sha256: sha) == 0, "the task started while its input was downloading")

        // The same worker, restarted on its data dir, drops the partial download, fetches
        // the input again and runs the task on the whole of it.
        try harness.start("worker-a2", workerArguments)
        let info = try EndToEndTests.waitSucceeded(harness, address, "big")
        #expect((info["output"] as? String)?.contains("input whole") == true, "\(info["output"] ?? "")")
        #expect(Self.tracedStarts(trace, sha256: sha) >= 1)
        #expect(WorkspaceFixtures.blobStoreProblems(cache) == [])
    }
}
