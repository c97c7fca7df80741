import Foundation
import Synchronization
import Testing

/// Starts real `swarm` processes for end-to-end tests and guarantees they are all gone
/// afterwards: `cleanup()` (call it in a `defer`) signals every child, waits, escalates to
/// SIGKILL, and then checks that no process carrying this run's marker is left.
final class ProcessHarness: @unchecked Sendable {
    let marker: String
    let dir: String
    private var children: [Child] = []

    final class Child: @unchecked Sendable {
        let process: Process
        let name: String
        private let output = Locked(Data())
        private let outputEnded = Locked(false)

        /// Its stdout is read to EOF with read(2) on a thread of its own. Not with Foundation's
        /// `readabilityHandler`: on Linux it now and then never delivered a pipe's last bytes
        /// nor its EOF (swift-corelibs-foundation issue 3275). So a `swarm logs -f` that had
        /// printed everything and exited 0 looked stalled: `waitForExit` waited for an EOF that
        /// never came, and the last 23 KB were missing (1 run in about 12 of the output flood
        /// test, README "Known limits" until 2026-12-03).
        init(process: Process, name: String, stdout: Pipe) {
            self.process = process
            self.name = name
            let handle = stdout.fileHandleForReading
            Thread { [output, outputEnded] in
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { break }
                    output.withLock { $0.append(contentsOf: buffer[0..<count]) }
                }
                outputEnded.withLock { $0 = true }
            }.start()
        }

        /// Waits (bounded) until the process has exited and all its stdout is read; its exit
        /// status, or nil if that took longer than `timeout`.
        func waitForExit(timeout: Double) -> Int32? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if !process.isRunning && outputEnded.withLock({ $0 }) { return process.terminationStatus }
                usleep(20_000)
            }
            // Which of the two never came: the process's end, or the end of its output.
            let running = process.isRunning
            print("\(name): not done within \(timeout) s: " + (running ? "still running" : "exited (status \(process.terminationStatus)), its stdout not read to the end"))
            return nil
        }

        /// What it printed so far, decoded whole (a character cut by a read comes out whole).
        var stdout: String { output.withLock { String(decoding: $0, as: UTF8.self) } }
        var pid: Int32 { process.processIdentifier }

        /// Waits (bounded) for a line containing `text`; returns that line.
        func waitForLine(containing text: String, timeout: Double = 30) -> String? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let line = stdout.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
                if !process.isRunning { return nil }
                usleep(20_000)
            }
            return nil
        }
    }

    init() throws {
        marker = "swarmtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        dir = NSTemporaryDirectory() + marker
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    /// The `swarm` executable built beside this test bundle (or `$SWARM_BIN`).
    static var swarmBinary: String {
        if let bin = ProcessInfo.processInfo.environment["SWARM_BIN"] { return bin }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // swift test runs <debug>/swarmPackageTests.xctest; swarm sits in <debug>.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("swarm").path
    }

    /// Starts a long-running `swarm` process; its stderr goes to `<dir>/<name>.log`.
    /// `launcher` (e.g. `ip netns exec NS`) is the command that execs `swarm` in its place.
    @discardableResult
    func start(_ name: String, _ arguments: [String], environment: [String: String] = [:],
               launcher: [String] = []) throws -> Child {
        let process = Process()
        Self.configure(process, arguments, launcher: launcher)
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env["SWARM_TEST_MARKER"] = marker
        env["SWARM_EXIT_WITH_PARENT"] = String(getpid())  // if this test process dies, its servers follow
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let stdout = Pipe()
        process.standardOutput = stdout
        let logPath = "\(dir)/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let child = Child(process: process, name: name, stdout: stdout)
        children.append(child)
        return child
    }

    struct RunResult {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The program and arguments that run `swarm ARGUMENTS`, through `launcher` if any.
    private static func configure(_ process: Process, _ arguments: [String], launcher: [String]) {
        guard let program = launcher.first else {
            process.executableURL = URL(fileURLWithPath: swarmBinary)
            process.arguments = arguments
            return
        }
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = Array(launcher.dropFirst()) + [swarmBinary] + arguments
    }

    /// Runs a short `swarm` command to completion (killed after `timeout`).
    func run(_ arguments: [String], timeout: Double = 60, environment: [String: String] = [:],
             launcher: [String] = []) throws -> RunResult {
        let process = Process()
        Self.configure(process, arguments, launcher: launcher)
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SWARM_SCHEDULER")
        env.removeValue(forKey: "SWARM_TOKEN")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let output = try CapturedRun.run(process, timeout: timeout)
        if output.timedOut { Issue.record("swarm \(arguments.joined(separator: " ")) did not finish within \(timeout) s") }
        if output.outputOpen { Issue.record("output of swarm \(arguments.joined(separator: " ")) did not end") }
        return RunResult(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    func childNamed(_ name: String) -> Child? { children.first { $0.name == name } }

    /// Stops every child: SIGTERM (workers kill their tasks), up to 30 s, then SIGKILL.
    /// Records an issue if any process of this run is still alive afterwards. (The limits are
    /// wide and the waits end as soon as all is gone: a loaded machine, CI beside builds, may
    /// leave a stopping worker without CPU for seconds.)
    func cleanup() {
        for child in children.reversed() where child.process.isRunning { kill(child.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(30)
        while children.contains(where: { $0.process.isRunning }) && Date() < deadline { usleep(20_000) }
        for child in children where child.process.isRunning {
            Issue.record("\(child.name) ignored SIGTERM for 30 s")
            kill(child.pid, SIGKILL)
            child.process.waitUntilExit()
        }
        children = []
        // Anything left that carries our marker (a task, a grandchild) is a leak.
        var left: [Int32] = []
        for _ in 0..<400 {
            left = Self.processes(containing: marker)
            if left.isEmpty { break }
            usleep(50_000)
        }
        if !left.isEmpty {
            let described = left.map { pid in
                let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                return "\(pid) \(String(decoding: cmdline.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).prefix(200))"
            }
            Issue.record("processes of this test still running: \(described)")
            for pid in left { kill(pid, SIGKILL) }
        }
        // Logs of the run stay for a look only when asked for.
        if ProcessInfo.processInfo.environment["SWARM_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// Live (non-zombie) processes whose command line or environment contains `text`.
    static func processes(containing text: String) -> [Int32] {
        let me = getpid()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != me else { return false }
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
            let found = String(decoding: cmdline, as: UTF8.self).contains(text)
                || String(decoding: environ, as: UTF8.self).contains(text)
            return found && !processGone(pid)
        }
    }
}

/// A lock-protected value that closures can share (Mutex itself cannot be captured).
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
