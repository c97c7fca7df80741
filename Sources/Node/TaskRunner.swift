import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// What a runner needs from its worker.
struct RunnerContext {
    var environment: [String]
    var workingDirectory: String?
    var logPath: String
    var supervisorSettings: TaskSupervisor.Settings
    var now: () -> Int64
}

/// The shell around one `TaskSupervisor`: spawns the process with its pipes and timers and
/// carries out the supervisor's actions. Loop thread only. `onFinish` fires exactly once,
/// after every handle of the task is closed.
final class TaskRunner {
    let loop: EventLoop
    private(set) var supervisor: TaskSupervisor
    private let context: RunnerContext
    private var process: UVProcess?
    private var stdoutPipe: UVPipe?
    private var stderrPipe: UVPipe?
    private var timer: UVTimer?
    private var log: TaskLog?
    private var onFinish: ((TaskResult) -> Void)?
    private(set) var pid: Int?

    var id: String { supervisor.assignment.id }
    var attempt: Int { supervisor.assignment.attempt }

    init(loop: EventLoop, assignment: TaskAssignment, context: RunnerContext, onFinish: @escaping (TaskResult) -> Void) {
        self.loop = loop
        self.supervisor = TaskSupervisor(assignment: assignment, settings: context.supervisorSettings)
        self.context = context
        self.onFinish = onFinish
    }

    func start() {
        log = try? TaskLog(path: context.logPath)
        let command = supervisor.assignment.command
        var options = SpawnOptions(executable: command[0], arguments: Array(command.dropFirst()))
        options.environment = context.environment
        options.workingDirectory = context.workingDirectory
        do {
            let out = try UVPipe(loop: loop)
            stdoutPipe = out
            let err = try UVPipe(loop: loop)
            stderrPipe = err
            options.stdout = .pipe(out)
            options.stderr = .pipe(err)
            let process = try UVProcess.spawn(loop: loop, options) { [weak self] status, signal in
                guard let self else { return }
                self.apply(.exited(status: status, signal: signal, nowMs: self.context.now()))
            }
            self.process = process
            pid = Int(process.pid)
            apply(.spawned(pid: Int(process.pid), nowMs: context.now()))
            read(out, .stdout)
            read(err, .stderr)
        } catch {
            var reason = error == UVError.notFound
                ? "command not found: \(command[0])" : "cannot start \(command[0]): \(error)"
            // libuv reports a failed chdir as ENOENT too: say which one it was.
            if let dir = context.workingDirectory, access(dir, X_OK) != 0 {
                reason = "cannot enter working directory \(dir): \(String(cString: strerror(errno)))"
            }
            apply(.spawnFailed(reason: reason, nowMs: context.now()))
        }
    }

    /// Kills the task's process group (SIGTERM, then SIGKILL after the grace period).
    func kill(reason: String, state: TaskState = .cancelled) {
        apply(.killRequested(reason: reason, state: state, nowMs: context.now()))
    }

    private func read(_ pipe: UVPipe, _ stream: OutputChannel) {
        do {
            try pipe.stream.startReading { [weak self] event in
                guard let self else { return }
                let now = self.context.now()
                switch event {
                case .data(let bytes):
                    self.log?.output(stream, bytes, nowMs: now)
                    self.apply(.output(stream, Array(bytes), nowMs: now))
                case .eof, .error:
                    self.log?.flush(stream, nowMs: now)
                    self.apply(.streamClosed(stream, nowMs: now))
                }
            }
        } catch {
            apply(.streamClosed(stream, nowMs: context.now()))
        }
    }

    private func apply(_ event: SupervisorEvent) {
        for action in supervisor.handle(event) {
            switch action {
            case .log(let line):
                log?.lifecycle(line, nowMs: context.now())
            case .signalGroup(let signal):
                try? process?.signalGroup(signal)
            case .startDrainTimer(let ms), .startGraceTimer(let ms):
                let isDrain: Bool
                if case .startDrainTimer = action { isDrain = true } else { isDrain = false }
                if timer == nil { timer = try? UVTimer(loop: loop) }
                timer?.start(afterMs: ms) { [weak self] in
                    guard let self else { return }
                    let now = self.context.now()
                    self.apply(isDrain ? .drainTimerFired(nowMs: now) : .graceTimerFired(nowMs: now))
                }
            case .finish(let result):
                finish(result)
            }
        }
    }

    private func finish(_ result: TaskResult) {
        log?.lifecycle("result: \(result.state.rawValue)\(result.reason.map { " (\($0))" } ?? "")", nowMs: context.now())
        log?.close()
        log = nil
        // Close every handle; report once the last close callback has run.
        var open = 0
        let done: () -> Void = { [weak self] in
            open -= 1
            if open == 0, let self, let callback = self.onFinish {
                self.onFinish = nil
                callback(result)
            }
        }
        open += 1  // held until every close is requested
        for close in [stdoutPipe.map { p in { p.close(done) } }, stderrPipe.map { p in { p.close(done) } },
                      process.map { p in { p.close(done) } }, timer.map { t in { t.close(done) } }].compactMap({ $0 }) {
            open += 1
            close()
        }
        stdoutPipe = nil
        stderrPipe = nil
        process = nil
        timer = nil
        done()
    }
}
