import Foundation
import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// How one short helper command (git) ended: its status and the first `maxOutputBytes` of
/// each stream. Bytes past the cap are read and dropped (counted in `droppedBytes`), so a
/// chatty child never blocks on a full pipe and never grows our memory.
struct ChildCommandResult {
    var status: Int64
    var signal: Int32
    var stdout: [UInt8]
    var stderr: [UInt8]
    var droppedBytes = 0
    /// The time limit passed: the child's process group was sent SIGKILL.
    var timedOut = false
    /// The child could not be started (nothing ran); `status` is -1.
    var spawnError: String?

    var succeeded: Bool { spawnError == nil && !timedOut && status == 0 && signal == 0 }
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }

    /// One line saying why it failed, bounded: git's last `fatal:`/`error:` line (the cause,
    /// after any hints), else its last non-empty stderr line, else the status.
    var failureLine: String {
        if let spawnError { return spawnError }
        if timedOut { return "timed out" }
        let lines = String(decoding: stderr, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let line = lines.last(where: { $0.hasPrefix("fatal:") || $0.hasPrefix("error:") }) ?? lines.last
        let status = signal != 0 ? "killed by signal \(signal)" : "exit status \(status)"
        return line.map { PeerText.safe($0, limit: 300) } ?? status
    }
}

/// Runs one argv as a child process on the loop, without blocking it: stdout and stderr are
/// captured (bounded), the child gets its own process group, and a child still running after
/// `timeoutMs` has its whole group killed. `done` fires exactly once, on the loop, after every
/// handle is closed. The instance keeps itself alive until then.
final class ChildCommand {
    /// After the child exited, how long its pipes may stay open (a grandchild that left the
    /// group holding them) before we stop reading and report anyway.
    static let drainLimitMs: UInt64 = 1_000
    private let loop: EventLoop
    private let maxOutputBytes: Int
    private var result = ChildCommandResult(status: -1, signal: 0, stdout: [], stderr: [])
    private var process: UVProcess?
    private var pipes: [UVPipe] = []
    private var timer: UVTimer?
    private var openStreams = 2
    private var hasExited = false
    private var done: ((ChildCommandResult) -> Void)?
    private var selfRef: ChildCommand?

    private init(loop: EventLoop, maxOutputBytes: Int, done: @escaping (ChildCommandResult) -> Void) {
        self.loop = loop
        self.maxOutputBytes = maxOutputBytes
        self.done = done
    }

    /// Starts `argv` (argv[0] searched in the PATH of `environment`) in `workingDirectory`.
    /// The returned object may be `kill`ed; it need not be kept.
    @discardableResult
    static func run(loop: EventLoop, argv: [String], environment: [String], workingDirectory: String? = nil,
                    timeoutMs: UInt64, maxOutputBytes: Int = 64 << 10,
                    _ done: @escaping (ChildCommandResult) -> Void) -> ChildCommand {
        let command = ChildCommand(loop: loop, maxOutputBytes: maxOutputBytes, done: done)
        command.selfRef = command
        command.start(argv: argv, environment: environment, workingDirectory: workingDirectory, timeoutMs: timeoutMs)
        return command
    }

    /// Ends the child now (SIGKILL to its group): `done` follows, as for a timeout.
    func kill() {
        guard !hasExited, let process else { return }
        result.spawnError = "stopped"
        ProcessGroup.signal(process.pid, SIGKILL)
    }

    private func start(argv: [String], environment: [String], workingDirectory: String?, timeoutMs: UInt64) {
        guard let program = argv.first else { return fail("empty command") }
        var options = SpawnOptions(executable: program, arguments: Array(argv.dropFirst()))
        options.environment = environment
        options.workingDirectory = workingDirectory
        options.newProcessGroup = true
        do {
            let out = try UVPipe(loop: loop)
            pipes.append(out)
            let err = try UVPipe(loop: loop)
            pipes.append(err)
            options.stdout = .pipe(out)
            options.stderr = .pipe(err)
            process = try UVProcess.spawn(loop: loop, options) { [weak self] status, signal in
                self?.exited(status: status, signal: signal)
            }
            let timer = try UVTimer(loop: loop)
            self.timer = timer
            timer.start(afterMs: timeoutMs) { [weak self] in self?.timeUp() }
            read(out, toStdout: true)
            read(err, toStdout: false)
        } catch {
            var reason = error == UVError.notFound ? "command not found: \(program)" : "cannot start \(program): \(error)"
            if let dir = workingDirectory, access(dir, X_OK) != 0 {
                reason = "cannot enter directory \(dir): \(String(cString: strerror(errno)))"
            }
            fail(reason)
        }
    }

    private func fail(_ reason: String) {
        result.spawnError = reason
        finish()
    }

    private func read(_ pipe: UVPipe, toStdout: Bool) {
        do {
            try pipe.stream.startReading { [weak self] event in
                guard let self else { return }
                switch event {
                case .data(let bytes):
                    self.keep(bytes, toStdout: toStdout)
                case .eof, .error:
                    self.streamEnded()
                }
            }
        } catch {
            streamEnded()
        }
    }

    private func keep(_ bytes: UnsafeRawBufferPointer, toStdout: Bool) {
        let have = toStdout ? result.stdout.count : result.stderr.count
        let room = max(0, maxOutputBytes - have)
        let take = min(room, bytes.count)
        if take > 0 {
            if toStdout { result.stdout.append(contentsOf: bytes[0..<take]) } else { result.stderr.append(contentsOf: bytes[0..<take]) }
        }
        result.droppedBytes += bytes.count - take
    }

    private func streamEnded() {
        openStreams -= 1
        if openStreams == 0 && hasExited { finish() }
    }

    private func exited(status: Int64, signal: Int32) {
        hasExited = true
        result.status = status
        result.signal = signal
        if let pid = process?.pid { ProcessGroup.reapExited(pid) }
        if openStreams == 0 { return finish() }
        // A grandchild that left holding our pipes: its group goes too, then we report.
        timer?.start(afterMs: Self.drainLimitMs) { [weak self] in self?.finish(killGroup: true) }
    }

    private func timeUp() {
        guard !hasExited, let process else { return finish() }
        result.timedOut = true
        // The whole group: git's own children (remote helpers, ssh, pack-objects) go too.
        ProcessGroup.signal(process.pid, SIGKILL)
    }

    /// Closes every handle, then reports once.
    private func finish(killGroup: Bool = false) {
        guard done != nil else { return }
        if let pid = process?.pid, hasExited, killGroup {
            ProcessGroup.signal(pid, SIGKILL)
            ProcessGroup.reapExited(pid)
        }
        var open = 1
        let closed: () -> Void = { [self] in
            open -= 1
            guard open == 0, let callback = self.done else { return }
            self.done = nil
            self.selfRef = nil
            callback(self.result)
        }
        let handles: [(@escaping () -> Void) -> Void] = pipes.map { p in { p.close($0) } }
            + [process.map { p in { p.close($0) } }, timer.map { t in { t.close($0) } }].compactMap { $0 }
        pipes = []
        process = nil
        timer = nil
        for close in handles {
            open += 1
            close(closed)
        }
        closed()
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension ChildCommand: Sendable {}
