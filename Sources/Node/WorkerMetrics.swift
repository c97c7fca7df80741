import CoreMetrics
import SwarmMetrics
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A worker's Prometheus metrics (README, "Metrics"): the agent counts spawns and output as
/// they happen (a handle incremented, nothing allocated); running tasks, CPU and memory are
/// read at scrape time. CPU and RSS are the standard `process_` names, so dashboards made for
/// any Prometheus client work on them.
final class WorkerMetrics {
    let registry: MetricsRegistry
    /// The last scrape's body, reused while fresh (a flood of scrapes holds the loop a bounded share).
    var scrapeCache = ScrapeCache()

    static let catalog: [MetricFamily] = [
        .init("swarm_worker_running_tasks", .gauge, "Tasks running on this worker (processes not yet ended)."),
        .init("swarm_worker_slots", .gauge, "Task slots of this worker."),
        .init("swarm_worker_tasks_started_total", .counter, "Task processes this worker spawned."),
        .init("swarm_worker_spawn_seconds", .histogram, "Time to spawn a task's process (the spawn call, on the loop).",
              buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5]),
        .init("swarm_worker_output_bytes_total", .counter, "Bytes of task output (stdout and stderr) read from task processes."),
        .init("process_cpu_seconds_total", .counter, "CPU time of the worker process (user and system), not of its tasks."),
        .init("process_resident_memory_bytes", .gauge, "Resident memory of the worker process, not of its tasks."),
    ]

    private let running, slots, rss: CoreMetrics.Gauge
    private let started, outputBytes: CoreMetrics.Counter
    private let cpu: CoreMetrics.FloatingPointCounter
    private let spawnSeconds: CoreMetrics.Timer
    /// CPU already counted, in microseconds (the counter takes steps; getrusage gives totals).
    private var countedCPUMicros: Int64 = 0

    init() {
        let registry = MetricsRegistry(catalog: Self.catalog)
        self.registry = registry
        running = registry.gauge("swarm_worker_running_tasks")
        slots = registry.gauge("swarm_worker_slots")
        rss = registry.gauge("process_resident_memory_bytes")
        started = registry.counter("swarm_worker_tasks_started_total")
        outputBytes = registry.counter("swarm_worker_output_bytes_total")
        cpu = registry.floatingPointCounter("process_cpu_seconds_total")
        spawnSeconds = registry.timer("swarm_worker_spawn_seconds")
    }

    func spawned(after duration: Duration) {
        started.increment()
        let (seconds, attoseconds) = duration.components
        spawnSeconds.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    func output(_ count: Int) { outputBytes.increment(by: count) }

    /// Sets what is read at scrape time.
    func refresh(running count: Int, slots total: Int) {
        running.record(count)
        slots.record(total)
        var usage = rusage()
        if getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 {
            let micros = Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000
                + Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
            if micros > countedCPUMicros {
                // Whole microseconds as a fraction of a second: the counter is a double.
                cpu.increment(by: Double(micros - countedCPUMicros) / 1_000_000)
                countedCPUMicros = micros
            }
        }
        if let bytes = Self.residentBytes() { rss.record(bytes) }
    }

    /// Resident set size now, from /proc/self/statm (its second field, in pages).
    static func residentBytes() -> Int? {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        let fields = buffer[..<n].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
