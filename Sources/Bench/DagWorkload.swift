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
        let scratch = try context.scratchDirectory(name)
        let gateFile = scratch + "/go"
        let prefix = "dag-\(UInt32.random(in: 0...UInt32.max))"
        // Holds the DAG until everything is submitted (bounded: 120 s).
        var gate = TaskSpec(id: "\(prefix)-gate", command: ["sh", "-c", "i=0; while [ ! -e \"$1\" ] && [ $i -lt 12000 ]; do sleep 0.01; i=$((i+1)); done", "gate", gateFile])
        gate.labels = ["bench": "dag"]
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
        let gaps = Self.layerGapsMs(infos, layers: layerIds)
        let gap = Percentiles(gaps)
        // The scheduler's part of it: to the next layer's first placement (its `placedAt`, ms).
        let placing = Percentiles(Self.layerGapsMs(infos, layers: layerIds, toPlacement: true))
        let perEdgeUs = run.schedulerCpuMs.map { $0 * 1000 / Double(max(1, edges)) }
        context.progress.end("dag: gap p50 \(Self.ms(gap?.p50)), p95 \(Self.ms(gap?.cdf[95])); scheduler "
            + "\(perEdgeUs.map { String(format: "%.2f µs", $0) } ?? "-") CPU per released edge")
        report.runs = [run]
        report.summary = BatchMeasure.summary(report.runs)
        report.tables = [ReportTable(title: "Dependencies", columns: ["figure", "value"], rows: [
            ["layer gap p50 (last end -> next first start)", Self.ms(gap?.p50)],
            ["layer gap p95", Self.ms(gap?.cdf[95])],
            ["layer gap max", Self.ms(gap?.max)],
            ["of which to the first placement, p50 (ms resolution)", Self.ms(placing?.p50)],
            ["of which to the first placement, p95", Self.ms(placing?.cdf[95])],
            ["scheduler CPU per released edge", perEdgeUs.map { String(format: "%.2f µs", $0) } ?? "-"],
            ["scheduler CPU per task", run.schedulerCpuMs.map { String(format: "%.1f µs", $0 * 1000 / Double(all.count)) } ?? "-"],
            ["wall time", String(format: "%.2f s", wallSeconds)],
        ])]
        report.notes.append("Layer gap p50 \(Self.ms(gap?.p50)), p95 \(Self.ms(gap?.cdf[95])) over \(gaps.count) layer "
            + "boundaries (target p50 under 5 ms on an idle cluster: shown, not judged).")
        if run.lost > 0 || run.duplicated > 0 || run.failed > 0 {
            report.passed = false
            report.notes.append("\(run.failed) failed, \(run.lost) lost, \(run.duplicated) duplicated.")
        }
        return report
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
