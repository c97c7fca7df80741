import Foundation
import SwarmProtocol

/// What this machine's disk and kernel allow a durable coordinator at concurrency P, measured
/// beside a `spawn` level's runs (issue 17 item 4: a missed target says what bounds it, with a
/// measurement).
///
/// A slot of a durable scheduler turns over at most once per "spawn-to-exit of the task, then
/// one sync": the next task placed on the freed slot leaves only once the transaction that
/// places it is durable (README, "What is durable when"). So P slots do at most
/// `P / (spawn p50 + sync p50)` tasks per second, with no coordinator CPU at all; xargs pays
/// the spawn only. Both parts are measured here, on the scheduler's own state directory.
struct DurableFloor: Sendable {
    /// `fdatasync` of a 4 KiB append to a file in the state directory, in ms.
    var sync: Percentiles
    /// `posix_spawn` + `waitpid` of `true` from this process, wall time in ms.
    var spawn: Percentiles

    /// The most tasks per second `concurrency` slots allow when every turnover waits for one
    /// spawn-to-exit and one sync (medians).
    func bound(concurrency: Int) -> Double {
        let cycle = spawn.p50 + sync.p50
        return cycle > 0 ? Double(concurrency) * 1_000 / cycle : .infinity
    }

    /// Measures both in `directory` (its probe file removed after); nil when either cannot be
    /// measured (a read-only directory, no `true`).
    static func measure(directory: String, samples: Int) -> DurableFloor? {
        guard samples > 0, let sync = Self.syncSamples(directory: directory, samples: samples),
              let spawn = Self.spawnSamples(samples: samples) else { return nil }
        guard let s = Percentiles(sync), let p = Percentiles(spawn) else { return nil }
        return DurableFloor(sync: s, spawn: p)
    }

    /// One line for the report: the two medians, the bound at `concurrency`, and how it
    /// compares with xargs' throughput in the same section.
    func note(concurrency: Int, xargs: Double?) -> String {
        let bound = bound(concurrency: concurrency)
        var text = String(format: "Durable floor, measured beside this level: fdatasync of a 4 KiB append in the state "
            + "directory p50 %.2f ms (p90 %.2f), posix_spawn + waitpid of `true` p50 %.2f ms; so %d slots of a durable "
            + "scheduler turn over at most %.0f times a second even with no coordinator CPU (one spawn-to-exit plus one "
            + "sync each).", sync.p50, sync.p90, spawn.p50, concurrency, bound)
        if let xargs, xargs > 0 {
            let ratio = bound / xargs
            text += String(format: " That is %.2fx of xargs' %.0f/s here", ratio, xargs)
            text += ratio < 1.25 ? ": at this level the disk's sync, not the coordinator's CPU, decides whether 1.0x is reachable."
                : ": the disk's sync is not what bounds this level; the coordinator's own path is (its CPU, and the hand-offs between its processes and threads per turnover)."
        }
        return text
    }

    private static func syncSamples(directory: String, samples: Int) -> [Double]? {
        let path = directory + "/.bench-sync-probe-\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        defer {
            close(fd)
            unlink(path)
        }
        let block = [UInt8](repeating: 0x78, count: 4_096)
        var out: [Double] = []
        for _ in 0..<samples {
            guard block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == block.count else { return nil }
            let t0 = monotonicMicros()
            guard fdatasync(fd) == 0 else { return nil }
            out.append(Double(monotonicMicros() - t0) / 1_000)
        }
        return out
    }

    private static func spawnSamples(samples: Int) -> [Double]? {
        let candidates: [String] = ["/bin/true", "/usr/bin/true"]
        guard let executable = candidates.first(where: { access($0, X_OK) == 0 }) else { return nil }
        var out: [Double] = []
        for _ in 0..<samples {
            var pid: pid_t = 0
            let t0 = monotonicMicros()
            let spawned = executable.withCString { path -> Int32 in
                var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
                defer { free(argv[0]) }
                return posix_spawn(&pid, path, nil, nil, &argv, environ)
            }
            guard spawned == 0 else { return nil }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            out.append(Double(monotonicMicros() - t0) / 1_000)
        }
        return out
    }
}
