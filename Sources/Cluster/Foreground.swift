import Logging
import SwarmNode
import SwarmProtocol
import SwarmScheduler
import SwarmUV
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the long-lived roles on the calling thread's own event loop until SIGINT or SIGTERM.
public enum Foreground {
    /// `swarm scheduler`: restores its state, listens, calls `onListening` with the real
    /// address (and the HTTP listener's, and its HTTPS certificate line), serves until a signal, then closes every connection. Throws if the state
    /// cannot be opened or, later, saved.
    public static func runScheduler(_ config: SchedulerConfig, logger: Logger,
                                    onListening: (_ address: SocketAddress, _ http: SocketAddress?, _ https: String?) -> Void) throws {
        ResourceLimits.raiseOpenFiles()
        let loop = EventLoop()
        let server = SchedulerServer(loop: loop, config: config, logger: logger)
        let address: SocketAddress
        do { address = try server.start() } catch {
            try? loop.close()
            throw error
        }
        onListening(address, server.httpAddress, server.httpsNote)
        var signals: SignalWatcher?
        var failure: String?
        server.onFatal = { reason in
            failure = reason
            signals?.close()
        }
        signals = try SignalWatcher(loop: loop) { signal, count in
            // It has no task processes: a repeated signal changes nothing, and never cuts the
            // stop short (the last state write must finish).
            guard count == 1 else { logger.notice("signal \(signal): scheduler already stopping"); return }
            logger.notice("signal \(signal): scheduler stopping")
            server.stop()
            signals?.close()
        }
        loop.run()
        try loop.close()
        if let failure { throw SchedulerFailure(description: failure) }
    }

    /// `swarm worker`: runs until a signal (tasks are killed, results kept) or a fatal
    /// handshake error. Returns the process exit code.
    public static func runWorker(_ config: WorkerConfig, logger: Logger,
                                 onHTTP: (_ http: SocketAddress, _ https: String?) -> Void = { _, _ in }) throws -> Int32 {
        ProcessGroup.closeInheritedDescriptorsOnExec()
        let files = ResourceLimits.raiseOpenFiles()
        let capacity = ResourceLimits.taskCapacity(openFileLimit: files)
        if config.slots > capacity {
            logger.warning("\(config.slots) slots but the open-file limit is \(files): about \(capacity) tasks can run at once here (each holds \(ResourceLimits.descriptorsPerTask) descriptors); more fail to spawn with EMFILE. Raise the limit (ulimit -Hn) or run more workers.")
        }
        let loop = EventLoop()
        let agent = WorkerAgent(loop: loop, config: config, logger: logger)
        var exitCode: Int32 = 0
        var signals: SignalWatcher?
        agent.onFatal = { reason in
            FileHandleOut.stderr("swarm: error: \(reason)")
            exitCode = 1
            agent.stop { signals?.close() }
        }
        do { try agent.startHTTP() } catch {
            try? loop.close()
            throw error
        }
        try agent.start()
        if let http = agent.httpAddress { onHTTP(http, agent.httpsNote) }
        var progress: UVTimer?
        let reporter = StopReporter { [unowned agent] in [agent.stopProgress] }
        signals = try SignalWatcher(loop: loop) { signal, count in
            if count == 1 {
                logger.notice("signal \(signal): worker stopping")
                agent.stop {
                    signals?.close()
                    progress?.close()
                }
                // A stop with tasks takes up to their kill grace: say what it waits for.
                progress = try? UVTimer(loop: loop)
                progress?.start(afterMs: 0, repeatMs: 250) { reporter.report() }
            } else {
                agent.hurryStop()
                reporter.report(hurried: true)
            }
        }
        loop.run()
        try loop.close()
        return exitCode
    }

    /// `swarm up`: a local cluster until a signal.
    public static func runLocalCluster(_ options: LocalCluster.Options, logger: Logger,
                                       onReady: (LocalCluster) -> Void) throws {
        ResourceLimits.raiseOpenFiles()
        let cluster = try LocalCluster(options, logger: logger)
        onReady(cluster)
        let loop = EventLoop()
        var signals: SignalWatcher?
        var progress: UVTimer?
        let stopped = StopFlag()
        let reporter = StopReporter { cluster.stopProgress() }
        signals = try SignalWatcher(loop: loop) { _, count in
            guard count == 1 else {
                // Hurry the stop, never skip it: the tasks' groups get SIGKILL now, and `up`
                // still exits only once they are gone.
                cluster.hurryStop()
                reporter.report(hurried: true)
                return
            }
            cluster.beginStop()
            Thread { cluster.finishStop(); stopped.set() }.start()
            progress = try? UVTimer(loop: loop)
            progress?.start(afterMs: 0, repeatMs: 250) {
                if stopped.isSet {
                    signals?.close()
                    progress?.close()
                } else {
                    reporter.report()
                }
            }
        }
        loop.run()
        try loop.close()
    }
}

/// For a command whose main thread is busy while a `LocalCluster` runs (`swarm demo`): a
/// signal stops the cluster as `swarm up` does (a repeated one hurries the stop, with the same
/// progress lines), then ends the process with status 128 + the signal once every task group
/// is gone. Without it the default action would end the process and orphan the tasks.
public final class ClusterSignalGuard: Sendable {
    private let thread: EventLoopThread
    private let handles: LoopBox<(SignalWatcher, [UVTimer])>
    private let signalled = StopFlag()

    public init(_ cluster: LocalCluster) {
        let handles = LoopBox<(SignalWatcher, [UVTimer])>()
        let signalled = self.signalled
        thread = EventLoopThread(name: "signals") { loop in
            let reporter = StopReporter { cluster.stopProgress() }
            handles.value = (try? SignalWatcher(loop: loop) { signal, count in
                guard count == 1 else {
                    cluster.hurryStop()
                    reporter.report(hurried: true)
                    return
                }
                signalled.set()
                cluster.beginStop()
                if let progress = try? UVTimer(loop: loop) {
                    handles.value?.1.append(progress)
                    progress.start(afterMs: 0, repeatMs: 250) { reporter.report() }
                }
                Thread { cluster.finishStop(); exit(128 + signal) }.start()
            }).map { ($0, []) }
        }
        self.handles = handles
    }

    /// Whether a signal started the stop: the process is about to end with 128 + the
    /// signal, and the cluster going away under a client is that stop, not a failure.
    public var stopping: Bool { signalled.isSet }

    /// Stops watching, when the command ends on its own; call before stopping the cluster.
    /// After a signal it never returns: the stop it started ends the process.
    public func close() {
        // The stop a signal started ends the process; returning would race it.
        while signalled.isSet { pause() }
        let handles = self.handles, loop = thread.loop
        loop.execute {
            handles.value?.0.close()
            for timer in handles.value?.1 ?? [] { timer.close() }
            handles.value = nil
            loop.keepAlive(false)
        }
        thread.join()
    }
}

/// Set once, from any thread.
final class StopFlag: Sendable {
    private let value = Locked(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// Tells the person at the terminal what a stop waits for, on stderr: once when it starts,
/// then whenever that changes (the countdown to SIGKILL included), and on every repeated
/// signal. Silent when nothing is left to wait for.
final class StopReporter {
    private let progress: () -> [WorkerAgent.StopProgress]
    private var last: String?

    init(_ progress: @escaping () -> [WorkerAgent.StopProgress]) {
        self.progress = progress
    }

    func report(hurried: Bool = false) {
        guard let line = Self.line(progress()) else { return }
        if hurried || line != last { FileHandleOut.stderr("swarm: \(line)") }
        last = line
    }

    /// `stopping: waiting for 3 tasks on worker-1 (SIGKILL in 5 s; Ctrl-C again to kill now)`,
    /// or nil when no worker has a task or probe left.
    static func line(_ progress: [WorkerAgent.StopProgress]) -> String? {
        let busy = progress.filter { $0.tasks + $0.probes > 0 }
        guard !busy.isEmpty else { return nil }
        let parts = busy.map { p -> String in
            var what: [String] = []
            if p.tasks > 0 { what.append(p.tasks == 1 ? "1 task" : "\(p.tasks) tasks") }
            if p.probes > 0 { what.append(p.probes == 1 ? "1 health probe" : "\(p.probes) health probes") }
            return what.joined(separator: " and ") + " on \(p.worker)"
        }
        let next = busy.compactMap(\.sigkillInMs).min()
        let when = next.map { "SIGKILL in \(($0 + 999) / 1000) s; Ctrl-C again to kill now" }
            ?? "SIGKILL sent; waiting for their processes to end"
        return "stopping: waiting for \(parts.joined(separator: ", ")) (\(when))"
    }
}

/// SIGINT, SIGTERM and SIGHUP on a loop: `handler` gets each one with its count (1 for the
/// first); `close` ends the watch. Watching goes on until `close`, so a repeated signal
/// reaches the handler rather than the default action (which would end the process and
/// orphan the tasks it is stopping).
/// With `SWARM_EXIT_WITH_PARENT=PID` in the environment (test harnesses set it to their own
/// pid), losing that parent counts as one SIGTERM, so a crashed harness leaves no server behind.
public final class SignalWatcher {
    private var handles: [UVSignal] = []
    private var parentWatch: UVTimer?

    public init(loop: EventLoop, _ handler: @escaping (_ signal: Int32, _ count: Int) -> Void) throws {
        var count = 0
        let fire: (Int32) -> Void = { signal in
            count += 1
            handler(signal, count)
        }
        // SIGHUP too: a closed terminal or ssh session must stop us cleanly (tasks killed),
        // not kill us and orphan the tasks.
        for signum in [SIGINT, SIGTERM, SIGHUP] {
            let handle = try UVSignal(loop: loop)
            handles.append(handle)
            try handle.start(signal: signum, fire)
        }
        if let value = getenv("SWARM_EXIT_WITH_PARENT"), let parent = Int32(String(cString: value)), parent > 1 {
            let timer = try UVTimer(loop: loop)
            timer.start(afterMs: 0, repeatMs: 250) { [weak timer] in
                guard getppid() != parent else { return }
                timer?.stop()
                fire(SIGTERM)
            }
            parentWatch = timer
        }
    }

    public func close() {
        for handle in handles { handle.close() }
        handles = []
        parentWatch?.close()
        parentWatch = nil
    }
}

/// The scheduler stopped because it could not go on safely (its state could not be saved).
public struct SchedulerFailure: Error, CustomStringConvertible {
    public let description: String
}

enum FileHandleOut {
    static func stderr(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
    }
}
