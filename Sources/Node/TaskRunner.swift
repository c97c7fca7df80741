import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// What a runner needs from its worker: the resolved argv, environment and directories of
/// one run, and where its events go.
struct RunnerContext {
    var argv: [String]
    var environment: [String]
    var workingDirectory: String?
    /// Written to the child's stdin, which is then closed; nil: stdin is /dev/null.
    var stdin: String?
    var logPath: String
    var supervisorSettings: TaskSupervisor.Settings
    var metrics: RunMetrics
    /// `monotonic` for the supervisor's deadlines and the runner's timers; `wall` for log
    /// lines, output's `at` and the result's dates.
    var clocks: Clocks
    /// `silence_warning` / `extended`, as they happen.
    var onEvent: (String, String) -> Void = { _, _ in }
    /// Every chunk of output as it arrives, with its wall-clock time.
    var onOutput: (OutputChannel, [UInt8], Int64) -> Void = { _, _, _ in }
}

/// The shell around one `TaskSupervisor`: spawns the process with its pipes and timers and
/// carries out the supervisor's actions. Loop thread only. `onFinish` fires exactly once,
/// after every handle of the task is closed and its process group is gone (reaped).
final class TaskRunner {
    let loop: EventLoop
    private(set) var supervisor: TaskSupervisor
    private let context: RunnerContext
    private var process: UVProcess?
    private var stdinPipe: UVPipe?
    private var stdoutPipe: UVPipe?
    private var stderrPipe: UVPipe?
    /// Wake-ups of the progress clock; grace and drain periods.
    private var wakeTimer: UVTimer?
    private var timer: UVTimer?
    private var log: TaskLog?
    private var onFinish: ((TaskResult) -> Void)?
    private(set) var pid: Int?
    /// Unix microseconds (wall clock, on purpose): spawn returned, first output byte read,
    /// exit seen. They are timestamps compared with other processes' (`swarm bench` puts a
    /// client's submission beside a run's start), which only the wall clock allows; the
    /// result's durations (`timeToFirstOutputMs` and the like) are measured monotonically.
    private var startedAtUs: Int64?
    private var firstOutputAtUs: Int64?
    private var exitedAtUs: Int64?
    /// Per stream, the start of a character a read cut off: everything past the runner (log
    /// file, stream, tail) sees whole characters.
    private var stdoutCarry = UTF8Carry()
    private var stderrCarry = UTF8Carry()

    var id: String { supervisor.assignment.id }
    var attempt: Int { supervisor.assignment.attempt }
    /// How long to wait for the killed group's members to disappear before reporting anyway.
    static let reapLimitMs: Int64 = 2_000

    init(loop: EventLoop, assignment: TaskAssignment, context: RunnerContext, onFinish: @escaping (TaskResult) -> Void) {
        self.loop = loop
        self.supervisor = TaskSupervisor(assignment: assignment, settings: context.supervisorSettings, metrics: context.metrics)
        self.context = context
        self.onFinish = onFinish
    }

    func start() {
        // The log file is created only when the run prints or has more than its routine lines
        // to tell (`TaskLog`'s deferred mode): a silent `true` leaves none.
        log = try? TaskLog(path: context.logPath, deferred: true)
        let argv = context.argv
        guard let program = argv.first else {
            apply(.spawnFailed(reason: "empty command", nowMs: context.clocks.monotonic()))
            return
        }
        var options = SpawnOptions(executable: program, arguments: Array(argv.dropFirst()))
        options.environment = context.environment
        options.workingDirectory = context.workingDirectory
        do {
            if context.stdin != nil {
                let input = try UVPipe(loop: loop)
                stdinPipe = input
                options.stdin = .pipe(input)
            }
            let out = try UVPipe(loop: loop)
            stdoutPipe = out
            let err = try UVPipe(loop: loop)
            stderrPipe = err
            options.stdout = .pipe(out)
            options.stderr = .pipe(err)
            GapTrace.mark("w_spawn_call")
            let process = try UVProcess.spawn(loop: loop, options) { [weak self] status, signal in
                guard let self else { return }
                self.exitedAtUs = unixMicros()
                GapTrace.mark("w_exit", self.id)
                self.apply(.exited(status: status, signal: signal, nowMs: self.context.clocks.monotonic()))
            }
            startedAtUs = unixMicros()
            GapTrace.mark("w_spawn_ret")
            self.process = process
            pid = Int(process.pid)
            apply(.spawned(pid: Int(process.pid), nowMs: context.clocks.monotonic()))
            if let text = context.stdin, let input = stdinPipe {
                // A pipe has no half-close: closing our end once the text is written is the
                // child's EOF. An agent that never reads its stdin must not hold the write
                // forever: the pipe is closed with the task at the latest.
                input.stream.write(Array(text.utf8)) { [weak input] _ in input?.close() }
            }
            read(out, .stdout)
            read(err, .stderr)
        } catch {
            var reason = error == UVError.notFound
                ? "command not found: \(program)" : "cannot start \(program): \(error)"
            // A failed chdir is reported as ENOENT too: say which one it was.
            if let dir = context.workingDirectory, access(dir, X_OK) != 0 {
                reason = "cannot enter working directory \(dir): \(String(cString: strerror(errno)))"
            }
            apply(.spawnFailed(reason: reason, nowMs: context.clocks.monotonic()))
        }
    }

    /// Kills the task's process group (SIGTERM, then SIGKILL after the grace period).
    func kill(reason: String, state: TaskState = .cancelled) {
        apply(.killRequested(reason: reason, state: state, nowMs: context.clocks.monotonic()))
    }

    /// Ends the grace period of a kill under way: SIGKILL to the group now.
    func hurryKill() {
        apply(.hurryKill(nowMs: context.clocks.monotonic()))
    }

    /// Whether the log's last line ("result: ...") and its close wait for `closeLog`, called
    /// by whoever got the result (the worker, once the result is on its way). Off: written
    /// before `onFinish`.
    var defersLogClose = false

    /// Ends the run's log with its result and closes it. Idempotent.
    func closeLog(_ result: TaskResult) {
        guard let log else { return }
        log.lifecycle("result: \(result.state.rawValue)\(result.reason.map { " (\($0))" } ?? "")", at: context.clocks.wall(),
                      routine: true)
        log.close()
        self.log = nil
    }

    /// Whether a lifecycle line is one every run has (its start, its exit), which alone does
    /// not make a log file: the line the supervisor gives for `.spawned` or `.exited`.
    static func isRoutine(_ line: String, of event: SupervisorEvent) -> Bool {
        switch event {
        case .spawned: line.hasPrefix("started pid ")
        case .exited: line.hasPrefix("exited ")
        default: false
        }
    }

    /// While a kill is under way: when SIGKILL goes (went) to the group, monotonic ms.
    var sigkillAtMs: Int64? { supervisor.sigkillAtMs }

    private func read(_ pipe: UVPipe, _ stream: OutputChannel) {
        do {
            try pipe.stream.startReading { [weak self] event in
                guard let self else { return }
                let now = self.context.clocks.monotonic(), at = self.context.clocks.wall()
                switch event {
                case .data(let bytes):
                    if self.firstOutputAtUs == nil { self.firstOutputAtUs = unixMicros() }
                    let chunk = stream == .stdout ? self.stdoutCarry.take(bytes) : self.stderrCarry.take(bytes)
                    self.deliver(stream, chunk, now: now, at: at)
                case .eof, .error:
                    // An incomplete character at the very end is passed on as it is.
                    let rest = stream == .stdout ? self.stdoutCarry.finish() : self.stderrCarry.finish()
                    self.deliver(stream, rest, now: now, at: at)
                    self.log?.flush(stream, at: at)
                    self.apply(.streamClosed(stream, nowMs: now), at: at)
                }
            }
        } catch {
            apply(.streamClosed(stream, nowMs: context.clocks.monotonic()))
        }
    }

    private func deliver(_ stream: OutputChannel, _ chunk: [UInt8], now: Int64, at: Int64) {
        guard !chunk.isEmpty else { return }
        chunk.withUnsafeBytes { log?.output(stream, $0, at: at) }
        context.onOutput(stream, chunk, at)
        apply(.output(stream, chunk, nowMs: now), at: at)
    }

    /// Feeds the supervisor an event (its `nowMs` monotonic) with the wall clock's `at` (read
    /// now unless the caller read it with `nowMs`), and carries out its actions.
    private func apply(_ event: SupervisorEvent, at: Int64? = nil) {
        let at = at ?? context.clocks.wall()
        for action in supervisor.handle(event, at: at) {
            switch action {
            case .log(let line):
                log?.lifecycle(line, at: at, routine: Self.isRoutine(line, of: event))
            case .signalGroup(let signal):
                if let pid { ProcessGroup.signal(Int32(pid), signal) }
            case .armWake(let wakeAt):
                if wakeTimer == nil { wakeTimer = try? UVTimer(loop: loop) }
                let delay = UInt64(max(0, wakeAt - context.clocks.monotonic()))
                wakeTimer?.start(afterMs: delay) { [weak self] in
                    guard let self else { return }
                    self.apply(.wake(nowMs: self.context.clocks.monotonic()))
                }
            case .startDrainTimer(let ms), .startGraceTimer(let ms):
                let isDrain: Bool
                if case .startDrainTimer = action { isDrain = true } else { isDrain = false }
                wakeTimer?.stop()
                if timer == nil { timer = try? UVTimer(loop: loop) }
                timer?.start(afterMs: ms) { [weak self] in
                    guard let self else { return }
                    let now = self.context.clocks.monotonic()
                    self.apply(isDrain ? .drainTimerFired(nowMs: now) : .graceTimerFired(nowMs: now))
                }
            case .event(let kind, let detail):
                context.onEvent(kind, detail)
            case .finish(var result):
                result.metrics.startedAtUs = startedAtUs
                result.metrics.firstOutputAtUs = firstOutputAtUs
                result.metrics.exitedAtUs = exitedAtUs
                finish(result)
            }
        }
    }

    private func finish(_ result: TaskResult) {
        // Close every handle; report once the last close callback has run and the group is gone.
        var open = 0
        let done: () -> Void = { [weak self] in
            open -= 1
            if open == 0, let self { self.awaitEmptyGroup(result, since: self.context.clocks.monotonic()) }
        }
        open += 1  // held until every close is requested
        let handles: [(@escaping () -> Void) -> Void] = [
            stdinPipe.map { p in { p.close($0) } }, stdoutPipe.map { p in { p.close($0) } },
            stderrPipe.map { p in { p.close($0) } }, process.map { p in { p.close($0) } },
            wakeTimer.map { t in { t.close($0) } },
        ].compactMap { $0 }
        for close in handles {
            open += 1
            close(done)
        }
        stdinPipe = nil
        stdoutPipe = nil
        stderrPipe = nil
        process = nil
        wakeTimer = nil
        done()
    }

    /// The group was sent SIGKILL; its members that were re-parented to us (we are a
    /// subreaper) become our zombies: reap them until nothing of the group is left. `start`:
    /// monotonic ms.
    private func awaitEmptyGroup(_ result: TaskResult, since start: Int64) {
        let pgid = Int32(pid ?? 0)
        ProcessGroup.reapExited(pgid)
        if ProcessGroup.isEmpty(pgid) || context.clocks.monotonic() - start >= Self.reapLimitMs {
            if !ProcessGroup.isEmpty(pgid) {
                log?.lifecycle("processes of group \(pgid) still exist \(Self.reapLimitMs) ms after SIGKILL (not our children?)", at: context.clocks.wall())
            }
            report(result)
            return
        }
        ProcessGroup.signal(pgid, SIGKILL)
        if timer == nil { timer = try? UVTimer(loop: loop) }
        timer?.start(afterMs: 10) { [weak self] in self?.awaitEmptyGroup(result, since: start) }
    }

    private func report(_ result: TaskResult) {
        var result = result
        // A run that printed nothing and ended plainly made no log file (an earlier run's
        // may be there: then it is named).
        if log == nil || log?.deferred == true, access(context.logPath, F_OK) != 0 { result.metrics.logFile = nil }
        if !defersLogClose { closeLog(result) }
        let finish = { [weak self] in
            guard let self, let callback = self.onFinish else { return }
            self.onFinish = nil
            callback(result)
        }
        if let timer {
            self.timer = nil
            timer.close(finish)
        } else {
            finish()
        }
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension TaskRunner: Sendable {}
