import Foundation

/// The `tls` workload's figures, plaintext against TLS: each as its median with the min and max
/// over the repeats (`median [min–max]`, as every other target shows them), and TLS's cost both
/// from the medians and pair by pair (run r plaintext against run r TLS, which ran in the same
/// minute: on a loaded machine the pairs move together, so their spread says more than the
/// spread of either side). CPU per task is shown per side (scheduler, workers) and summed. Pure.
struct TLSCostTable {
    var spawn: [String: [RunFigures]]
    var wide: [String: [RunFigures]]
    /// Milliseconds per connection (connect, handshakes, one request) on each side, and the TLS
    /// handshake alone (client side) on the TLS one.
    var plainConnect: [Double]
    var tlsConnect: [Double]
    var tlsHandshake: [Double]
    var connections: Int

    /// TLS's cost in percent of a figure, from the medians and over the pairs: higher-is-better
    /// figures (throughput) cost (off - on) / off, the others (on - off) / off.
    struct Cost {
        var ofMedians: Double?
        var pairs: Spread?
    }

    static func cost(off: [Double], on: [Double], higherIsBetter: Bool) -> Cost {
        func pct(_ off: Double, _ on: Double) -> Double? {
            guard off > 0, off.isFinite, on.isFinite else { return nil }
            return (higherIsBetter ? off - on : on - off) / off * 100
        }
        let medians = (Spread(off)?.median, Spread(on)?.median)
        let ofMedians = medians.0.flatMap { o in medians.1.flatMap { pct(o, $0) } }
        let pairs = zip(off, on).compactMap { pct($0, $1) }
        return Cost(ofMedians: ofMedians, pairs: Spread(pairs))
    }

    /// TLS's cost of spawn throughput (issue 16's bound: at most 10%).
    var throughputCost: Cost {
        Self.cost(off: values("plaintext", \.throughput), on: values("TLS", \.throughput), higherIsBetter: true)
    }

    private func values(_ side: String, _ key: (RunFigures) -> Double?) -> [Double] {
        (spawn[side] ?? []).compactMap(key)
    }

    /// Scheduler, workers and both: µs of CPU per task of the spawn runs.
    static func schedulerUs(_ run: RunFigures) -> Double? { perTask(run.schedulerCpuMs, run) }
    static func workersUs(_ run: RunFigures) -> Double? { perTask(run.workersCpuMs, run) }
    private static func perTask(_ ms: Double?, _ run: RunFigures) -> Double? {
        guard let ms, run.tasks > 0 else { return nil }
        return ms * 1000 / Double(run.tasks)
    }

    var table: ReportTable {
        func f(_ v: Double?, _ digits: Int) -> String {
            guard let v, v.isFinite else { return "-" }
            return String(format: "%.\(digits)f", v)
        }
        func spread(_ values: [Double], _ digits: Int) -> String {
            guard let s = Spread(values) else { return "-" }
            let (m, lo, hi) = (f(s.median, digits), f(s.min, digits), f(s.max, digits))
            return lo == hi ? m : "\(m) [\(lo)–\(hi)]"
        }
        func costText(_ c: Cost) -> String {
            guard let m = c.ofMedians else { return "-" }
            let median = String(format: "%+.1f%%", m)
            guard let p = c.pairs, p.runs > 1 else { return median }
            return median + String(format: " (pairs %+.1f to %+.1f%%)", p.min, p.max)
        }
        func row(_ name: String, _ all: [String: [RunFigures]], _ key: (RunFigures) -> Double?, digits: Int,
                 higherIsBetter: Bool = false) -> [String] {
            let off = (all["plaintext"] ?? []).compactMap(key), on = (all["TLS"] ?? []).compactMap(key)
            return [name, spread(off, digits), spread(on, digits),
                    costText(Self.cost(off: off, on: on, higherIsBetter: higherIsBetter))]
        }
        let connect = Self.cost(off: [Spread(plainConnect)?.median ?? 0], on: [Spread(tlsConnect)?.median ?? 0],
                                higherIsBetter: false)
        let handshake = Spread(tlsHandshake)
        return ReportTable(title: "TLS on and off (median [min–max] over the repeats)",
                           columns: ["figure", "plaintext", "TLS", "TLS cost (of the medians; pair by pair)"], rows: [
            row("spawn throughput (tasks/s)", spawn, \.throughput, digits: 0, higherIsBetter: true),
            row("spawn: scheduler + worker CPU per task (µs)", spawn, \.overheadCpuUsPerTask, digits: 0),
            row("spawn: scheduler CPU per task (µs)", spawn, Self.schedulerUs, digits: 0),
            row("spawn: workers' CPU per task (µs)", spawn, Self.workersUs, digits: 0),
            row("parallel-wide wall time (s)", wide, \.wallSeconds, digits: 2),
            ["connection: connect + handshakes + 1 request (ms, \(connections) connections, median)",
             f(Spread(plainConnect)?.median, 2), f(Spread(tlsConnect)?.median, 2), costText(connect)],
            ["TLS handshake alone (ms, client side, p50 / p90)", "-",
             "\(f(handshake?.median, 2)) / \(f(Self.percentile(tlsHandshake, 0.9), 2))", "-"],
        ])
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }
}
