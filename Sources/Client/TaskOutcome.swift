import SwarmProtocol

/// How `swarm submit --wait` ends, like `srun`: with the task's own exit code when it ran and
/// exited, else a code for what ended it, and one line on stderr whenever it did not succeed.
///
/// | outcome | exit status |
/// |---|---|
/// | `succeeded` | 0 |
/// | `failed` with exit code N | N (1-255) |
/// | `failed` on signal S | 128 + S |
/// | `timed_out`, `silence_killed` | 124 (as `timeout(1)`) |
/// | `cancelled`, `lost`, `health_failed`, `dependency_failed` | 125 |
/// | `spawn_failed` | 127 (as a shell's "cannot run") |
/// | anything else | 1 |
public enum TaskOutcome {
    public static func exitStatus(_ info: TaskInfo) -> Int32 {
        switch info.state {
        case .succeeded: 0
        case .failed:
            if let code = info.exitCode, (1...255).contains(code) { Int32(code) }
            else if let signal = info.signal, (1...127).contains(signal) { Int32(128 + signal) }
            else { 1 }
        case .timedOut, .silenceKilled: 124
        case .cancelled, .lost, .healthFailed, .dependencyFailed: 125
        case .spawnFailed: 127
        case .queued, .running: 1
        }
    }

    /// The line for stderr (without `swarm: `), nil when the task succeeded.
    public static func message(_ info: TaskInfo) -> String? {
        guard info.state != .succeeded else { return nil }
        let line = "task \(info.id) \(info.state.rawValue)"
        if let reason = info.reason { return line + ": \(reason)" }
        if let code = info.exitCode { return line + ": exited with code \(code)" }
        if let signal = info.signal { return line + ": killed by signal \(signal)" }
        return line
    }
}
