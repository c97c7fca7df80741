import Foundation
import Logging
import Testing
@testable import SwarmNode
@testable import SwarmProtocol

/// A worker restarted on the same data dir: what its previous process left is delivered
/// (results) or killed and reported (runs still going), never left running unknown.
@Suite(.serialized) struct RunJournalTests {
    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "swarm-journal-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        for sub in ["runs", "results", "logs"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        return dir
    }

    /// `sleep 30` leading its own session and process group, like a task.
    static func spawnDetachedSleep() throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A test thread may block or ignore SIGTERM; a task would not. 0x80: POSIX_SPAWN_SETSID
        // (a GNU extension Swift does not see).
        var none = sigset_t(), term = sigset_t()
        sigemptyset(&none)
        sigemptyset(&term)
        sigaddset(&term, SIGTERM)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &term)
        posix_spawnattr_setflags(&attributes, Int16(0x80 | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("sleep"), strdup("30"), nil]
        defer { for p in argv { free(p) } }
        let rc = posix_spawnp(&pid, "sleep", nil, &attributes, argv, environ)
        try #require(rc == 0)
        return pid
    }

    @Test func statLinesWithOddCommandNamesParse() throws {
        let line = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0 0"
        let stat = try #require(ProcessTable.parse(line))
        #expect(stat == ProcessTable.Stat(pid: 4242, state: "S", processGroup: 4242, session: 4242, startTime: 987654))
        #expect(ProcessTable.parse("garbage") == nil)
        let me = try #require(ProcessTable.stat(getpid()))
        #expect(me.pid == getpid())
        #expect(me.startTime > 0)
        #expect(!ProcessTable.bootId().isEmpty)
    }

    @Test func anEntryGoesOnlyWithItsOwnAttemptsAcknowledgement() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = RunJournal(directory: dir + "/runs")
        try journal.started(RunRef(id: "t", attempt: 2), pid: getpid(), startedAt: 5, spawnBootMs: 7...9)
        // No `/proc` read at the start: the spawn's window on the boot clock stands for it.
        #expect(journal.entry("t")?.processStartTime == 0)
        #expect(journal.entry("t")?.spawnFromBootMs == 7 && journal.entry("t")?.spawnToBootMs == 9)
        journal.acknowledged(RunRef(id: "t", attempt: 1))
        #expect(journal.entries().map(\.run) == [RunRef(id: "t", attempt: 2)])
        journal.acknowledged(RunRef(id: "t", attempt: 2))
        #expect(journal.entries().isEmpty)
    }

    @Test func theJournalIsOneFileThatIsCompactedAndSurvivesATornLine() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = RunJournal(directory: dir + "/runs", compactBytes: 4_096)
        for i in 0..<200 {
            try journal.started(RunRef(id: "t\(i)", attempt: 1), pid: getpid(), startedAt: Int64(i), spawnBootMs: 1...2)
            if i % 10 != 0 { journal.acknowledged(RunRef(id: "t\(i)", attempt: 1)) }
        }
        // No file per run: one journal, kept small by compaction.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/runs") == ["journal.jsonl"])
        // Compaction runs once the file passes max(compactBytes, twice its size after the last
        // compaction), so that plus one record bounds it. (Records carry the pid and its start
        // time, whose digits vary from run to run: a fixed number was flaky.)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: journal.logPath)[.size] as? Int)
        journal.compact()
        let live = try #require(try FileManager.default.attributesOfItem(atPath: journal.logPath)[.size] as? Int)
        #expect(size <= max(4_096, 2 * live) + 512, "journal of \(size) bytes with \(live) bytes live")
        #expect(size < 200 * 100, "uncompacted, 200 starts and 180 acks would be far larger")
        #expect(journal.entries().map(\.id) == stride(from: 0, to: 200, by: 10).map { "t\($0)" })
        // A worker killed in the middle of an append leaves a partial line: it is skipped.
        let fd = open(journal.logPath, O_WRONLY | O_APPEND)
        _ = "{\"start\":{\"id\":\"torn".withCString { write(fd, $0, strlen($0)) }
        close(fd)
        #expect(journal.entries().count == 20)
        #expect(journal.entry("t190")?.startedAt == 190)
        // And what the next worker process appends after it still counts.
        try journal.started(RunRef(id: "after", attempt: 1), pid: getpid(), startedAt: 500, spawnBootMs: 1...2)
        journal.acknowledged(RunRef(id: "t0", attempt: 1))
        #expect(journal.entries().count == 20)
        #expect(journal.entry("after")?.startedAt == 500)
        #expect(journal.entry("t0") == nil)
    }

    @Test func recoveryDeliversKillsAndReportsButNeverTouchesAStranger() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = RunJournal(directory: dir + "/runs")

        // 1. Finished, result not acknowledged: delivered as it was (from the journal's
        // result record; `older`'s from the result file an older worker wrote).
        try journal.started(RunRef(id: "done", attempt: 1), pid: 999_999, startedAt: 10, spawnBootMs: 1...2)
        let done = TaskResult(id: "done", state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "ok\n",
                              pid: 999_999, attempt: 1, startedAt: 10, finishedAt: 20)
        try journal.finished(done, json: WorkerAgent.resultJSON(done))
        try journal.started(RunRef(id: "older", attempt: 1), pid: 999_997, startedAt: 12, spawnBootMs: 1...2)
        var older = done
        older.id = "older"
        older.pid = 999_997
        try Files.writeAtomically(WorkerAgent.resultJSON(older), to: "\(dir)/results/older.json")
        // 2. Still running: killed, reported lost (known by the spawn's window on the boot clock).
        let from = ProcessTable.bootMs()
        let sleeper = try Self.spawnDetachedSleep()
        let to = ProcessTable.bootMs()
        defer { kill(sleeper, SIGKILL); var status: Int32 = 0; waitpid(sleeper, &status, 0) }
        usleep(50_000)
        try journal.started(RunRef(id: "alive", attempt: 3), pid: sleeper, startedAt: 30, spawnBootMs: from...to)
        // 3. Its process is gone: reported lost too.
        try journal.started(RunRef(id: "gone", attempt: 1), pid: 999_998, startedAt: 40, spawnBootMs: 1...2)
        // 4. Its pid now names another process (this test): left alone.
        var stranger = try #require(journal.entry("gone"))
        stranger.id = "stranger"
        stranger.pid = getpid()
        stranger.processGroup = getpid()
        stranger.processStartTime = 1
        stranger.startedAt = 50
        try Files.writeAtomically(Array(try JSONEncoder().encode(stranger)), to: "\(dir)/runs/stranger.json")

        let results = journal.recover(resultsDir: "\(dir)/results", logsDir: "\(dir)/logs", killGraceMs: 2_000,
                                      wall: { 100 }, logger: Logger(label: "test"))
        #expect(results.map { "\($0.id):\($0.attempt):\($0.state.rawValue)" }
            == ["done:1:succeeded", "older:1:succeeded", "alive:3:lost", "gone:1:lost", "stranger:1:lost"])
        #expect(results[0] == done && results[1] == older)
        #expect(results[2].reason == RunJournal.killedReason)
        #expect(results[3].reason == RunJournal.goneReason)
        #expect(results[4].reason == RunJournal.goneReason)
        #expect(ProcessTable.members(ofGroup: sleeper).isEmpty)
        #expect(ProcessTable.stat(getpid()) != nil)  // still here
        // Recorded like any result (in the journal, no result file), so a second restart
        // reports the same.
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/results/alive.json"))
        let again = journal.recover(resultsDir: "\(dir)/results", logsDir: "\(dir)/logs", killGraceMs: 2_000,
                                    wall: { 200 }, logger: Logger(label: "test"))
        #expect(again == results)
        // In the log `swarm logs` reads, and in no other file.
        #expect(try String(contentsOfFile: "\(dir)/logs/alive.stream.txt", encoding: .utf8).contains(RunJournal.killedReason))
        #expect(try String(contentsOfFile: "\(dir)/logs/gone.stream.txt", encoding: .utf8).contains(RunJournal.goneReason))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/logs/alive.log"))
    }

    /// A full disk refuses a run's result record and then its acknowledgement (the scheduler
    /// has the result): once there is room, the next append (or `rewriteIfDue`) rewrites the
    /// journal without the run, so a restart neither reports it lost nor notes `result: lost`
    /// in its log. The full disk is `/dev/full` in the journal's place.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full")))
    func anAcknowledgementAFullDiskRefusedIsWrittenOnceThereIsRoom() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = RunJournal(directory: dir + "/runs")
        func recover() -> [String] {
            RunJournal(directory: dir + "/runs").recover(resultsDir: dir + "/results", logsDir: dir + "/logs",
                                                         killGraceMs: 100, wall: { 3 }, logger: Logger(label: "test"))
                .map { "\($0.id):\($0.attempt):\($0.state.rawValue)" }
        }
        let path = dir + "/runs/journal.jsonl", aside = dir + "/runs/aside"
        func fill() throws {
            try FileManager.default.moveItem(atPath: path, toPath: aside)
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/full")
            journal.file.reopen()
        }
        func free() throws {
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: aside, toPath: path)
        }
        for (id, viaRewrite) in [("by-next-append", false), ("by-rewrite", true)] {
            try journal.started(RunRef(id: id, attempt: 1), pid: 999_980, startedAt: 1, spawnBootMs: 1...2)
            try fill()
            let done = TaskResult(id: id, state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: "ok\n",
                                  pid: 999_980, attempt: 1, startedAt: 1, finishedAt: 2)
            #expect(throws: FileError.self) { try journal.finished(done, json: WorkerAgent.resultJSON(done)) }
            journal.acknowledged(RunRef(id: id, attempt: 1))
            try free()
            if viaRewrite {
                journal.rewriteIfDue()
            } else {
                try journal.started(RunRef(id: "next", attempt: 1), pid: 999_981, startedAt: 3, spawnBootMs: 1...2)
                journal.acknowledged(RunRef(id: "next", attempt: 1))
            }
            #expect(recover() == [], "\(id)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/logs/\(id).stream.txt"), "\(id)")
        }
    }

    /// A restart finds a run without a result record whose log already ends with its result
    /// (the full disk took the record, the worker stopped before it could say so): the log
    /// gets a note saying that, not a `result: lost` that reads as the run's outcome.
    @Test func aRunWhoseLogHasItsResultIsNotNotedLost() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = RunJournal(directory: dir + "/runs")
        try journal.started(RunRef(id: "ended", attempt: 1), pid: 999_970, startedAt: 1, spawnBootMs: 1...2)
        try journal.started(RunRef(id: "cut", attempt: 1), pid: 999_971, startedAt: 2, spawnBootMs: 1...2)
        try "2026-12-03T16:00:00.000Z stdout done\n2026-12-03T16:00:00.001Z swarm  result: succeeded\n"
            .write(toFile: "\(dir)/logs/ended.stream.txt", atomically: false, encoding: .utf8)
        try "2026-12-03T16:00:00.000Z stdout half\n"
            .write(toFile: "\(dir)/logs/cut.stream.txt", atomically: false, encoding: .utf8)
        let results = journal.recover(resultsDir: dir + "/results", logsDir: dir + "/logs", killGraceMs: 100,
                                      wall: { 3 }, logger: Logger(label: "test"))
        #expect(results.map(\.state) == [.lost, .lost])
        let ended = try String(contentsOfFile: "\(dir)/logs/ended.stream.txt", encoding: .utf8)
        #expect(ended.contains(RunJournal.unrecordedEndNote) && !ended.contains("result: lost"), "\(ended)")
        let cut = try String(contentsOfFile: "\(dir)/logs/cut.stream.txt", encoding: .utf8)
        #expect(cut.contains("result: lost (\(RunJournal.goneReason))"), "\(cut)")
    }

    /// A result is in the journal from its record until its own attempt's acknowledgement;
    /// a new start of the id drops an earlier attempt's; compaction keeps exactly the live
    /// starts and results, and the file stays under max(compactBytes, 2 x live) + a record.
    @Test func resultRecordsLiveUntilTheirAcknowledgementAndCompactionKeepsThem() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = RunJournal(directory: dir + "/runs", compactBytes: 8_192)
        func result(_ id: String, _ attempt: Int, pid: Int?, output: String = "", at: Int64 = 1) -> TaskResult {
            TaskResult(id: id, state: .succeeded, exitCode: 0, signal: nil, reason: nil, output: output,
                       pid: pid, attempt: attempt, startedAt: at, finishedAt: at + 1)
        }
        func recover() -> [String] {
            journal.recover(resultsDir: dir + "/results", logsDir: dir + "/logs", killGraceMs: 100, wall: { 3 },
                            logger: Logger(label: "test")).map { "\($0.id):\($0.attempt):\($0.state.rawValue)" }
        }
        // A run without a process: its result record is its entry.
        let refused = result("refused", 1, pid: nil)
        try journal.finished(refused, json: WorkerAgent.resultJSON(refused))
        #expect(journal.entry("refused")?.attempt == 1)
        // A new attempt's start drops the earlier attempt's result.
        try journal.started(RunRef(id: "again", attempt: 1), pid: 999_990, startedAt: 1, spawnBootMs: 1...2)
        let first = result("again", 1, pid: 999_990)
        try journal.finished(first, json: WorkerAgent.resultJSON(first))
        try journal.started(RunRef(id: "again", attempt: 2), pid: 999_991, startedAt: 2, spawnBootMs: 1...2)
        #expect(recover() == ["refused:1:succeeded", "again:2:lost"])
        // An acknowledgement of another attempt leaves the entry; its own removes it.
        journal.acknowledged(RunRef(id: "again", attempt: 1))
        #expect(journal.entry("again")?.attempt == 2)
        journal.acknowledged(RunRef(id: "again", attempt: 2))
        journal.acknowledged(RunRef(id: "refused", attempt: 1))
        #expect(journal.entries().isEmpty)
        // Many acknowledged results of ~1 KiB and 5 live ones: the file stays bounded at every
        // append, and compaction keeps the live ones whole.
        let padding = String(repeating: "x", count: 1_000)
        var largest = 0
        for i in 0..<300 {
            let r = result("r\(i)", 1, pid: nil, output: padding, at: Int64(10 + i))
            try journal.finished(r, json: WorkerAgent.resultJSON(r))
            if i % 60 != 0 { journal.acknowledged(r.run) }
            let size = (try FileManager.default.attributesOfItem(atPath: journal.logPath)[.size] as? Int) ?? 0
            largest = max(largest, size)
        }
        // The live records only grew (1 to 5 results), and a rewrite triggered by a result's
        // record keeps that run too (its acknowledgement comes after): so at every append the
        // file is under max(compactBytes, 2 x (the last live size + one run)) plus one run.
        journal.compact()
        let live = try #require(try FileManager.default.attributesOfItem(atPath: journal.logPath)[.size] as? Int)
        let run = live / 5
        #expect(largest <= max(8_192, 2 * (live + run)) + run, "journal reached \(largest) bytes, \(live) live")
        #expect(largest < 300 * 1_000 / 4, "uncompacted, 300 results of 1 KiB would be far larger")
        let text = try String(contentsOfFile: journal.logPath, encoding: .utf8)
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("{\"result\"") }.count == 5, "5 results")
        #expect(!text.contains("\"ack\""))
        #expect(recover() == (0..<5).map { "r\($0 * 60):1:succeeded" })
        // The rewrite comes from what this journal holds in memory; another process's journal
        // on the same file (a restarted worker) reads the same live runs back from it.
        let reread = RunJournal(directory: dir + "/runs", compactBytes: 8_192)
        reread.compact()
        #expect(reread.entries().map(\.id) == (0..<5).map { "r\($0 * 60)" })
        #expect(journal.entries().map(\.id) == (0..<5).map { "r\($0 * 60)" })
    }

    /// A run's process is known again by its pid, process group and a start within the
    /// spawn's window on the boot clock (one tick of slack below it): the same pid with a
    /// start outside the window is another process and is left alone.
    @Test func aRunsProcessIsKnownByItsStartWithinTheSpawnWindow() throws {
        let journal = RunJournal(directory: NSTemporaryDirectory())
        let from = ProcessTable.bootMs()
        let sleeper = try Self.spawnDetachedSleep()
        let to = ProcessTable.bootMs()
        defer { kill(sleeper, SIGKILL); var status: Int32 = 0; waitpid(sleeper, &status, 0) }
        usleep(20_000)
        let stat = try #require(ProcessTable.stat(sleeper))
        let boot = ProcessTable.bootId()
        func entry(_ window: ClosedRange<Int64>?, group: Int32 = sleeper) -> RunJournal.Entry {
            RunJournal.Entry(id: "s", attempt: 1, pid: sleeper, processGroup: group, processStartTime: 0, bootId: boot,
                             startedAt: 1, spawnFromBootMs: window?.lowerBound, spawnToBootMs: window?.upperBound)
        }
        #expect(journal.isAlive(entry(from...to), bootId: boot))
        // Edges: the start read in whole ticks lies at most one tick before the real start.
        let tick = 1000 / ProcessTable.ticksPerSecond
        let startMs = Int64(stat.startTime) * 1000 / ProcessTable.ticksPerSecond
        #expect(journal.isAlive(entry(startMs...startMs), bootId: boot))
        #expect(journal.isAlive(entry((startMs + tick - 1)...(startMs + tick - 1)), bootId: boot))
        #expect(!journal.isAlive(entry((startMs + tick)...(startMs + 5_000)), bootId: boot))
        #expect(!journal.isAlive(entry((startMs - 5_000)...(startMs - 1)), bootId: boot))
        // Another group, another boot, or no window at all: not ours.
        #expect(!journal.isAlive(entry(from...to, group: sleeper + 1), bootId: boot))
        #expect(!journal.isAlive(entry(from...to), bootId: boot + "x"))
        #expect(!journal.isAlive(entry(nil), bootId: boot))
    }
}
