import Foundation
import Testing

/// libfaketime (Debian `faketime`): processes started through it read their wall clock as
/// the real one plus the offset a file holds, re-read at every call; their monotonic clock is
/// the real one.
enum Faketime {
    static let library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
    static let unavailableReason: String? = {
        if !FileManager.default.fileExists(atPath: library) {
            return "\(library) not found (Debian package faketime; scripts/ensure-deps.sh installs it)"
        }
        // An AddressSanitizer binary with libfaketime preloaded hangs at start (libfaketime:
        // "Unexpected recursive calls to clock_gettime()" during ASan's own start-up), so the
        // processes these tests start could never run. scripts/sanitize.sh sets this.
        if ProcessInfo.processInfo.environment["SWARM_SANITIZER"] == "address" {
            return "libfaketime cannot be preloaded into AddressSanitizer binaries (they hang at start)"
        }
        return nil
    }()

    /// Whether the tests can use it; prints the reason once when they cannot.
    static var available: Bool {
        if let reason = unavailableReason {
            print("WallClockStepTests skipped: \(reason)")
            return false
        }
        return true
    }

    /// The environment of a process under libfaketime whose wall clock follows `file` (an
    /// offset such as `+1h`). 0.9.10 reads `FAKETIME_DONT_FAKE_MONOTONIC`, older releases
    /// `DONT_FAKE_MONOTONIC`: without it the monotonic clock would be stepped as well.
    static func environment(file: String) -> [String: String] {
        ["LD_PRELOAD": library, "FAKETIME_TIMESTAMP_FILE": file, "FAKETIME_NO_CACHE": "1",
         "FAKETIME_DONT_FAKE_MONOTONIC": "1", "DONT_FAKE_MONOTONIC": "1"]
    }

    /// `sh -c 'exec "$@"' sh swarm ...`: a Swift binary started directly with libfaketime
    /// preloaded lost its arguments; through `sh` it keeps them (and the same pid).
    static let launcher = ["/bin/sh", "-c", "exec \"$@\"", "sh"]

    /// Sets the offset (atomically: a reader never sees a half-written file).
    static func set(_ offset: String, file: String) throws {
        try (offset + "\n").write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// libfaketime leaves the shared memory of the process that first loaded it (the `sh`
    /// that then became `swarm`): removed, or a later process with the same pid would fail.
    static func removeSharedMemory(of pids: [Int32]) {
        for pid in pids {
            unlink("/dev/shm/faketime_shm_\(pid)")
            unlink("/dev/shm/sem.faketime_sem_\(pid)")
        }
    }
}

/// A scheduler and a worker whose wall clock is stepped an hour forward and back (twice)
/// while tasks with 3 s deadlines and 2 s silence kills run (issue 12). Durations are on the
/// monotonic clock, so: no worker is lost (`--lost-after 1`), every deadline and silence kill
/// fires when the monotonic clock says (not 0.5 s before, at most 2.5 s after: a loaded
/// machine's delay; a step is an hour), and the outcomes are those of the
/// same tasks run without steps.
///
/// Each task records its own times from `/proc/uptime` (not faked): its start, its last
/// output, and when SIGTERM reached it (a trap). A deadline "fires" at that SIGTERM.
@Suite(.serialized) struct WallClockStepTests {
    /// Every task: 3 s deadline (not extended), 2 s silence kill, 1 s kill grace.
    static let script = #"""
        d=$1; mode=$2
        now() { read -r u _ < /proc/uptime; echo "$u"; }
        trap 'now > "$d/$SWARM_TASK_ID.term"; exit 143' TERM
        now > "$d/$SWARM_TASK_ID.start"
        say() { echo "$1"; now > "$d/$SWARM_TASK_ID.last"; }
        case $mode in
          ticker) i=0; while [ $i -lt 30 ]; do say "tick $i"; sleep 0.4; i=$((i+1)); done ;;
          quiet) say ready; sleep 10 ;;
          quietlater) for i in 1 2 3; do say "tick $i"; sleep 0.4; done; sleep 10 ;;
          brief) for i in 1 2 3 4; do say "tick $i"; sleep 0.4; done ;;
        esac
        """#

    /// What each kind of task must come to, and when (seconds of monotonic time after its
    /// start, or after its last output for a silence kill). nil: it ends on its own.
    static let expected: [(mode: String, state: String, firesAfter: Double?, sinceLastOutput: Bool)] = [
        ("ticker", "timed_out", 3.0, false),        // prints every 0.4 s: only the deadline ends it
        ("quiet", "silence_killed", 2.0, true),     // one line, then nothing
        ("quietlater", "silence_killed", 2.0, true),  // silent from ~0.8 s: its 2 s span the steps
        ("brief", "succeeded", nil, false),         // done in ~1.6 s: nothing may fire early
    ]

    struct Observed {
        var state: String
        var attempts: Int
        /// Seconds from the start (or last output) to the SIGTERM; nil: none came.
        var firedAfter: Double?
        /// Its `finishedAt` (the worker's wall clock) less the real wall clock when it ended
        /// (as the test, not under libfaketime, reads it), in hours: shows the step in effect.
        var finishedOffsetHours: Double?
        /// Its run's `durationMs` (`runs`, last) and `runMs`, in seconds: its worker's monotonic
        /// measure, which the steps must not change.
        var durationSeconds: Double?
        var runSeconds: Double?
    }

    @Test(.enabled(if: Faketime.available, "needs libfaketime (Debian faketime)"))
    func wallClockStepsMoveNoDeadlineAndLoseNoWorker() throws {
        let harness = try ProcessHarness()
        var fakedPids: [Int32] = []
        defer {
            harness.cleanup()
            Faketime.removeSharedMemory(of: fakedPids)
        }
        let offsetFile = "\(harness.dir)/faketime.rc"
        try Faketime.set("+0", file: offsetFile)
        let env = Faketime.environment(file: offsetFile)
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--state-dir", "\(harness.dir)/state",
                                                        "--lost-after", "1", "--heartbeat", "0.2"],
                                          environment: env, launcher: Faketime.launcher)
        fakedPids.append(scheduler.pid)
        let line = try #require(scheduler.waitForLine(containing: "listening on"), "scheduler did not report its address")
        let address = String(try #require(line.split(separator: " ").last))
        let worker = try harness.start("worker", ["worker", "--scheduler", address, "--slots", "4", "--name", "w1",
                                                  "--data-dir", "\(harness.dir)/w1"],
                                       environment: env, launcher: Faketime.launcher)
        fakedPids.append(worker.pid)
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1)

        let plain = try Self.round("plain", harness: harness, address: address) { _ in }
        #expect(plain.values.allSatisfy { abs($0.finishedOffsetHours ?? 99) < 0.02 }, "dated by the real clock: \(plain)")
        let stepped = try Self.round("stepped", harness: harness, address: address) { elapsed in
            // Forward 1 h, back 1 h, back 1 h more, forward 2 h: the silence kills and the
            // deadline (2 to 3 s) fire an hour behind and an hour ahead of the real time.
            let steps: [(at: Double, offset: String)] = [(0.4, "+1h"), (1.0, "+0"), (1.6, "-1h"), (2.4, "+1h")]
            for step in steps {
                while elapsed() < step.at { usleep(10_000) }
                try Faketime.set(step.offset, file: offsetFile)
            }
        }
        try Faketime.set("+0", file: offsetFile)
        // The steps were in effect: what ended after the last one (at 2.4 s) is dated an hour
        // ahead, so the dates follow the wall clock while the durations did not. One of the
        // two suffices: libfaketime 0.9.10 now and then gives a read in a multi-threaded
        // process another step's offset, tens of ms after the file changed (its offset-file
        // parsing shares static buffers between threads; a C stress of 4 threads: ~0.06% of
        // reads, up to 2 h from the offset in the file). A flake read 2.0 h where 1 h was
        // expected. Every date is still some step's whole hour, never a drift.
        let late: [Double] = ["ticker", "quietlater"].map { stepped[$0]?.finishedOffsetHours ?? 0 }
        #expect(late.contains { abs($0 - 1) < 0.02 }, "dated \(late) h off, not +1 h")
        for (mode, observed) in stepped {
            let hours: Double = observed.finishedOffsetHours ?? 0.5
            #expect(abs(hours - hours.rounded()) < 0.02 && abs(hours) < 2.02, "\(mode) dated \(hours) h off")
        }

        for (mode, state, firesAfter, _) in Self.expected {
            for (round, observed) in [("plain", plain), ("stepped", stepped)] {
                let seen = try #require(observed[mode], "\(round) \(mode): no outcome")
                // Every task runs 1.6 to 4 s of real time: an hour's step in its dates is not
                // in its duration.
                for (name, value) in [("durationMs", seen.durationSeconds), ("runMs", seen.runSeconds)] {
                    let seconds = try #require(value, "\(round) \(mode): no \(name)")
                    #expect(seconds > 1 && seconds < 10, "\(round) \(mode): \(name) is \(seconds) s")
                }
                #expect(seen.state == state, "\(round) \(mode): \(seen.state), expected \(state)")
                #expect(seen.attempts == 1, "\(round) \(mode): ran \(seen.attempts) times")
                if let firesAfter {
                    let fired = try #require(seen.firedAfter, "\(round) \(mode): never got SIGTERM")
                    // Never early (a forward step would fire it at once); late only by what a
                    // loaded machine (CI beside builds) adds, far from the hour a backward step
                    // would add.
                    #expect(fired - firesAfter >= -0.5 && fired - firesAfter <= 2.5,
                            "\(round) \(mode): fired after \(fired) s, not \(firesAfter) s")
                } else {
                    #expect(seen.firedAfter == nil, "\(round) \(mode): killed after \(seen.firedAfter ?? 0) s")
                }
            }
            #expect(plain[mode]?.state == stepped[mode]?.state, "\(mode): outcome changed with the steps")
        }
        let nodes = try EndToEndTests.waitForNodes(harness, address, count: 1)
        #expect(nodes.first?["name"] as? String == "w1")
        let log = (try? String(contentsOfFile: "\(harness.dir)/scheduler.log", encoding: .utf8)) ?? ""
        #expect(!log.contains(" lost"), "the scheduler lost a worker: \(log.split(separator: "\n").filter { $0.contains(" lost") })")
        #expect(!log.contains("stalled"), "the scheduler thought it was stalled")
    }

    /// Submits one task of each kind (`PREFIX-MODE`), runs `during` (given the seconds since
    /// every task started) while they run, waits for them and reads what they recorded.
    static func round(_ prefix: String, harness: ProcessHarness, address: String,
                      during: (_ elapsed: () -> Double) throws -> Void) throws -> [String: Observed] {
        let traces = "\(harness.dir)/\(prefix)"
        try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
        let lines = try expected.map { kind -> String in
            let task: [String: Any] = ["id": "\(prefix)-\(kind.mode)", "command": ["sh", "-c", script, harness.marker, traces, kind.mode],
                                       "timeout": 3, "maxTimeout": 3, "silenceKill": 2, "killGrace": 1]
            return String(decoding: try JSONSerialization.data(withJSONObject: task), as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(toFile: "\(traces).jsonl", atomically: true, encoding: .utf8)
        let submitted = try harness.run(["submit", "--scheduler", address, "--file", "\(traces).jsonl"])
        #expect(submitted.status == 0, "submit: \(submitted.stderr)")
        let ids = expected.map { "\(prefix)-\($0.mode)" }
        // Bounded: every task has written its start (its process runs).
        let begin = Date()
        while ids.contains(where: { !FileManager.default.fileExists(atPath: "\(traces)/\($0).start") }) && Date().timeIntervalSince(begin) < 10 {
            usleep(10_000)
        }
        let started = Date()
        try during { Date().timeIntervalSince(started) }
        let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "20"] + ids, timeout: 30)
        let infos = try #require(try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]], "wait: \(wait.stderr)")
        let realNowMs = Int64(Date().timeIntervalSince1970 * 1000)
        var observed: [String: Observed] = [:]
        for kind in expected {
            let id = "\(prefix)-\(kind.mode)"
            guard let info = infos.first(where: { $0["id"] as? String == id }) else { continue }
            func uptime(_ what: String) -> Double? {
                (try? String(contentsOfFile: "\(traces)/\(id).\(what)", encoding: .utf8))
                    .flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            let from = kind.sinceLastOutput ? uptime("last") : uptime("start")
            let fired = uptime("term").flatMap { term in from.map { term - $0 } }
            // Ended within the last few seconds, real time: a step shows as a whole hour.
            let offset = (info["finishedAt"] as? NSNumber).map { Double($0.int64Value - realNowMs) / 3_600_000 }
            // `wait` replies carry no run history: `status` has it.
            let status = try harness.run(["status", "--scheduler", address, "--json", id])
            let full = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8))) as? [String: Any]
            let lastRun = (full?["runs"] as? [[String: Any]])?.last
            observed[kind.mode] = Observed(state: info["state"] as? String ?? "?", attempts: info["attempts"] as? Int ?? 0,
                                           firedAfter: fired, finishedOffsetHours: offset,
                                           durationSeconds: (lastRun?["durationMs"] as? NSNumber).map { $0.doubleValue / 1000 },
                                           runSeconds: (info["runMs"] as? NSNumber).map { $0.doubleValue / 1000 })
            let after = kind.sinceLastOutput ? "last output" : "start"
            let when = fired.map { String(format: "%.2f", $0) + " s after its \(after)" } ?? "none"
            let dated = offset.map { String(format: "%+.3f", $0) + " h" } ?? "?"
            print("WallClockStepTests \(id): \(info["state"] as? String ?? "?"), attempts \(info["attempts"] as? Int ?? 0), SIGTERM \(when), finishedAt \(dated) off the real clock")
        }
        return observed
    }
}
