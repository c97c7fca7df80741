import Foundation
import SwarmProtocol

/// `dag`: task dependencies at scale (issue 13 item 7). `layers` layers of `width` instant
/// tasks (`true`), each task `after` the whole previous layer: width x width dependency edges
/// released per layer. All of it is submitted first (a layer per batch), held behind a gate
/// task, so the measurement starts on an idle cluster with the whole DAG known. Reported: the
/// gap from a layer's last end to the next layer's first start (worker clocks, one machine for
/// a local cluster), and the scheduler's CPU per released dependency edge. Shown, not judged
/// by the bench's verdict (the target is p50 under 5 ms).
public struct DagWorkload: Workload {
    public let name = "dag"
    public init() {}

    /// Layers and their width: 100 x 100 (10,000 tasks, 990,000 edges); `--quick` 10 x 20.
    static func shape(_ options: BenchOptions) -> (layers: Int, width: Int) {
        options.quick ? (10, 20) : (100, 100)
    }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let (layers, width) = Self.shape(context.options)
        let edges = (layers - 1) * width * width
        var report = WorkloadReport(name: name, title: "DAG: \(layers) layers of \(width), each after the whole previous layer",
            description: "\(layers * width) tasks running `true`, in \(layers) layers of \(width); every task of a layer is "
                + "`--after` every task of the previous one (\(edges) dependency edges). The DAG is submitted whole, a layer per "
                + "batch, behind a gate task, then released at once. The gap is from a layer's last end to the next layer's "
                + "first start (the workers' clocks); the scheduler's CPU is over the whole run, divided by the edges released.")
        report.parameters = ["layers": "\(layers)", "width": "\(width)", "edges": "\(edges)",
                             "slots": "\(context.cluster.totalSlots)"]
        let gateFile = try context.scratchDirectory(name) + "/go"
        let layerIds = try Self.submit(context, layers: layers, width: width, gateFile: gateFile)
        let before = context.processFigures()
        let startMonoUs = monotonicMicros()
        let submitUs = unixMicros()
        FileManager.default.createFile(atPath: gateFile, contents: nil)
        context.progress.begin("dag: \(layers) layers of \(width)", total: layers * width)
        let all = layerIds.flatMap { $0 }
        let infos = try context.client.wait(all, timeoutSeconds: 600)
        let wallSeconds = Double(monotonicMicros() - startMonoUs) / 1_000_000
        let after = context.processFigures()
        context.progress.update(done: infos.filter { $0.state.isTerminal }.count)
        var run = BatchMeasure.figures(infos: infos, ids: all, label: "\(layers) x \(width)", concurrency: width,
                                       submitUs: submitUs, wallSeconds: wallSeconds, sleepSeconds: nil)
        BatchMeasure.addUsage(&run, before: before, after: after)
        report.runs = [run]
        report.summary = BatchMeasure.summary(report.runs)
        Self.describe(&report, infos: infos, layers: layerIds, edges: edges, progress: context.progress)
        if run.lost > 0 || run.duplicated > 0 || run.failed > 0 {
            report.passed = false
            report.notes.append("\(run.failed) failed, \(run.lost) lost, \(run.duplicated) duplicated.")
        }
        return report
    }

    /// Submits the DAG, a layer per batch, behind a gate task that waits for `gateFile`
    /// (bounded: 120 s); returns each layer's ids.
    static func submit(_ context: BenchContext, layers: Int, width: Int, gateFile: String) throws -> [[String]] {
        let prefix = "dag-\(UInt32.random(in: 0...UInt32.max))"
        let wait = "i=0; while [ ! -e \"$1\" ] && [ $i -lt 12000 ]; do sleep 0.01; i=$((i+1)); done"
        let gate = TaskSpec(id: "\(prefix)-gate", command: ["sh", "-c", wait, "gate", gateFile])
        _ = try context.client.submitBatch([gate])
        var layerIds: [[String]] = []
        context.progress.begin("dag: submitting \(layers) layers", total: layers)
        for layer in 0..<layers {
            let ids = (0..<width).map { "\(prefix)-\(layer)-\($0)" }
            let after = layer == 0 ? [gate.id!] : layerIds[layer - 1]
            let specs = ids.map { id -> TaskSpec in
                var spec = TaskSpec(id: id, command: ["true"])
                spec.after = after
                return spec
            }
            do { _ = try context.client.submitBatch(specs) } catch {
                throw BenchError.failed("dag: the scheduler refused layer \(layer): \(error)")
            }
            layerIds.append(ids)
            context.progress.update(done: layer + 1)
        }
        context.progress.end("dag: \(layers * width) tasks submitted")
        return layerIds
    }

    /// The gaps and the CPU per edge, as the report's table and a note (and the progress line).
    static func describe(_ report: inout WorkloadReport, infos: [TaskInfo], layers: [[String]], edges: Int,
                         progress: BenchProgress) {
        let gaps = layerGapsMs(infos, layers: layers)
        let gap = Percentiles(gaps)
        // The scheduler's part of it: to the next layer's first placement (its `placedAt`, ms).
        let placing = Percentiles(layerGapsMs(infos, layers: layers, toPlacement: true))
        let cpuMs = report.runs.first?.schedulerCpuMs
        let perEdge = cpuMs.map { String(format: "%.2f µs", $0 * 1000 / Double(max(1, edges))) } ?? "-"
        let perTask = cpuMs.map { String(format: "%.1f µs", $0 * 1000 / Double(max(1, infos.count))) } ?? "-"
        progress.end("dag: gap p50 \(ms(gap?.p50)), p95 \(ms(gap?.cdf[95])); scheduler \(perEdge) CPU per released edge")
        report.tables = [ReportTable(title: "Dependencies", columns: ["figure", "value"], rows: [
            ["layer gap p50 (last end -> next first start)", ms(gap?.p50)],
            ["layer gap p95", ms(gap?.cdf[95])],
            ["layer gap max", ms(gap?.max)],
            ["of which to the first placement, p50 (ms resolution)", ms(placing?.p50)],
            ["of which to the first placement, p95", ms(placing?.cdf[95])],
            ["scheduler CPU per released edge", perEdge],
            ["scheduler CPU per task", perTask],
            ["wall time", String(format: "%.2f s", report.runs.first?.wallSeconds ?? 0)],
        ])]
        report.notes.append("Layer gap p50 \(ms(gap?.p50)), p95 \(ms(gap?.cdf[95])) over \(gaps.count) layer "
            + "boundaries (target p50 under 5 ms on an idle cluster: shown, not judged).")
        report.notes.append("What a gap holds: the worker's result of the layer's last exit (sent with the other results of its "
            + "loop pass, up to a worker's share of the layer), the scheduler reading them, saving them with the next layer's "
            + "first placements (a turn places at most 8, the rest in the next loop iterations) and, durable, one sync of "
            + "its state; then the assignment read and spawned by its worker. See the README's "
            + "dag section for the measured breakdown.")
    }

    /// For each layer after the first: its first start minus the previous layer's last end,
    /// in ms (the workers' `startedAtUs` / `exitedAtUs`); `toPlacement`: its first placement
    /// instead (the scheduler's `placedAt`, whole ms). A boundary with a task missing either
    /// time is left out.
    static func layerGapsMs(_ infos: [TaskInfo], layers: [[String]], toPlacement: Bool = false) -> [Double] {
        let byId = Dictionary(infos.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var gaps: [Double] = []
        for k in layers.indices.dropFirst() {
            let ends = layers[k - 1].compactMap { byId[$0]?.metrics.exitedAtUs }
            let starts = layers[k].compactMap { id in toPlacement ? byId[id]?.placedAt.map { $0 * 1000 } : byId[id]?.metrics.startedAtUs }
            guard ends.count == layers[k - 1].count, starts.count == layers[k].count,
                  let lastEnd = ends.max(), let firstStart = starts.min() else { continue }
            gaps.append(Double(firstStart - lastEnd) / 1000)
        }
        return gaps
    }

    static func ms(_ value: Double?) -> String {
        value.map { String(format: "%.2f ms", $0) } ?? "-"
    }
}
