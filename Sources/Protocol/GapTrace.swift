#if canImport(Glibc)
import Glibc
#endif

/// A timing trace for following a chain of steps across processes (`swarm bench dag`'s layer
/// gap: a worker's exit, its result, the scheduler's placement, save and sync, the next
/// assignment's spawn). Off unless `SWARM_GAP_TRACE` names a directory: then each process
/// appends lines `<monotonic µs> <thread CPU µs> <thread> <tag> <detail>` to
/// `<dir>/<pid>.trace` (the monotonic clock is the machine's, so lines of all processes
/// interleave by time). Off, `mark` costs a load and a branch.
public enum GapTrace {
    /// Whether marks are recorded (read once, at first use).
    public static let enabled: Bool = getenv("SWARM_GAP_TRACE") != nil

    private final class Sink: @unchecked Sendable {
        var mutex = pthread_mutex_t()
        var buffer: [UInt8] = []
        var fd: Int32 = -1
        var lastFlushUs: Int64 = 0

        init() {
            pthread_mutex_init(&mutex, nil)
            guard let dir = getenv("SWARM_GAP_TRACE") else { return }
            let path = String(cString: dir) + "/\(getpid()).trace"
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            buffer.reserveCapacity(1 << 20)
        }

        /// Written when the buffer is large or a quarter second old, so a killed process
        /// loses at most that.
        func append(_ line: String, nowUs: Int64) {
            pthread_mutex_lock(&mutex)
            buffer.append(contentsOf: line.utf8)
            if buffer.count > 512 * 1024 || nowUs - lastFlushUs > 250_000 {
                if fd >= 0 { _ = buffer.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
                buffer.removeAll(keepingCapacity: true)
                lastFlushUs = nowUs
            }
            pthread_mutex_unlock(&mutex)
        }
    }

    private static let sink = Sink()

    /// Records `tag` (and `detail`) with the time and this thread's CPU time.
    @inline(__always)
    public static func mark(_ tag: StaticString, _ detail: @autoclosure () -> String = "") {
        guard enabled else { return }
        record(tag, detail())
    }

    private static func record(_ tag: StaticString, _ detail: String) {
        var mono = timespec(), cpu = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu)
        let monoUs = Int64(mono.tv_sec) * 1_000_000 + Int64(mono.tv_nsec) / 1_000
        let cpuUs = Int64(cpu.tv_sec) * 1_000_000 + Int64(cpu.tv_nsec) / 1_000
        let thread = UInt(pthread_self()) % 1_000_000
        sink.append("\(monoUs) \(cpuUs) \(thread) \(tag) \(detail)\n", nowUs: monoUs)
    }
}
