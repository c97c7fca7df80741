import Foundation
import SwarmClient
import SwarmProtocol

/// `tls` (issue 16): what TLS costs. The bench's local cluster is loopback without a token,
/// so plaintext; a twin of it with a token (TLS 1.3, a PSK from the token, on loopback too)
/// runs beside it. The spawn batch and the parallel-wide batch run on each, interleaved, in
/// the same run; then the time a client takes to connect (TCP, TLS, the token handshake and
/// one request), and the TLS handshake alone, per connection.
public struct TLSWorkload: Workload {
    public let name = "tls"
    public init() {}

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let o = context.options
        var report = WorkloadReport(name: name, title: "TLS: cost of TLS 1.3 (token PSK) against plaintext",
            description: "The same cluster twice on this machine: plaintext (no token, loopback) and with a token, which "
                + "makes every connection TLS 1.3 with a PSK derived from it (ECDHE key exchange, AES-128-GCM). The spawn "
                + "batch and the parallel-wide batch run on each, interleaved; then clients connect one after the other "
                + "(TCP, TLS, the token handshake and one request), timing each connection and its TLS handshake.")
        guard let session = context as? BenchSession, let plain = session.local else {
            report.notes.append("skipped: needs the bench's own local cluster (not --scheduler)")
            return report
        }
        var options = plain.options
        options.directory += "-tls"
        options.token = ClusterToken(ClusterToken.makeNonce())
        let token = options.token!
        context.progress.begin("tls: starting the same cluster with a token", total: 1)
        let secure = LocalProcessCluster(options)
        defer { secure.stop() }
        try secure.start(runtime: nil)
        context.progress.end("TLS cluster at \(secure.address)")
        let twin = session.twin(client: try SwarmClient(address: secure.address, token: token, name: "bench"),
                                local: secure, token: token)
        let sides: [(String, BenchContext)] = [("plaintext", context), ("TLS", twin)]

        let spawnTasks = o.quick ? min(o.spawnTasks, 300) : o.spawnTasks
        let spawnSlots = min(o.spawnConcurrency, context.cluster.totalSlots)
        let wideTasks = o.quick ? min(o.parallelWideTasks, 200) : o.parallelWideTasks
        let wideSleep = o.quick ? min(o.parallelWideSleepSeconds, 1) : o.parallelWideSleepSeconds
        let wideSlots = min(max(1, wideTasks), context.cluster.totalSlots)
        report.parameters = ["spawnTasks": "\(spawnTasks)", "wideTasks": "\(wideTasks)", "wideSleepSeconds": sleepText(wideSleep),
                             "concurrency": "\(spawnSlots)", "repeats": "\(max(1, o.repeats))"]
        var spawn: [String: [RunFigures]] = [:]
        var wide: [String: [RunFigures]] = [:]
        // One unmeasured spawn round on each first (fresh clusters: heaps, directories), as
        // the spawn workload does; its tasks still count for lost and duplicated ones.
        for (label, side) in sides where !o.quick {
            report.runs.append(try batch(side, "warm-up \(label)", command: ["true"], tasks: spawnTasks,
                                         concurrency: spawnSlots, sleep: nil))
        }
        for r in 1...max(1, o.repeats) {
            for (label, side) in sides {
                let run = try batch(side, "spawn \(label) run \(r)", command: ["true"], tasks: spawnTasks,
                                    concurrency: spawnSlots, sleep: nil)
                spawn[label, default: []].append(run)
                report.runs.append(run)
            }
            for (label, side) in sides where wideTasks > 0 {
                let run = try batch(side, "parallel-wide \(label) run \(r)", command: ["sleep", sleepText(wideSleep)],
                                    tasks: wideTasks, concurrency: wideSlots, sleep: wideSleep)
                wide[label, default: []].append(run)
                report.runs.append(run)
            }
        }
        let connections = o.quick ? 20 : 100
        let plainConnect = try connectTimes(plain.address, token: nil, count: connections, context.progress)
        let tlsConnect = try connectTimes(secure.address, token: token, count: connections, context.progress)
        let figures = TLSCostTable(spawn: spawn, wide: wide, plainConnect: plainConnect.total, tlsConnect: tlsConnect.total,
                                   tlsHandshake: tlsConnect.tls, connections: connections)
        report.tables.append(figures.table)
        let cost = figures.throughputCost
        if let median = cost.ofMedians {
            let off = Spread(spawn["plaintext"]?.map(\.throughput) ?? [])?.median ?? 0
            let on = Spread(spawn["TLS"]?.map(\.throughput) ?? [])?.median ?? 0
            let pairs = cost.pairs.map { String(format: "; pair by pair %.1f%% to %.1f%%", $0.min, $0.max) } ?? ""
            report.notes.append(String(format: "TLS costs %.1f%% of spawn throughput (%.0f/s plaintext, %.0f/s TLS", median, off, on)
                + pairs + "; issue 16's bound: at most 10%).")
        }
        report.summary = BatchMeasure.summary(spawn["TLS"] ?? [])
        report.notes.append("On a shared machine the throughput of single runs swings by tens of percent; the CPU per task "
            + "(the scheduler's and workers' own, from /proc) shows what TLS itself adds.")
        report.passed = report.runs.allSatisfy { $0.lost == 0 && $0.duplicated == 0 && $0.failed == 0 }
        return report
    }

    private func batch(_ side: BenchContext, _ label: String, command: [String], tasks: Int, concurrency: Int,
                       sleep: Double?) throws -> RunFigures {
        side.progress.begin("tls: \(label)", total: tasks)
        let timeout = max(120, (sleep ?? 0) * Double(tasks) / Double(max(1, concurrency)) * 5 + Double(tasks) / 50)
        let (run, _) = try side.runBatch((0..<tasks).map { _ in TaskSpec(command: command) }, label: label,
                                         concurrency: concurrency, sleepSeconds: sleep, timeoutSeconds: timeout)
        side.progress.end("\(run.tasks) tasks in \(String(format: "%.2f", run.wallSeconds)) s: \(Int(run.throughput))/s")
        return run
    }

    /// Milliseconds per connection (connect, TLS, token handshake, one `nodes` request), and
    /// of its TLS handshake alone (client side: first flight to done), one connection at a time.
    private func connectTimes(_ address: String, token: ClusterToken?, count: Int,
                              _ progress: BenchProgress) throws -> (total: [Double], tls: [Double]) {
        progress.begin("tls: \(count) connections to \(address)", total: count)
        var total: [Double] = [], tls: [Double] = []
        for i in 0..<count {
            let start = monotonicMicros()
            let client = try SwarmClient(address: address, token: token, name: "bench-connect")
            _ = try client.listNodes()
            total.append(Double(monotonicMicros() - start) / 1000)
            if let ns = client.tlsHandshakeNs { tls.append(Double(ns) / 1_000_000) }
            progress.update(done: i + 1)
        }
        progress.end(String(format: "median %.2f ms per connection", median(total)))
        return (total, tls)
    }

    private func median(_ values: [Double]) -> Double { Spread(values)?.median ?? 0 }
}
