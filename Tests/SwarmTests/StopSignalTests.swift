import Foundation
import Testing

/// Issue 10 item 5: a stop by signal ends every task's process group before the role exits,
/// however many signals come. Real `swarm` processes; tasks that ignore SIGTERM and have
/// grandchildren, found through /proc by a marker unique to each test in their argv.
@Suite(.serialized) struct StopSignalTests {
    typealias E2E = EndToEndTests

    /// A task that ignores SIGTERM and starts 4 children that ignore it too: 5 processes
    /// carrying `marker` in their argv (plus their short-lived `sleep`s).
    static func stubbornTask(_ marker: String) -> [String] {
        ["sh", "-c", "trap '' TERM; for i in 1 2 3 4; do sh -c 'trap \"\" TERM; while :; do sleep 1; done' \"$0-child\" & done; wait",
         marker]
    }

    /// Process group of `pid` (field 5 of /proc/PID/stat), or nil when it is gone.
    static func processGroup(_ pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return fields.count > 2 ? Int32(fields[2]) : nil
    }

    /// Live processes whose group is one of `groups`.
    static func members(of groups: Set<Int32>) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let group = processGroup(pid), groups.contains(group) else { return false }
            return !processGone(pid)
        }
    }

    /// Submits `count` stubborn tasks and waits (bounded) until all their processes run;
    /// returns their process groups.
    static func startStubbornTasks(_ harness: ProcessHarness, _ address: String, marker: String, count: Int) throws -> Set<Int32> {
        for _ in 0..<count {
            let submit = try harness.run(["submit", "--scheduler", address, "--"] + stubbornTask(marker))
            #expect(submit.status == 0, "\(submit.stderr)")
        }
        var pids: [Int32] = []
        for _ in 0..<400 {
            pids = ProcessHarness.processes(containing: marker).filter { pid in
                let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                return String(decoding: cmdline, as: UTF8.self).contains(marker)
            }
            if pids.count == count * 5 { break }  // a fork not yet exec'd shows its parent's argv for a moment
            usleep(50_000)
        }
        #expect(pids.count == count * 5, "the tasks' processes did not all start")
        return Set(pids.compactMap(processGroup))
    }

    /// Sends `signals` to `child`, `gapMs` apart, then waits (bounded) for it to exit; one
    /// still running after 30 s is an issue, and is killed.
    static func signal(_ child: ProcessHarness.Child, _ signals: [Int32], gapMs: UInt32 = 500) {
        for (index, signal) in signals.enumerated() {
            if index > 0 { usleep(gapMs * 1000) }
            kill(child.pid, signal)
        }
        let deadline = Date().addingTimeInterval(30)
        while child.process.isRunning && Date() < deadline { usleep(20_000) }
        if child.process.isRunning {
            Issue.record("\(child.name) did not exit within 30 s of its signals")
            kill(child.pid, SIGKILL)
            child.process.waitUntilExit()
        }
    }

    /// Whatever happened, no process of `groups` outlives the test.
    static func killGroups(_ groups: Set<Int32>) {
        for group in groups where group > 1 { kill(-group, SIGKILL) }
    }

    static func upStops(signals: [Int32]) throws {
        let harness = try ProcessHarness()
        var groups: Set<Int32> = []
        defer { Self.killGroups(groups); harness.cleanup() }
        let marker = "stubborn-\(harness.marker)"
        let up = try harness.start("up", ["up", "--listen", "127.0.0.1:0", "--workers", "1", "--slots", "4",
                                          "--data-dir", "\(harness.dir)/up"])
        let line = try #require(up.waitForLine(containing: "listening on"))
        let address = String(try #require(line.split(separator: " ").last))
        _ = try E2E.waitForNodes(harness, address, count: 1)
        groups = try startStubbornTasks(harness, address, marker: marker, count: 3)
        #expect(groups.count == 3)

        signal(up, signals)
        #expect(up.process.terminationReason == .exit, "swarm up was killed by its signal")
        let survivors = members(of: groups)
        #expect(survivors.isEmpty, "processes of the tasks' groups outlived swarm up: \(survivors)")
        let log = (try? String(contentsOfFile: "\(harness.dir)/up.log", encoding: .utf8)) ?? ""
        #expect(log.contains("stopping: waiting for 3 tasks on worker-1 (SIGKILL in "), "\(log)")
    }

    @Test func upWithTwoSignalsKillsEveryGroupBeforeExiting() throws {
        try Self.upStops(signals: [SIGINT, SIGINT])
    }

    @Test func upWithOneSignalKillsEveryGroupBeforeExiting() throws {
        try Self.upStops(signals: [SIGINT])
    }

    @Test func workerAndSchedulerSurviveRepeatedSignalsUntilTheirWorkIsDone() throws {
        let harness = try ProcessHarness()
        var groups: Set<Int32> = []
        defer { Self.killGroups(groups); harness.cleanup() }
        let marker = "stubborn-\(harness.marker)"
        let (scheduler, address) = try ClusterEndToEndTests.schedulerAndWorker(harness, slots: 4)
        groups = try Self.startStubbornTasks(harness, address, marker: marker, count: 3)
        let worker = try #require(harness.childNamed("worker"))

        // Three signals: the second hurries the stop, the third changes nothing more.
        Self.signal(worker, [SIGTERM, SIGINT, SIGTERM])
        #expect(worker.process.terminationReason == .exit, "swarm worker was killed by a signal")
        let survivors = Self.members(of: groups)
        #expect(survivors.isEmpty, "processes of the tasks' groups outlived swarm worker: \(survivors)")
        let log = (try? String(contentsOfFile: "\(harness.dir)/worker.log", encoding: .utf8)) ?? ""
        #expect(log.contains("stopping: waiting for 3 tasks on w (SIGKILL in "), "\(log)")

        // The scheduler has no task processes: repeated signals end it cleanly, not by default action.
        Self.signal(scheduler, [SIGINT, SIGINT, SIGTERM], gapMs: 100)
        #expect(scheduler.process.terminationReason == .exit && scheduler.process.terminationStatus == 0)
    }

    /// `swarm demo` runs a cluster in its own process too: Ctrl-C stops it (its tasks'
    /// groups) before the process ends, with status 130, instead of the default action.
    @Test func demoStopsItsClusterOnASignal() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let demo = try harness.start("demo", ["demo", "--workers", "1", "--slots", "2", "--visible", "40", "--batch", "0",
                                              "--data-dir", "\(harness.dir)/demo"])
        _ = try #require(demo.waitForLine(containing: "visible tasks"))
        Self.signal(demo, [SIGINT])
        #expect(demo.process.terminationReason == .exit, "swarm demo was killed by its signal")
        #expect(demo.process.terminationStatus == 130)
        #expect(ProcessHarness.processes(containing: harness.marker).isEmpty)
        // The stop is what the user asked for: the workload's client losing the cluster
        // under it is no error ("connection to scheduler lost" was printed).
        let log = (try? String(contentsOfFile: "\(harness.dir)/demo.log", encoding: .utf8)) ?? ""
        #expect(!log.contains("error:"), "\(log)")
    }
}
