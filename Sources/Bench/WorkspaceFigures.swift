import Foundation
import SwarmProtocol

/// The `workspace` workload's own figures (issue 11: work in, work out), in report.json as
/// the workload's `workspace` object. Bytes are bytes, rates MiB/s (1 MiB = 2^20 bytes),
/// times milliseconds unless the name says otherwise; nil when not measured.
public struct WorkspaceFigures: Codable, Sendable, Equatable {
    // Transfer: one input, packed, uploaded by the bench, fetched and unpacked by a worker.
    /// The packed input (the blob) and the files and bytes it holds.
    public var inputBytes: Int64?
    public var inputFiles: Int?
    public var inputContentBytes: Int64?
    /// `Archive.pack` of the input directory (not part of the transfer rate).
    public var packMs: Double?
    /// `SwarmClient.uploadBlob` of the packed input: offer to `blobStored` (held).
    public var uploadMs: Double?
    public var uploadMiBps: Double?
    /// A task with that input: its `prepareMs` (the worker fetched the blob into its cache,
    /// checked its hash and unpacked it into the task directory), and its `inputBytesFetched`.
    public var downloadMs: Double?
    public var downloadMiBps: Double?
    public var downloadBytesFetched: Int64?
    /// `SwarmClient.downloadBlob` of the same blob to a file (what `swarm fetch` does).
    public var clientDownloadMs: Double?
    public var clientDownloadMiBps: Double?
    /// The target figure: 2 x inputBytes / (upload seconds + download seconds).
    public var roundTripMiBps: Double?
    /// `cp -r` of the input directory to another directory of the same disk, same run.
    public var copyMs: Double?
    public var copyMiBps: Double?

    // Dedup: a fan-out of tasks sharing one input.
    public var fanoutTasks: Int?
    public var fanoutInputBytes: Int64?
    /// Blob bytes the scheduler sent to each worker during the fan-out (its stats counters,
    /// after minus before), and the sum of the tasks' `inputBytesFetched` by worker.
    public var fanoutBytesToWorker: [String: Int64]?
    public var fanoutFetchedByWorker: [String: Int64]?
    /// The most any worker received, in units of the input (target: <= 1).
    public var fanoutMaxPerWorkerRatio: Double?
    /// fanoutTasks x fanoutInputBytes: what sending the input with every task would move.
    public var fanoutNaiveBytes: Int64?

    // Worktrees: concurrent `repo` tasks of one repository.
    public var worktreeTasks: Int?
    public var repoFiles: Int?
    /// The tasks' `prepareMs` (worktree made from the worker's mirror, task directory ready):
    /// includes the mirror's clone and the waits for the mirror's queue and a checkout slot.
    public var worktreePrepare: Percentiles?
    /// The tasks' `worktreeMs`: the git work of making each worktree (registration and
    /// checkout), waits excluded. The target is judged on this one.
    public var worktreeCreate: Percentiles?
    /// How many of those worktrees were spares (`worktreeReused`), and the creation times of
    /// the new ones alone (every file written).
    public var worktreeReused: Int?
    public var worktreeCreateNew: Percentiles?

    // Artifacts: tasks writing files collected with `artifacts`.
    public var artifactTasks: Int?
    public var artifactFilesPerTask: Int?
    public var artifactFileBytes: Int64?
    /// The tasks' `collectMs` (globbed, hashed, uploaded and held by the scheduler).
    public var collect: Percentiles?
    /// Artifacts the results name as uploaded, of those the tasks wrote.
    public var artifactsCollected: Int?
    public var artifactsExpected: Int?

    public init() {}

    static let mib = 1_048_576.0

    /// MiB/s of `bytes` moved in `ms` milliseconds; nil without a positive time.
    static func rate(_ bytes: Int64?, ms: Double?) -> Double? {
        guard let bytes, let ms, ms > 0 else { return nil }
        return Double(bytes) / mib / (ms / 1000)
    }

    /// The transfer target's figure: both directions' bytes over both directions' time.
    static func roundTrip(_ bytes: Int64?, uploadMs: Double?, downloadMs: Double?) -> Double? {
        guard let bytes, let up = uploadMs, let down = downloadMs else { return nil }
        return rate(2 * bytes, ms: up + down)
    }

    /// Per-worker byte counts between two `stats` samples (workers missing before count from 0).
    static func delta(before: [String: Int64], after: [String: Int64]) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for (name, value) in after { out[name] = max(0, value - (before[name] ?? 0)) }
        return out
    }

    /// Sum of the tasks' `inputBytesFetched`, by the node that ran them.
    static func fetchedByNode(_ infos: [TaskInfo]) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for info in infos {
            guard let node = info.metrics.node else { continue }
            out[node, default: 0] += info.metrics.inputBytesFetched ?? 0
        }
        return out
    }

    /// The headline figures, most telling first.
    var headline: [String] {
        var parts: [String] = []
        let n = ReportFormat.number
        if let rt = roundTripMiBps { parts.append("upload+download \(n(rt)) MiB/s") }
        if let c = copyMiBps { parts.append("cp \(n(c)) MiB/s") }
        if let ratio = fanoutMaxPerWorkerRatio, let tasks = fanoutTasks {
            parts.append("fan-out of \(ReportFormat.int(tasks)): \(ReportFormat.fraction(ratio))x input per worker")
        }
        if let w = worktreeCreate { parts.append("worktree p50 \(n(w.p50)) ms") }
        if let c = collect { parts.append("collect p50 \(n(c.p50)) ms") }
        return parts
    }

    /// The report's table of these figures.
    var table: ReportTable {
        let n = ReportFormat.number
        func mib(_ bytes: Int64?) -> String { bytes.map { n(Double($0) / Self.mib) } ?? ReportFormat.missing }
        func ms(_ v: Double?) -> String { v.map(n) ?? ReportFormat.missing }
        func rate(_ v: Double?) -> String { v.map(n) ?? ReportFormat.missing }
        var rows: [[String]] = [
            ["pack (Archive.pack)", mib(inputContentBytes), ms(packMs), ReportFormat.missing],
            ["upload (SwarmClient.uploadBlob)", mib(inputBytes), ms(uploadMs), rate(uploadMiBps)],
            ["download + unpack (a task's prepareMs)", mib(inputBytes), ms(downloadMs), rate(downloadMiBps)],
            ["download only (SwarmClient.downloadBlob)", mib(inputBytes), ms(clientDownloadMs), rate(clientDownloadMiBps)],
            ["upload + download (target figure)", mib(inputBytes.map { 2 * $0 }),
             ms(uploadMs.flatMap { u in downloadMs.map { u + $0 } }), rate(roundTripMiBps)],
            ["cp -r, same disk", mib(inputContentBytes), ms(copyMs), rate(copyMiBps)],
        ]
        for name in (fanoutBytesToWorker ?? [:]).keys.sorted() {
            rows.append(["fan-out: sent to \(name) (fetched by its tasks: \(mib(fanoutFetchedByWorker?[name])) MiB)",
                         mib(fanoutBytesToWorker?[name]), ReportFormat.missing, ReportFormat.missing])
        }
        if let naive = fanoutNaiveBytes {
            rows.append(["fan-out: \(ReportFormat.int(fanoutTasks ?? 0)) x input (without sharing)", mib(naive),
                         ReportFormat.missing, ReportFormat.missing])
        }
        if let w = worktreeCreate {
            rows.append(["worktree creation p50 / p99 (\(w.count) tasks; git's work, waits excluded)", ReportFormat.missing,
                         "\(n(w.p50)) / \(n(w.p99))", ReportFormat.missing])
        }
        if let w = worktreeCreateNew {
            rows.append(["new worktrees alone: creation p50 / p99 (\(w.count) tasks; \(worktreeReused ?? 0) reused a spare)", ReportFormat.missing,
                         "\(n(w.p50)) / \(n(w.p99))", ReportFormat.missing])
        }
        if let w = worktreePrepare {
            rows.append(["worktree ready p50 / p99 (\(w.count) tasks; prepareMs: clone and waits included)", ReportFormat.missing,
                         "\(n(w.p50)) / \(n(w.p99))", ReportFormat.missing])
        }
        if let c = collect {
            rows.append(["artifact collection p50 / p99 (\(c.count) tasks)", ReportFormat.missing, "\(n(c.p50)) / \(n(c.p99))", ReportFormat.missing])
        }
        return ReportTable(title: "Work in, work out", columns: ["What", "MiB", "ms", "MiB/s"], rows: rows)
    }
}
