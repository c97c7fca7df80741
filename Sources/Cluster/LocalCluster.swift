import Foundation
import Logging
import SwarmNode
import SwarmProtocol
import SwarmScheduler
import SwarmUV

/// A scheduler and N workers in this process, each on its own event-loop thread, talking
/// over loopback TCP exactly as separate machines would.
public final class LocalCluster: Sendable {
    /// `HOST:PORT` of the scheduler.
    public let address: String
    /// `HOST:PORT` of the scheduler's HTTP listener (`/metrics`, the dashboard); nil: none.
    public let httpAddress: String?
    public let workerNames: [String]
    private let schedulerThread: EventLoopThread
    private let scheduler: LoopBox<SchedulerServer>
    private let workerThreads: [(EventLoopThread, LoopBox<WorkerAgent>)]

    public struct Options: Sendable {
        public var workers = 3
        public var slots = 4
        public var host = "127.0.0.1"
        public var port = 0
        public var dataDir = ".swarm/local"
        public var token: ClusterToken?
        public var settings = SchedulerSettings()
        /// Runtimes, timeouts and engine settings for every worker (as for a worker with no
        /// entry of its own); plain commands stay allowed unless the file says otherwise.
        public var clusterFile: ClusterFile?
        /// Keep the scheduler's state in `dataDir/scheduler/swarm.db` (`swarm up`); off: in
        /// memory only (`swarm demo`, tests).
        public var durable = false
        /// The scheduler's HTTP listener (`swarm up --http-listen`); nil: none. Port 0 picks one.
        public var httpHost: String?
        public var httpPort = 0
        /// Finished tasks kept in memory and in `swarm.db` (durable only).
        public var retention = SchedulerRetention()
        public init() {}
    }

    /// Starts everything; returns once the scheduler listens (workers register shortly after).
    public init(_ options: Options, logger: Logger) throws(SchedulerStartError) {
        let scheduler = LoopBox<SchedulerServer>()
        let startResult = Locked<Result<(String, String?), SchedulerStartError>?>(nil)
        var config = SchedulerConfig()
        config.host = options.host
        config.port = options.port
        config.stateDir = options.dataDir + "/scheduler"
        config.token = options.token
        config.settings = options.settings
        config.durable = options.durable
        config.retention = options.retention
        config.httpHost = options.httpHost
        config.httpPort = options.httpPort
        let schedulerConfig = config
        schedulerThread = EventLoopThread(name: "scheduler") { loop in
            let server = SchedulerServer(loop: loop, config: schedulerConfig, logger: logger)
            do throws(SchedulerStartError) {
                let address = try server.start()
                scheduler.value = server
                startResult.withLock { $0 = .success((address.description, server.httpAddress?.description)) }
            } catch {
                startResult.withLock { $0 = .failure(error) }
                loop.keepAlive(false)
            }
        }
        self.scheduler = scheduler
        switch startResult.withLock({ $0 })! {
        case .failure(let error):
            schedulerThread.join()
            throw error
        case .success(let (address, http)):
            self.address = address
            self.httpAddress = http
        }
        let (host, port) = (options.host, Int(address.split(separator: ":").last!)!)
        var threads: [(EventLoopThread, LoopBox<WorkerAgent>)] = []
        var names: [String] = []
        for index in 1...max(1, options.workers) {
            let name = "worker-\(index)"
            names.append(name)
            var workerConfig = WorkerConfig(name: name, slots: options.slots, dataDir: "\(options.dataDir)/\(name)")
            workerConfig.schedulerHost = host == "0.0.0.0" ? "127.0.0.1" : host
            workerConfig.schedulerPort = port
            workerConfig.token = options.token
            if let file = options.clusterFile { workerConfig.apply(file, worker: file.workers[name] != nil ? name : nil) }
            let frozen = workerConfig
            let box = LoopBox<WorkerAgent>()
            let thread = EventLoopThread(name: name) { loop in
                let agent = WorkerAgent(loop: loop, config: frozen, logger: logger)
                do { try agent.start() } catch {
                    logger.error("worker \(name) cannot start: \(error)")
                    loop.keepAlive(false)
                    return
                }
                box.value = agent
            }
            threads.append((thread, box))
        }
        workerThreads = threads
        workerNames = names
    }

    /// Stops the workers (killing their tasks) and then the scheduler; returns when every
    /// thread has ended. Returns the leak reports of loops that ended with handles open.
    @discardableResult
    public func stop() -> [String] {
        beginStop()
        return finishStop()
    }

    /// Asks every worker to stop (SIGTERM to its tasks' groups, SIGKILL after the grace);
    /// returns at once. Safe from any thread; `finishStop` waits for the end.
    public func beginStop() {
        for (thread, box) in workerThreads {
            thread.loop.execute {
                guard let agent = box.value else { thread.loop.keepAlive(false); return }
                agent.stop { thread.loop.keepAlive(false); box.value = nil }
            }
        }
    }

    /// A stop under way, hurried: every task group still in its grace period gets SIGKILL
    /// now. The stop still waits for the groups to be gone. Safe from any thread.
    public func hurryStop() {
        for (thread, box) in workerThreads {
            thread.loop.execute { box.value?.hurryStop() }
        }
    }

    /// What each worker still running has left to stop (asked on the workers' threads;
    /// a worker that does not answer within `timeoutMs` is left out). Blocks the caller.
    public func stopProgress(timeoutMs: Int = 200) -> [WorkerAgent.StopProgress] {
        let answers = Locked<[WorkerAgent.StopProgress]>([])
        let answered = DispatchSemaphore(value: 0)
        var asked = 0
        for (thread, box) in workerThreads {
            let queued = thread.loop.execute {
                if let progress = box.value?.stopProgress { answers.withLock { $0.append(progress) } }
                answered.signal()
            }
            if queued { asked += 1 }
        }
        let deadline = DispatchTime.now() + .milliseconds(timeoutMs)
        for _ in 0..<asked where answered.wait(timeout: deadline) == .timedOut { break }
        return answers.withLock { $0 }.sorted { $0.worker < $1.worker }
    }

    /// After `beginStop`: waits until every worker has stopped (its tasks' groups gone), then
    /// stops the scheduler. Returns the leak reports of loops that ended with handles open.
    @discardableResult
    public func finishStop() -> [String] {
        for (thread, _) in workerThreads { thread.join() }
        let thread = schedulerThread
        let scheduler = self.scheduler
        thread.loop.execute {
            scheduler.value?.stop()
            scheduler.value = nil
            thread.loop.keepAlive(false)
        }
        schedulerThread.join()
        let threads: [EventLoopThread] = workerThreads.map { $0.0 } + [schedulerThread]
        return threads.compactMap { $0.leakReport }
    }
}

/// Holds a loop-confined object for closures that the loop thread runs. Only touched on
/// that loop's thread, which is what makes the unchecked Sendable sound.
final class LoopBox<T>: @unchecked Sendable {
    var value: T?
    init() {}
}
