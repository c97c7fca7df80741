import Foundation
import SwarmProtocol

/// The same commands through `xargs -P` or GNU `parallel` at the same concurrency, timed
/// from spawning the pipeline to reaping it (posix_spawn + waitpid: no run-loop polling in
/// the measurement).
public enum Baseline {
    public enum Tool: String, Sendable, CaseIterable {
        case xargs
        case parallel
    }

    /// Why `tool` cannot serve as a baseline here, or nil when it can: not installed, or (for
    /// `parallel`) a `parallel` that is not GNU parallel (moreutils ships one with other options,
    /// which exits at once with a usage error and would show as an absurd throughput).
    public static func unavailableReason(_ tool: Tool) -> String? {
        guard let path = path(of: tool) else { return "not installed" }
        guard tool == .parallel else { return nil }
        let line = firstLine(of: "timeout 10 \(shellQuote(path)) --version </dev/null 2>&1")
        return isGNUParallel(versionLine: line) ? nil
            : "\(path) is not GNU parallel (`--version` says \"\(line.prefix(60))\"; moreutils' parallel?)"
    }

    /// Whether the first line `parallel --version` printed is GNU parallel's ("GNU parallel 20210822").
    public static func isGNUParallel(versionLine: String) -> Bool {
        versionLine.hasPrefix("GNU parallel")
    }

    /// The first line `/bin/sh -c script` prints on stdout (at most 4 KiB), or "".
    static func firstLine(of script: String) -> String {
        guard let pipe = popen(script, "r") else { return "" }
        var buffer = [CChar](repeating: 0, count: 4096)
        let line = fgets(&buffer, Int32(buffer.count), pipe) != nil
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        // Drain the rest so the child never blocks on a full pipe before pclose waits for it.
        while fgets(&buffer, Int32(buffer.count), pipe) != nil {}
        pclose(pipe)
        return line.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Where `tool` is installed, or nil.
    public static func path(of tool: Tool) -> String? {
        for dir in ["/usr/bin", "/bin", "/usr/local/bin"] where access("\(dir)/\(tool.rawValue)", X_OK) == 0 {
            return "\(dir)/\(tool.rawValue)"
        }
        return nil
    }

    /// The shell pipeline that runs `tasks` x `command` (one argument-free word, e.g. `true`,
    /// or `sleep 2`) `concurrency` at a time.
    public static func pipeline(_ tool: Tool, command: [String], tasks: Int, concurrency: Int) -> String {
        let quoted = command.map(shellQuote).joined(separator: " ")
        switch tool {
        case .xargs:
            // One input line per task; `-n 1` appends it as an argument, which true ignores;
            // for sleep the argument is the duration itself.
            if command.count == 2, command[0] == "sleep" {
                return "yes \(shellQuote(command[1])) | head -n \(tasks) | xargs -P \(concurrency) -n 1 sleep"
            }
            return "seq \(tasks) | xargs -P \(concurrency) -n 1 \(quoted)"
        case .parallel:
            return "seq \(tasks) | parallel --will-cite -j \(concurrency) -N0 \(quoted)"
        }
    }

    /// Runs the pipeline once; the figures have wall time, throughput and (for sleeps)
    /// efficiency. When the pipeline exits non-zero, `failed` is the task count and throughput
    /// and efficiency stay 0/nil: a pipeline that failed measured nothing.
    public static func run(_ tool: Tool, command: [String], tasks: Int, concurrency: Int,
                           sleepSeconds: Double?, label: String) throws -> RunFigures {
        let script = pipeline(tool, command: command, tasks: tasks, concurrency: concurrency)
        let start = monotonicMicros()
        let status = try runShell(script)
        let wall = Double(monotonicMicros() - start) / 1_000_000
        var run = RunFigures(label: label, tasks: tasks, concurrency: concurrency)
        run.wallSeconds = wall
        guard status == 0 else {
            run.failed = tasks
            return run
        }
        run.succeeded = tasks
        run.throughput = wall > 0 ? Double(tasks) / wall : 0
        if let sleep = sleepSeconds, wall > 0 {
            run.efficiency = (Double(tasks) / Double(concurrency)).rounded(.up) * sleep / wall
            run.speedup = Double(tasks) * sleep / wall
        }
        return run
    }

    /// Adds spreads and swarm's ratios to a baseline's runs. Only runs whose pipeline
    /// succeeded count; failed ones are named in `problem`. `swarmRuns` are swarm's runs
    /// paired with these by position (run r of each was interleaved): their ratios' spread.
    public static func finish(_ report: inout BaselineReport, swarm: WorkloadSummary, swarmRuns: [RunFigures] = []) {
        let good = report.runs.filter { $0.failed == 0 && $0.succeeded > 0 }
        if good.count < report.runs.count {
            report.problem = "the pipeline exited non-zero in \(report.runs.count - good.count) of \(report.runs.count) runs; "
                + "those runs are not counted"
        }
        report.throughput = Spread(good.map(\.throughput))
        report.wallSeconds = Spread(good.map(\.wallSeconds))
        report.efficiency = Spread(good.compactMap(\.efficiency))
        if let ours = swarm.throughput?.median, let theirs = report.throughput?.median, theirs > 0 {
            report.swarmThroughputRatio = ours / theirs
        }
        let pairs = zip(swarmRuns, report.runs).filter { $1.failed == 0 && $1.throughput > 0 }
        report.swarmThroughputRatioSpread = Spread(pairs.map { $0.throughput / $1.throughput })
        if let ours = swarm.efficiency?.median, let theirs = report.efficiency?.median, theirs > 0 {
            report.swarmEfficiencyRatio = ours / theirs
        }
    }

    /// `/bin/sh -c script`, stdout and stderr to /dev/null; returns the exit status.
    static func runShell(_ script: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let words: [String] = ["/bin/sh", "-c", script]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ)
        guard rc == 0 else { throw BenchError.failed("cannot run /bin/sh: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

func shellQuote(_ s: String) -> String {
    if !s.isEmpty && s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:".contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
