import Foundation
import SwarmClient
import SwarmProtocol

/// A scheduler and N workers as separate `swarm` processes on loopback, started and stopped
/// by the bench: the layout of a real deployment, and each process's CPU time and memory can
/// be read from /proc. The worker processes stay small, which keeps their spawns cheap.
public final class LocalProcessCluster {
    public struct Options {
        public var executable: String
        public var workers = 2
        public var slotsPerWorker = 64
        public var directory: String
        /// Persist the scheduler's state (SQLite; each turn's replies wait for its fsync).
        public var durable = false
        /// Written as the cluster's config (runtimes, model limits, worker entries).
        public var clusterJSON: [String: Any] = [:]
        /// Each worker entry's `retention` (`maxAgeHours`, `maxGiB`), when set.
        public var workerRetention: [String: Any]?
        /// A cluster token (written to a file in `directory`): every connection, loopback
        /// included, is then TLS 1.3 with a PSK from it. nil: plaintext.
        public var token: ClusterToken?

        public init(executable: String, directory: String) {
            self.executable = executable
            self.directory = directory
        }
    }

    public let options: Options
    public private(set) var address = ""
    /// `HOST:PORT` of the scheduler's HTTP listener (`/metrics`, the dashboard), on loopback:
    /// the `dashboard` workload reads its log streams there.
    public private(set) var httpAddress: String?
    private var scheduler: Process?
    private var workers: [(name: String, process: Process)] = []

    public var processIDs: [(name: String, role: String, pid: Int32)] {
        (scheduler.map { [("scheduler", "scheduler", $0.processIdentifier)] } ?? [])
            + workers.map { ($0.name, "worker", $0.process.processIdentifier) }
    }

    public init(_ options: Options) { self.options = options }

    /// Starts the scheduler, reads back its port, starts the workers and waits until they all
    /// registered (and, if `runtime` is given, until it is healthy on each).
    public func start(runtime: String?, timeoutSeconds: Double = 60) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: options.directory)
        try fm.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        var config = options.clusterJSON
        var entries: [String: Any] = (config["workers"] as? [String: Any]) ?? [:]
        let names = (1...max(1, options.workers)).map { "worker-\($0)" }
        for name in names where entries[name] == nil {
            var entry: [String: Any] = ["slots": options.slotsPerWorker]
            if let runtimes = config["runtimes"] as? [String: Any] { entry["runtimes"] = runtimes.keys.sorted() }
            if let retention = options.workerRetention { entry["retention"] = retention }
            entries[name] = entry
        }
        config["workers"] = entries
        if let token = options.token {
            let tokenPath = options.directory + "/token"
            guard FileManager.default.createFile(atPath: tokenPath, contents: Data(token.text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw BenchError.cluster("cannot write \(tokenPath)")
            }
            var scheduler = (config["scheduler"] as? [String: Any]) ?? [:]
            scheduler["tokenFile"] = tokenPath  // the workers read it from here too
            config["scheduler"] = scheduler
        }
        let configPath = options.directory + "/cluster.json"
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: configPath))

        address = try launchScheduler(listen: "127.0.0.1:0", timeoutSeconds: timeoutSeconds)

        // The workers share this machine's cores, as an operator running several on one host
        // would set it: each checks out at most cores / workers worktrees at once.
        let checkoutSlots = max(1, ProcessInfo.processInfo.activeProcessorCount / names.count)
        for name in names {
            let args = ["worker", "--scheduler", address, "--name", name, "--slots", String(options.slotsPerWorker),
                        "--checkout-slots", String(checkoutSlots),
                        "--data-dir", options.directory + "/" + name, "--config", configPath, "--log-level", "warning"]
            workers.append((name, try launch(args, log: name, stdout: nil)))
        }
        try waitForWorkers(names: names, runtime: runtime, timeoutSeconds: timeoutSeconds)
    }

    private func launchScheduler(listen: String, timeoutSeconds: Double) throws -> String {
        var args = ["scheduler", "--listen", listen, "--state-dir", schedulerStateDirectory,
                    "--config", options.directory + "/cluster.json", "--log-level", "warning",
                    "--http-listen", "127.0.0.1:0"]
        if !options.durable { args.append("--in-memory") }
        let stdout = Pipe()
        let process = try launch(args, log: "scheduler", stdout: stdout)
        scheduler = process
        return try readAddress(stdout, process: process, timeoutSeconds: timeoutSeconds)
    }

    /// The scheduler's `--state-dir` (its `swarm.db`, when durable).
    public var schedulerStateDirectory: String { options.directory + "/scheduler" }

    /// Each worker's name and `--data-dir`, in order.
    public var workerDataDirectories: [(name: String, path: String)] {
        workers.map { ($0.name, options.directory + "/" + $0.name) }
    }

    /// Stops the scheduler (SIGTERM, SIGKILL after `graceSeconds`) and starts it again on the
    /// same address and state; returns the seconds from the start until it listened. The
    /// workers reconnect by themselves; this waits until they are all ready again.
    public func restartScheduler(graceSeconds: Double = 30, timeoutSeconds: Double = 120) throws -> Double {
        if let old = scheduler {
            if old.isRunning { kill(old.processIdentifier, SIGTERM) }
            waitAll([old], seconds: graceSeconds)
            if old.isRunning { kill(old.processIdentifier, SIGKILL) }
            waitAll([old], seconds: 5)
        }
        let started = monotonicMicros()
        _ = try launchScheduler(listen: address, timeoutSeconds: timeoutSeconds)
        let seconds = Double(monotonicMicros() - started) / 1_000_000
        try waitForWorkers(names: workers.map(\.name), runtime: nil, timeoutSeconds: timeoutSeconds)
        return seconds
    }

    /// SIGTERM to every process, then SIGKILL after `graceSeconds`; waits for all of them.
    public func stop(graceSeconds: Double = 10) {
        let all = workers.map(\.process) + (scheduler.map { [$0] } ?? [])
        // Workers first, so they do not spend the grace period reconnecting.
        for process in workers.map(\.process) where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        waitAll(workers.map(\.process), seconds: graceSeconds)
        if let scheduler, scheduler.isRunning { kill(scheduler.processIdentifier, SIGTERM) }
        waitAll(all, seconds: graceSeconds)
        for process in all where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        waitAll(all, seconds: 5)
        workers = []
        scheduler = nil
    }

    private func waitAll(_ processes: [Process], seconds: Double) {
        let deadline = monotonicMillis() + Int64(seconds * 1000)
        while processes.contains(where: \.isRunning) && monotonicMillis() < deadline { usleep(20_000) }
    }

    /// CPU time and peak RSS of each cluster process, read from /proc now.
    public func usage() -> [ProcessFigures] {
        processIDs.compactMap { entry in
            ProcSampler.figures(pid: entry.pid).map {
                ProcessFigures(name: entry.name, role: entry.role, pid: Int(entry.pid),
                               cpuUserMs: $0.userMs, cpuSystemMs: $0.systemMs, peakRssMiB: $0.peakRssMiB)
            }
        }
    }

    private func launch(_ arguments: [String], log: String, stdout: Pipe?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: options.executable)
        process.arguments = arguments
        let logPath = options.directory + "/\(log).log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        logHandle.seekToEndOfFile()
        process.standardError = logHandle
        process.standardOutput = stdout ?? logHandle
        process.standardInput = FileHandle.nullDevice
        var env = ProcessInfo.processInfo.environment
        env["SWARM_EXIT_WITH_PARENT"] = String(getpid())  // if the bench dies, its cluster follows
        process.environment = env
        do { try process.run() } catch {
            throw BenchError.cluster("cannot start \(options.executable) \(arguments.first ?? ""): \(error)")
        }
        return process
    }

    private func readAddress(_ pipe: Pipe, process: Process, timeoutSeconds: Double) throws -> String {
        let handle = pipe.fileHandleForReading
        var text = ""
        let deadline = monotonicMillis() + Int64(timeoutSeconds * 1000)
        while monotonicMillis() < deadline {
            let data = handle.availableData
            if data.isEmpty {
                throw BenchError.cluster("the scheduler exited before listening; see \(options.directory)/scheduler.log")
            }
            text += String(decoding: data, as: UTF8.self)
            // Its address, then its HTTP listener's, each on a line of its own.
            let lines = text.split(separator: "\n")
            if let line = lines.first(where: { $0.contains("listening on ") && !$0.contains("http") }),
               let address = line.split(separator: " ").last,
               let http = lines.first(where: { $0.contains("http listening on ") })?.split(separator: " ").last {
                httpAddress = String(http)
                // Keep draining its stdout so the scheduler never blocks on a full pipe.
                handle.readabilityHandler = { h in if h.availableData.isEmpty { h.readabilityHandler = nil } }
                return String(address)
            }
        }
        throw BenchError.cluster("the scheduler did not report its address within \(Int(timeoutSeconds)) s")
    }

    private func waitForWorkers(names: [String], runtime: String?, timeoutSeconds: Double) throws {
        let client = try SwarmClient(address: address, token: options.token, name: "bench-setup")
        let deadline = monotonicMillis() + Int64(timeoutSeconds * 1000)
        var ready: [NodeInfo] = []
        while monotonicMillis() < deadline {
            ready = try client.listNodes().filter { node in
                node.connected && node.state == .ready
                    && (runtime == nil || node.runtimes.contains { $0.name == runtime && $0.healthy })
            }
            if ready.count == names.count { return }
            if let dead = workers.first(where: { !$0.process.isRunning }) {
                throw BenchError.cluster("\(dead.name) exited; see \(options.directory)/\(dead.name).log")
            }
            usleep(50_000)
        }
        throw BenchError.cluster("only \(ready.count) of \(names.count) workers became ready within \(Int(timeoutSeconds)) s")
    }
}

/// Reads a process's CPU time and peak RSS from /proc.
public enum ProcSampler {
    /// Its resident set now (VmRSS, KiB); 0 when unknown.
    public static func rssKiB(pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// Its open descriptors now (entries of /proc/PID/fd); 0 when unknown.
    public static func openFiles(pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    /// The fewest open descriptors of `reads` reads `apartMs` apart: a descriptor a thread
    /// holds for a moment (the scheduler's background WAL checkpoint opens its own connection,
    /// 3 descriptors, for a few milliseconds; a sync job opens the WAL) is not in every read,
    /// a leaked one is. 0 when unknown.
    public static func steadyOpenFiles(pid: Int32, reads: Int = 5, apartMs: Int = 20) -> Int {
        var fewest = openFiles(pid: pid)
        for _ in 1..<max(1, reads) {
            usleep(useconds_t(apartMs * 1_000))
            fewest = min(fewest, openFiles(pid: pid))
        }
        return fewest
    }

    /// Nanoseconds on a CPU of its live threads so far (the first field of each
    /// /proc/PID/task/TID/schedstat): finer than `figures`' 10 ms ticks, for short batches.
    public static func cpuNs(pid: Int32) -> Int64 {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return 0 }
        return threads.reduce(0) { sum, tid in
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/schedstat", encoding: .utf8),
                  let first = text.split(separator: " ").first, let ns = Int64(first) else { return sum }
            return sum + ns
        }
    }

    public static func figures(pid: Int32) -> (userMs: Double, systemMs: Double, peakRssMiB: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        var peakKiB = 0.0
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) {
            peakKiB = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return (utime * 1000 / tick, stime * 1000 / tick, peakKiB / 1024)
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case cluster(String)
    case usage(String)
    case failed(String)

    public var description: String {
        switch self {
        case .cluster(let s), .usage(let s), .failed(let s): s
        }
    }
}
