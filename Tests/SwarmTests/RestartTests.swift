import Foundation
import Testing
import SwarmClient
@testable import SwarmNode
import SwarmProtocol
@testable import SwarmScheduler

/// Real processes killed with -9 and started again on the same state: no acknowledged task
/// is lost and none runs twice.
@Suite(.serialized) struct RestartTests {
    typealias E = EndToEndTests

    /// Appends "ATTEMPT NODE" to `$1/$SWARM_TASK_ID`, then sleeps `$2` seconds if given: each
    /// task's file counts its runs. `$0` is the harness's marker, so leftovers are found.
    static let script = #"echo "$SWARM_ATTEMPT $SWARM_NODE" >> "$1/$SWARM_TASK_ID"; if [ -n "$2" ]; then sleep "$2"; fi"#

    /// Starts `swarm scheduler` on `address` with `stateDir`, retrying a few times in case the
    /// port is briefly taken by someone else.
    static func restartScheduler(_ harness: ProcessHarness, _ address: String, stateDir: String, extra: [String] = []) throws {
        for attempt in 1...5 {
            let child = try harness.start("scheduler-restart-\(attempt)", ["scheduler", "--listen", address, "--state-dir", stateDir] + extra)
            if child.waitForLine(containing: "listening on", timeout: 30) != nil { return }
            usleep(300_000)
        }
        Issue.record("the scheduler did not come back on \(address)")
    }

    /// Rows of the `runs` table: task id -> "attempt:state", in attempt order.
    static func runs(_ stateDir: String) throws -> [String: [String]] {
        let db = try SQLiteDatabase(path: stateDir + "/swarm.db", readOnly: true)
        let rows = try db.prepare("SELECT task_id, attempt, state FROM runs ORDER BY task_id, attempt")
        var runs: [String: [String]] = [:]
        while try rows.step() { runs[rows.string(0)!, default: []].append("\(rows.int64(1)!):\(rows.string(2)!)") }
        return runs
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The issue's test: kill -9 the scheduler with 1,000 queued and 10 running tasks, start it
    /// again on the same state dir; every task completes exactly once.
    @Test func schedulerKilledWithAThousandQueuedAndTenRunningLosesAndDoublesNothing() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let stateDir = "\(harness.dir)/state"
        let address = try E.startScheduler(harness)
        let scheduler = try #require(harness.childNamed("scheduler"))
        for i in 1...2 {
            try harness.start("worker-\(i)", ["worker", "--scheduler", address, "--slots", "5", "--name", "w\(i)",
                                              "--data-dir", "\(harness.dir)/w\(i)"])
        }
        _ = try E.waitForNodes(harness, address, count: 2)
        let traceDir = "\(harness.dir)/trace"
        try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)

        let before = try SwarmClient(address: address, token: nil)
        // The long ones run until the test releases them (after the restart; at most 60 s), not
        // for a fixed time: under a sanitizer or a loaded machine, submitting the 1,000 took
        // longer than a fixed 3 s, so they ended and quick ones started before the kill.
        let holdUntilReleased = #"echo "$SWARM_ATTEMPT $SWARM_NODE" >> "$1/$SWARM_TASK_ID"; i=0; while [ ! -e "$1/release" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done"#
        let long = (1...10).map { TaskSpec(id: "long-\($0)", command: ["sh", "-c", holdUntilReleased, harness.marker, traceDir]) }
        let quick = (1...1_000).map { TaskSpec(id: "quick-\($0)", command: ["sh", "-c", Self.script, harness.marker, traceDir]) }
        #expect(try before.submitMany(long).allSatisfy { (try? $0.get()) != nil })
        for _ in 0..<250 {
            if try before.listTasks().filter({ $0.state == .running && $0.startedAt != nil }).count == 10 { break }
            usleep(20_000)
        }
        #expect(try before.submitMany(quick).allSatisfy { (try? $0.get()) != nil })
        let atKill = try before.listTasks()
        #expect(atKill.filter { $0.state == .running }.count == 10)
        #expect(atKill.filter { $0.state == .queued }.count == 1_000)

        kill(scheduler.pid, SIGKILL)
        scheduler.process.waitUntilExit()
        let downAt = Date()
        try Self.restartScheduler(harness, address, stateDir: stateDir)
        let restartSeconds = Date().timeIntervalSince(downAt)
        FileManager.default.createFile(atPath: "\(traceDir)/release", contents: nil)

        let after = try SwarmClient(address: address, token: nil)
        let ids = (long + quick).map { $0.id! }
        let infos = try after.wait(ids, timeoutSeconds: 90)
        #expect(infos.count == 1_010)
        #expect(infos.filter { $0.state != .succeeded }.map(\.id).isEmpty)
        #expect(infos.filter { $0.attempts != 1 }.map(\.id).isEmpty)
        let ranOtherThanOnce = ids.filter { Self.lines("\(traceDir)/\($0)").count != 1 }
        #expect(ranOtherThanOnce.isEmpty, "tasks that did not run exactly once: \(ranOtherThanOnce.prefix(10))")
        let runs = try Self.runs(stateDir)
        #expect(runs.count == 1_010)
        #expect(runs.filter { $0.value != ["1:succeeded"] }.isEmpty)
        print("scheduler back (restored 1,010 tasks, listening) \(String(format: "%.2f", restartSeconds)) s after kill -9")
    }

    /// A worker killed with -9 while its task runs, started again on its data dir: the old run's
    /// process group is killed and reported, and the task runs once more and ends once.
    @Test func workerRestartedOnItsDataDirKillsAndReportsWhatItLeftRunning() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        let arguments = ["worker", "--scheduler", address, "--slots", "1", "--name", "a", "--data-dir", "\(harness.dir)/a"]
        let worker = try harness.start("worker", arguments)
        _ = try E.waitForNodes(harness, address, count: 1)
        let traceDir = "\(harness.dir)/trace"
        try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)
        let task = #"echo "$SWARM_ATTEMPT" >> "$1/$SWARM_TASK_ID"; if [ "$SWARM_ATTEMPT" = 1 ]; then sleep 30; fi"#
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "phoenix", "--", "sh", "-c", task, harness.marker, traceDir])
        #expect(submit.status == 0)
        try E.waitStarted(harness, address, "phoenix")
        let entry = try #require(RunJournal(directory: "\(harness.dir)/a/runs").entry("phoenix"))
        #expect(entry.attempt == 1)

        kill(worker.pid, SIGKILL)
        // Not waitUntilExit: Foundation learns of the exit when a socket it gave the worker closes,
        // and the worker's tasks inherited it.
        for _ in 0..<3_000 where !(ProcessTable.stat(worker.pid)?.isGone ?? true) { usleep(10_000) }
        #expect(!ProcessTable.members(ofGroup: entry.processGroup).isEmpty)  // orphaned, still running
        try harness.start("worker-again", arguments)

        let info = try E.waitSucceeded(harness, address, "phoenix")
        #expect(info["attempts"] as? Int == 2)
        #expect(ProcessTable.members(ofGroup: entry.processGroup).isEmpty)
        #expect(Self.lines("\(traceDir)/phoenix") == ["1", "2"])
        #expect(try Self.runs("\(harness.dir)/state")["phoenix"] == ["1:lost", "2:succeeded"])
        // Why the first run ended is in the task's log, as `swarm logs` shows it.
        let log = try harness.run(["logs", "--scheduler", address, "--lifecycle", "phoenix"])
        #expect(log.stdout.contains(RunJournal.killedReason), "\(log.stdout)")
    }

    /// A worker killed with -9 in the middle of a batch of short tasks (results being sent,
    /// recorded in its journal and acknowledged as it dies), started again on its data dir:
    /// every task ends succeeded, and none whose success the scheduler had before the kill
    /// runs again (its result came from the journal, or the scheduler ignores the run's `lost`).
    @Test func workerKilledMidBatchLosesNothingAcknowledged() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try E.startScheduler(harness)
        let arguments = ["worker", "--scheduler", address, "--slots", "4", "--name", "a", "--data-dir", "\(harness.dir)/a"]
        let worker = try harness.start("worker", arguments)
        _ = try E.waitForNodes(harness, address, count: 1)
        let traceDir = "\(harness.dir)/trace"
        try FileManager.default.createDirectory(atPath: traceDir, withIntermediateDirectories: true)
        let client = try SwarmClient(address: address, token: nil)
        // Half print (their logs are made), half are silent.
        let specs = (1...48).map { i in
            TaskSpec(id: "b-\(i)", command: ["sh", "-c", Self.script + (i % 2 == 0 ? "; echo done" : ""), harness.marker, traceDir])
        }
        #expect(try client.submitMany(specs).allSatisfy { (try? $0.get()) != nil })
        var succeededBefore: Set<String> = []
        for _ in 0..<1_500 {
            succeededBefore = Set(try client.listTasks().filter { $0.state == .succeeded }.map(\.id))
            if succeededBefore.count >= 12 { break }
            usleep(20_000)
        }
        kill(worker.pid, SIGKILL)
        for _ in 0..<500 where !(ProcessTable.stat(worker.pid)?.isGone ?? true) { usleep(10_000) }
        #expect(succeededBefore.count >= 12 && succeededBefore.count < specs.count, "\(succeededBefore.count) succeeded at the kill")
        try harness.start("worker-again", arguments)

        let infos = try client.wait(specs.map { $0.id! }, timeoutSeconds: 90)
        #expect(infos.count == specs.count)
        #expect(infos.filter { $0.state != .succeeded }.map(\.id).isEmpty)
        let rerun = succeededBefore.filter { Self.lines("\(traceDir)/\($0)").count != 1 }.sorted()
        #expect(rerun.isEmpty, "acknowledged tasks that ran again: \(rerun.prefix(10))")
        #expect(specs.allSatisfy { !Self.lines("\(traceDir)/\($0.id!)").isEmpty })
        // Everything acknowledged: the new worker's journal lets go of every run.
        let journal = RunJournal(directory: "\(harness.dir)/a/runs")
        for _ in 0..<200 where !journal.entries().isEmpty { usleep(50_000) }
        #expect(journal.entries().isEmpty)
    }
}
