import Foundation
import Testing

/// A real worker removes finished tasks' files once the scheduler has their results and the
/// retention has passed, and nothing else (issue 14 item 3).
@Suite(.serialized) struct WorkerRetentionEndToEndTests {
    typealias E = EndToEndTests

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Polls `condition` every 100 ms for at most `seconds`.
    static func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        for _ in 0..<Int(seconds * 10) {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    /// Seconds since `start` (monotonic).
    static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// 0.001 h = 3.6 s of retention.
    @Test func finishedTasksLoseTheirFilesAfterTheRetentionRunningAndUserDirectoriesKeepThem() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        let data = "\(harness.dir)/w"
        let mine = "\(harness.dir)/mine"
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(mine)/keep.txt", contents: Data("mine\n".utf8))
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "4", "--name", "w",
                                     "--data-dir", data, "--retention-hours", "0.001"])
        _ = try E.waitForNodes(harness, address, count: 1)

        func submit(_ id: String, _ script: String, _ extra: [String] = []) throws {
            let r = try harness.run(["submit", "--scheduler", address, "--id", id] + extra + ["--", "sh", "-c", script, harness.marker])
            #expect(r.status == 0, "\(r.stderr)")
        }
        // The retention of "done" starts at its acknowledgement, which is after this instant:
        // its files may not go before `submitted` + 3.6 s.
        let submitted = DispatchTime.now().uptimeNanoseconds
        try submit("done", "mkdir -p sub/deeper && echo hi > sub/deeper/made.txt && echo out")
        _ = try E.waitSucceeded(harness, address, "done")
        // Right after the end they are all there (the retention has not passed yet). Only
        // decidable while 3.6 s have not passed since the submit: a loaded machine (CI beside
        // builds) may take longer to get here, and then the files may rightly be gone.
        let there = [Self.exists("\(data)/logs/done.stream.txt"), Self.exists("\(data)/work/done/sub/deeper/made.txt")]
        let checkedAfter = Self.seconds(since: submitted)
        if checkedAfter < 3.5 {
            #expect(there == [true, true], "gone \(checkedAfter) s after the submit, before the retention")
        } else {
            print("retention: the files were checked \(checkedAfter) s after the submit; not decidable")
        }
        try submit("theirs", "echo x > made.txt; echo said", ["--workdir", mine])
        try submit("quiet", "true")
        try submit("long", "echo x > made.txt; echo started; sleep 30")
        try submit("hush", "sleep 30")
        _ = try E.waitSucceeded(harness, address, "theirs")
        _ = try E.waitSucceeded(harness, address, "quiet")
        try E.waitStarted(harness, address, "long")
        try E.waitStarted(harness, address, "hush")
        // A running task's files are never removed: the silent one has its directory and no
        // log. No task has a result file (results are in the run journal until acknowledged).
        #expect(Self.eventually(30) { Self.exists("\(data)/logs/long.stream.txt") })
        #expect(Self.exists("\(data)/work/hush") && !Self.exists("\(data)/logs/hush.stream.txt"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(data)/results")) ?? ["?"]).isEmpty)

        let gone = Self.eventually(30) {
            !Self.exists("\(data)/logs/done.stream.txt") && !Self.exists("\(data)/work/done")
                && !Self.exists("\(data)/logs/theirs.stream.txt") && !Self.exists("\(data)/work/quiet")
        }
        #expect(gone, "the finished tasks' files are still there after 30 s")
        // The user's directory, and what the task wrote into it, stay.
        #expect(Self.exists("\(mine)/keep.txt") && Self.exists("\(mine)/made.txt"))
        // The running task's files stay.
        #expect(Self.exists("\(data)/work/long/made.txt") && Self.exists("\(data)/logs/long.stream.txt"))
        // The worker no longer has the silent task: `swarm logs` says so, from the scheduler.
        let quiet = try harness.run(["logs", "--scheduler", address, "quiet"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty, "\(quiet.stdout) \(quiet.stderr)")
        // The trash is emptied too.
        #expect(Self.eventually(30) { ((try? FileManager.default.contentsOfDirectory(atPath: "\(data)/work/.swarm~trash")) ?? []).isEmpty })
        // `status` still answers from the scheduler.
        #expect(try harness.run(["status", "--scheduler", address, "done"]).status == 0)
        for id in ["long", "hush"] { _ = try harness.run(["cancel", "--scheduler", address, id]) }
    }

    /// Files a previous worker process left are found at start and go by their age; twice in a
    /// row (a second restart finds nothing left and removes nothing else).
    @Test func filesLeftByAnEarlierWorkerProcessGoByTheirAgeAfterARestart() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        let data = "\(harness.dir)/w"
        let base = ["worker", "--scheduler", address, "--slots", "2", "--name", "w", "--data-dir", data]
        let first = try harness.start("worker-1", base)
        _ = try E.waitForNodes(harness, address, count: 1)
        // A silent task (its directory only) and one that prints (its log too).
        for (id, script) in [("old", "echo x > made.txt"), ("chatty", "echo hi")] {
            let r = try harness.run(["submit", "--scheduler", address, "--id", id, "--", "sh", "-c", script, harness.marker])
            #expect(r.status == 0)
            _ = try E.waitSucceeded(harness, address, id)
        }
        // Acknowledged before the stop (the scheduler acks as it records the result).
        usleep(300_000)
        kill(first.pid, SIGTERM)
        first.process.waitUntilExit()
        #expect(Self.exists("\(data)/work/old/made.txt") && !Self.exists("\(data)/logs/old.stream.txt"))
        #expect(Self.exists("\(data)/logs/chatty.stream.txt"))
        // What an older worker left: a result file per task, and its log.
        FileManager.default.createFile(atPath: "\(data)/results/legacy.json", contents: Data("{}\n".utf8))
        FileManager.default.createFile(atPath: "\(data)/logs/legacy.stream.txt", contents: Data("x\n".utf8))
        usleep(2_000_000)  // older than the retention below

        for round in 1...2 {
            let again = try harness.start("worker-again-\(round)", base + ["--retention-hours", "0.0005"])
            let clean = Self.eventually(30) {
                !Self.exists("\(data)/work/old") && !Self.exists("\(data)/work/chatty") && !Self.exists("\(data)/logs/chatty.stream.txt")
                    && !Self.exists("\(data)/results/legacy.json") && !Self.exists("\(data)/logs/legacy.stream.txt")
            }
            #expect(clean, "round \(round): the old task's files are still there")
            #expect(Self.exists("\(data)/results") && Self.exists("\(data)/work"))
            kill(again.pid, SIGTERM)
            again.process.waitUntilExit()
        }
    }

    /// Under a configured work root, a task directory that was there before the task is not the
    /// worker's and stays; the ones it made go, with their marks.
    @Test func underAConfiguredWorkRootOnlyDirectoriesTheWorkerMadeGo() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        let data = "\(harness.dir)/w", root = "\(harness.dir)/root"
        try FileManager.default.createDirectory(atPath: "\(root)/before", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(root)/before/precious.txt", contents: Data("x\n".utf8))
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w", "--data-dir", data,
                                     "--work-root", root, "--retention-hours", "0.0005"])
        _ = try E.waitForNodes(harness, address, count: 1)
        for id in ["before", "fresh"] {
            let r = try harness.run(["submit", "--scheduler", address, "--id", id, "--", "sh", "-c", "echo x > made.txt", harness.marker])
            #expect(r.status == 0, "\(r.stderr)")
            _ = try E.waitSucceeded(harness, address, id)
        }
        let done = Self.eventually(30) {
            !Self.exists("\(root)/fresh") && !Self.exists("\(data)/owned/fresh")
        }
        #expect(done, "the fresh task's directory or mark is still there")
        #expect(Self.exists("\(root)/before/precious.txt") && Self.exists("\(root)/before/made.txt"))
    }
}
