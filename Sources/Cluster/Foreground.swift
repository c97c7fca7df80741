import Logging
import SwarmNode
import SwarmProtocol
import SwarmScheduler
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Runs the long-lived roles on the calling thread's own event loop until SIGINT or SIGTERM.
public enum Foreground {
    /// `swarm scheduler`: restores its state, listens, calls `onListening` with the real
    /// address, serves until a signal, then closes every connection. Throws if the state
    /// cannot be opened or, later, saved.
    public static func runScheduler(_ config: SchedulerConfig, logger: Logger,
                                    onListening: (SocketAddress) -> Void) throws {
        ResourceLimits.raiseOpenFiles()
        let loop = EventLoop()
        let server = SchedulerServer(loop: loop, config: config, logger: logger)
        let address: SocketAddress
        do { address = try server.start() } catch {
            try? loop.close()
            throw error
        }
        onListening(address)
        var signals: SignalWatcher?
        var failure: String?
        server.onFatal = { reason in
            failure = reason
            signals?.close()
        }
        signals = try SignalWatcher(loop: loop) { signal in
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
    public static func runWorker(_ config: WorkerConfig, logger: Logger) throws -> Int32 {
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
        try agent.start()
        signals = try SignalWatcher(loop: loop) { signal in
            logger.notice("signal \(signal): worker stopping")
            agent.stop { signals?.close() }
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
        signals = try SignalWatcher(loop: loop) { _ in signals?.close() }
        loop.run()
        cluster.stop()
        try loop.close()
    }
}

/// SIGINT, SIGTERM and SIGHUP on a loop: the first one calls `handler`; `close` ends the watch.
/// With `SWARM_EXIT_WITH_PARENT=PID` in the environment (test harnesses set it to their own
/// pid), losing that parent counts as a SIGTERM, so a crashed harness leaves no server behind.
public final class SignalWatcher {
    private var handles: [UVSignal] = []
    private var parentWatch: UVTimer?

    public init(loop: EventLoop, _ handler: @escaping (Int32) -> Void) throws {
        var fired = false
        let fire: (Int32) -> Void = { signal in
            guard !fired else { return }
            fired = true
            handler(signal)
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
            timer.start(afterMs: 0, repeatMs: 250) { if getppid() != parent { fire(SIGTERM) } }
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
