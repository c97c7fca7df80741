import Foundation
import SwarmArchive
import SwarmProtocol

/// `workspace`: work in and work out (issue 11). Four phases on the same cluster:
/// **transfer** (one input packed, uploaded by the bench, fetched and unpacked by a worker
/// for a real task; `cp -r` of the same files on the same disk for comparison), **fan-out**
/// (many tasks sharing one input: the blob bytes the scheduler sent each worker, from its
/// counters), **worktrees** (concurrent `repo` tasks of one repository: their `prepareMs`)
/// and **artifacts** (tasks writing files collected with `artifacts`: their `collectMs`).
public struct WorkspaceWorkload: Workload {
    public let name = "workspace"
    public init() {}

    /// The sizes of one run (quick mode scales the defaults down; smaller explicit values win).
    struct Sizes: Equatable {
        var inputMiB: Int
        var fanoutTasks: Int
        var fanoutInputMiB: Int
        var worktreeTasks: Int
        var repoFiles: Int
        var artifactTasks: Int
        var artifactFiles = 10
        var artifactFileBytes = 1 << 20

        init(_ o: BenchOptions) {
            inputMiB = o.quick ? min(o.workspaceInputMiB, 32) : o.workspaceInputMiB
            fanoutTasks = o.quick ? min(o.workspaceFanoutTasks, 100) : o.workspaceFanoutTasks
            fanoutInputMiB = o.quick ? min(o.workspaceFanoutInputMiB, 8) : o.workspaceFanoutInputMiB
            worktreeTasks = o.quick ? min(o.workspaceWorktreeTasks, 20) : o.workspaceWorktreeTasks
            repoFiles = o.workspaceRepoFiles
            artifactTasks = o.quick ? min(o.workspaceArtifactTasks, 10) : o.workspaceArtifactTasks
        }
    }

    public func run(_ context: BenchContext) throws -> WorkloadReport {
        let sizes = Sizes(context.options)
        var report = WorkloadReport(name: name, title: "Work in, work out: inputs, dedup, worktrees, artifacts", description: """
            Transfer: a \(sizes.inputMiB) MiB input directory is packed (SwarmArchive), uploaded by the bench \
            (SwarmClient.uploadBlob, until the scheduler holds it), then fetched and unpacked by a worker for a \
            real task (its prepareMs: fetch into the worker's blob cache, hash check, unpack into the task \
            directory), and downloaded once more by the bench (SwarmClient.downloadBlob); `cp -r` of the same \
            files on the same disk is the comparison. Fan-out: \(sizes.fanoutTasks) tasks share one \
            \(sizes.fanoutInputMiB) MiB input; the scheduler's per-worker blob counters show the bytes that \
            crossed the wire to each worker, against \(sizes.fanoutTasks) times the input. Worktrees: \
            \(sizes.worktreeTasks) concurrent tasks of one \(sizes.repoFiles)-file repository (--repo): their \
            worktreeMs (git's work of making each worktree, the target's figure) and their prepareMs (until the \
            task could start: the mirror's clone and the waits for a checkout slot included). Artifacts: \(sizes.artifactTasks) tasks each write \(sizes.artifactFiles) files of \
            \(sizes.artifactFileBytes >> 20) MiB collected with --artifact, their collectMs.
            """)
        report.parameters = [
            "inputMiB": "\(sizes.inputMiB)", "fanoutTasks": "\(sizes.fanoutTasks)", "fanoutInputMiB": "\(sizes.fanoutInputMiB)",
            "worktreeTasks": "\(sizes.worktreeTasks)", "repoFiles": "\(sizes.repoFiles)", "artifactTasks": "\(sizes.artifactTasks)",
            "artifactFilesPerTask": "\(sizes.artifactFiles)", "artifactFileBytes": "\(sizes.artifactFileBytes)",
            "schedulerState": context.cluster.durable.map { $0 ? "durable (STATE/blobs, fsync)" : "in-memory (blobs in a temporary directory, fsync)" } ?? "unknown",
        ]
        let scratch = try context.scratchDirectory(name)
        var figures = WorkspaceFigures()
        let phase = WorkspacePhases(context: context, scratch: scratch, sizes: sizes)
        for step in [phase.transfer, phase.fanOut, phase.worktrees, phase.artifacts] as [(inout WorkloadReport, inout WorkspaceFigures) throws -> Void] {
            do { try step(&report, &figures) } catch {
                report.passed = false
                report.notes.append("\(error)")
                context.progress.end("\(error)")
            }
        }
        report.workspace = figures
        report.tables.append(figures.table)
        for run in report.runs where run.lost > 0 || run.duplicated > 0 {
            report.passed = false
            report.notes.append("\(run.label): \(run.lost) lost, \(run.duplicated) ran more than once")
        }
        report.notes.append("Upload+download rate = 2 x packed input bytes / (upload seconds + download seconds), where "
            + "download is the task's prepareMs (fetch, hash check and unpack on the worker). cp -r does not fsync; the "
            + "scheduler fsyncs each blob it holds and the worker each blob it caches. Everything ran on one machine: "
            + "loopback, one disk, shared CPUs.")
        try? FileManager.default.removeItem(atPath: scratch)
        return report
    }
}

/// The phases of `WorkspaceWorkload`, each filling its part of the figures and adding its run.
struct WorkspacePhases {
    let context: BenchContext
    let scratch: String
    let sizes: WorkspaceWorkload.Sizes

    var timeout: Double { context.options.quick ? 300 : 1800 }

    func transfer(_ report: inout WorkloadReport, _ f: inout WorkspaceFigures) throws {
        let progress = context.progress
        progress.begin("workspace: a \(sizes.inputMiB) MiB input: pack, cp, upload, download", total: 1)
        let source = scratch + "/input"
        let files = max(1, min(64, sizes.inputMiB / 16))
        // The packed archive must fit the default per-task input limit: its headers take a little room.
        let content = Int64(sizes.inputMiB) << 20 - 64 * 1024
        try WorkspaceData.randomTree(at: source, files: files, bytes: content)
        f.inputFiles = files
        f.inputContentBytes = content
        let copy = scratch + "/input-copy"
        f.copyMs = try WorkspaceData.timed { try WorkspaceData.shell(["cp", "-r", source, copy]) }
        f.copyMiBps = WorkspaceFigures.rate(content, ms: f.copyMs)
        try? FileManager.default.removeItem(atPath: copy)

        let packed = scratch + "/input.swarchive"
        var blob: (sha256: String, size: Int64) = ("", 0)
        f.packMs = try WorkspaceData.timed { blob = try Archive.pack(source: source, to: packed, maxBytes: BlobLimits.defaultInputBytesPerTask) }
        f.inputBytes = blob.size
        f.uploadMs = try WorkspaceData.timed { try context.client.uploadBlob(file: packed, sha256: blob.sha256, size: blob.size) }
        f.uploadMiBps = WorkspaceFigures.rate(blob.size, ms: f.uploadMs)

        var spec = TaskSpec(command: ["/bin/sh", "-c", "test -d input && rm -rf input"])
        spec.inputBlobs = [InputRef(dest: "input", sha256: blob.sha256, size: blob.size)]
        spec.labels = ["bench": "workspace"]
        let (run, infos) = try context.runBatch([spec], label: "transfer: 1 task with the input", concurrency: 1,
                                                sleepSeconds: nil, timeoutSeconds: timeout)
        report.runs.append(run)
        if let info = infos.first, info.state == .succeeded, let prepare = info.metrics.prepareMs {
            f.downloadMs = Double(prepare)
            f.downloadMiBps = WorkspaceFigures.rate(blob.size, ms: f.downloadMs)
            f.downloadBytesFetched = info.metrics.inputBytesFetched
            if info.metrics.inputBytesFetched != blob.size {
                report.notes.append("the transfer task fetched \(info.metrics.inputBytesFetched.map(String.init) ?? "null") bytes, not the input's \(blob.size)")
            }
        } else {
            report.passed = false
            report.notes.append("the transfer task did not succeed with a prepareMs: \(infos.first.map { "\($0.state.rawValue) \($0.reason ?? "")" } ?? "no info")")
        }
        let downloaded = scratch + "/downloaded.swarchive"
        f.clientDownloadMs = try WorkspaceData.timed { try context.client.downloadBlob(blob.sha256, size: blob.size, to: downloaded) }
        f.clientDownloadMiBps = WorkspaceFigures.rate(blob.size, ms: f.clientDownloadMs)
        f.roundTripMiBps = WorkspaceFigures.roundTrip(blob.size, uploadMs: f.uploadMs, downloadMs: f.downloadMs)
        for path in [source, packed, downloaded] { try? FileManager.default.removeItem(atPath: path) }
        progress.end("upload \(ReportFormat.number(f.uploadMiBps)) MiB/s, download+unpack \(ReportFormat.number(f.downloadMiBps)) MiB/s, "
            + "cp \(ReportFormat.number(f.copyMiBps)) MiB/s")
    }

    func fanOut(_ report: inout WorkloadReport, _ f: inout WorkspaceFigures) throws {
        let tasks = sizes.fanoutTasks
        context.progress.begin("workspace: \(tasks) tasks sharing one \(sizes.fanoutInputMiB) MiB input", total: tasks)
        let source = scratch + "/shared"
        try WorkspaceData.randomTree(at: source, files: max(1, sizes.fanoutInputMiB / 4), bytes: Int64(sizes.fanoutInputMiB) << 20 - 64 * 1024)
        let packed = scratch + "/shared.swarchive"
        let blob = try Archive.pack(source: source, to: packed, maxBytes: BlobLimits.defaultInputBytesPerTask)
        try context.client.uploadBlob(file: packed, sha256: blob.sha256, size: blob.size)
        try? FileManager.default.removeItem(atPath: source)
        try? FileManager.default.removeItem(atPath: packed)
        let before = try context.client.stats().workers.compactMapValues(\.blobBytesOut)
        // Each task removes its unpacked copy: N copies of the input need not stay on disk.
        var spec = TaskSpec(command: ["/bin/sh", "-c", "test -d shared && rm -rf shared"])
        spec.inputBlobs = [InputRef(dest: "shared", sha256: blob.sha256, size: blob.size)]
        spec.labels = ["bench": "workspace"]
        let (run, infos) = try context.runBatch(Array(repeating: spec, count: tasks), label: "fan-out: \(tasks) tasks, one input",
                                                concurrency: context.cluster.totalSlots, sleepSeconds: nil, timeoutSeconds: timeout)
        let after = try context.client.stats().workers.compactMapValues(\.blobBytesOut)
        report.runs.append(run)
        f.fanoutTasks = tasks
        f.fanoutInputBytes = blob.size
        f.fanoutNaiveBytes = Int64(tasks) * blob.size
        f.fanoutFetchedByWorker = WorkspaceFigures.fetchedByNode(infos)
        if after.isEmpty {
            report.notes.append("the scheduler does not report blob bytes per worker: fan-out bytes from the tasks' inputBytesFetched")
            f.fanoutBytesToWorker = f.fanoutFetchedByWorker
        } else {
            f.fanoutBytesToWorker = WorkspaceFigures.delta(before: before, after: after).filter { $0.value > 0 || f.fanoutFetchedByWorker?[$0.key] != nil }
        }
        if let most = f.fanoutBytesToWorker?.values.max(), blob.size > 0 { f.fanoutMaxPerWorkerRatio = Double(most) / Double(blob.size) }
        if run.failed > 0 {
            report.passed = false
            report.notes.append("fan-out: \(run.failed) task(s) did not succeed: \(Self.firstReason(infos))")
        }
        context.progress.end("fan-out: at most \(ReportFormat.fraction(f.fanoutMaxPerWorkerRatio))x the input per worker "
            + "(\(ReportFormat.int(tasks)) x input would be \(ReportFormat.number(Double(f.fanoutNaiveBytes ?? 0) / WorkspaceFigures.mib)) MiB)")
    }

    func worktrees(_ report: inout WorkloadReport, _ f: inout WorkspaceFigures) throws {
        let tasks = sizes.worktreeTasks
        context.progress.begin("workspace: a \(sizes.repoFiles)-file repository, \(tasks) concurrent worktrees", total: tasks)
        let repo = try WorkspaceData.repository(at: scratch + "/repo", files: sizes.repoFiles)
        var spec = TaskSpec(command: ["/bin/sh", "-c", "test -n \"$(ls)\""])
        spec.repo = repo
        spec.labels = ["bench": "workspace"]
        let (run, infos) = try context.runBatch(Array(repeating: spec, count: tasks), label: "worktrees: \(tasks) repo tasks",
                                                concurrency: min(tasks, context.cluster.totalSlots), sleepSeconds: nil,
                                                timeoutSeconds: timeout)
        report.runs.append(run)
        f.worktreeTasks = tasks
        f.repoFiles = sizes.repoFiles
        let ok = infos.filter { $0.state == .succeeded }
        f.worktreePrepare = Percentiles(ok.compactMap { $0.metrics.prepareMs.map(Double.init) })
        f.worktreeCreate = Percentiles(ok.compactMap { $0.metrics.worktreeMs.map(Double.init) })
        f.worktreeReused = ok.filter { $0.metrics.worktreeReused == true }.count
        f.worktreeCreateNew = Percentiles(ok.filter { $0.metrics.worktreeReused != true }.compactMap { $0.metrics.worktreeMs.map(Double.init) })
        if ok.count < infos.count {
            let reason = Self.firstReason(infos)
            if reason.contains("cannot make git worktrees") || reason.contains("cannot collect git worktrees") {
                // GitWorkspace is not in this build: the figure is missing, not failed.
                report.notes.append("worktrees: not measured, this build's workers cannot run --repo tasks yet (\(reason))")
            } else {
                report.passed = false
                report.notes.append("worktrees: \(infos.count - ok.count) task(s) did not succeed: \(reason)")
            }
        }
        context.progress.end("worktree creation p50 \(ReportFormat.number(f.worktreeCreate?.p50)) ms, ready p50 \(ReportFormat.number(f.worktreePrepare?.p50)) ms")
    }

    func artifacts(_ report: inout WorkloadReport, _ f: inout WorkspaceFigures) throws {
        let tasks = sizes.artifactTasks, files = sizes.artifactFiles, bytes = sizes.artifactFileBytes
        context.progress.begin("workspace: \(tasks) tasks x \(files) artifacts of \(bytes >> 10) KiB", total: tasks)
        let script = "mkdir out && i=0; while [ $i -lt \(files) ]; do head -c \(bytes) /dev/urandom > out/f$i || exit 1; i=$((i + 1)); done"
        var spec = TaskSpec(command: ["/bin/sh", "-c", script])
        spec.artifacts = ["out/*"]
        spec.labels = ["bench": "workspace"]
        let (run, infos) = try context.runBatch(Array(repeating: spec, count: tasks), label: "artifacts: \(tasks) tasks x \(files) files",
                                                concurrency: min(tasks, context.cluster.totalSlots), sleepSeconds: nil,
                                                timeoutSeconds: timeout)
        report.runs.append(run)
        f.artifactTasks = tasks
        f.artifactFilesPerTask = files
        f.artifactFileBytes = Int64(bytes)
        f.collect = Percentiles(infos.filter { $0.state == .succeeded }.compactMap { $0.metrics.collectMs.map(Double.init) })
        f.artifactsExpected = tasks * files
        f.artifactsCollected = infos.reduce(0) { $0 + ($1.artifacts ?? []).filter { $0.size == Int64(bytes) }.count }
        if run.failed > 0 || f.artifactsCollected != f.artifactsExpected {
            report.passed = false
            let skipped = infos.flatMap { $0.skippedArtifacts ?? [] }.first.map { "\($0.path): \($0.reason)" } ?? Self.firstReason(infos)
            report.notes.append("artifacts: \(f.artifactsCollected ?? 0) of \(f.artifactsExpected ?? 0) collected, \(run.failed) task(s) failed: \(skipped)")
        }
        context.progress.end("collect p50 \(ReportFormat.number(f.collect?.p50)) ms, p99 \(ReportFormat.number(f.collect?.p99)) ms, "
            + "\(f.artifactsCollected ?? 0)/\(f.artifactsExpected ?? 0) artifacts")
    }

    static func firstReason(_ infos: [TaskInfo]) -> String {
        guard let bad = infos.first(where: { $0.state != .succeeded }) else { return "none" }
        return "\(bad.state.rawValue): \(bad.reason ?? "no reason")"
    }
}
