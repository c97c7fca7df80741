import Foundation
import SwarmProtocol
import SwarmUV

/// The shell around `WorkerRetention`: what a worker keeps of finished tasks, what it removes.
/// The decisions are the core's; here they are fed and carried out.
///
/// - At start, the results a previous worker process left (acknowledged: no journal entry)
///   are measured off the loop and kept, their age from their files' times.
/// - At each `resultAck`, the task is measured off the loop (in batches) and kept.
/// - Due tasks lose their files on the loop (unlinks and one rename each); the renamed work
///   directories are deleted off the loop. A task running here again is never touched.
struct RetentionShell {
    var core: WorkerRetention
    /// Acknowledged, not measured yet: id and when (monotonic ms).
    var pending: [(id: String, at: UInt64)] = []
    var measuring = false
    /// When the last measuring pass started (loop ms), and whether the next one is armed.
    var lastMeasureMs: UInt64?
    var measureArmed = false
    /// Measuring passes started (each a thread), for tests.
    var measurePasses = 0
    /// Measuring passes start at least this far apart: each is a thread, and one a task (a
    /// busy worker's acknowledgements come one or two at a time) was a thread created per
    /// 1.7 tasks; 100 ms later the passes carry every acknowledgement of those 100 ms.
    static let measureGapMs: UInt64 = 100
    var removing = false
    var serial = 0
    /// Whole passes: removed tasks and bytes, for logs and tests.
    var removedTasks = 0
    var removedBytes: Int64 = 0
    /// Trees the trash could not delete at the last pass (reported when this changes).
    var trashLeft = 0

    init(limits: WorkerRetention.Limits) { core = WorkerRetention(limits: limits) }
}

extension WorkerAgent {
    var ownedDir: String { config.dataDir + "/owned" }
    /// Not a valid task id (`~`), so never a task's own directory.
    var trashDir: String { config.workRoot + "/.swarm~trash" }

    /// Whether the worker makes (and so may later remove) task `task`'s work directory: only
    /// `{workRoot}/{id}`, for a task without its own `workdir` or a repository, on a worker
    /// without a shared `workDir`, and only a directory that was not there before the task's
    /// first run here (a mark in `{dataDir}/owned` remembers it across restarts). Called as
    /// the task is accepted, before anything is written. In the default work root (inside the
    /// data dir) everything is the worker's.
    func claimWorkDir(_ task: TaskAssignment, workDir: String) {
        retention.core.resumed(task.id)
        // The default work root needs no marks (see `taskFiles`): no extra file per task.
        guard config.workRootDir != nil, task.spec.workdir == nil, task.spec.repo == nil, config.workDir == nil,
              workDir == "\(config.workRoot)/\(task.id)" else { return }
        let mark = "\(ownedDir)/\(task.id)"
        if FileManager.default.fileExists(atPath: mark) { return }
        var info = stat()
        if lstat(workDir, &info) == 0 { return }  // there before: someone else's
        try? Files.makeDirectories(ownedDir)
        _ = FileManager.default.createFile(atPath: mark, contents: nil)
    }

    /// The files of task `id` as this worker holds them.
    func taskFiles(_ id: String) -> TaskFiles {
        // `access`, not `FileManager.fileExists`: this runs on the loop for every acknowledged
        // task, and Foundation's call cost ten times the `stat` (1.75% of a worker's CPU).
        let mark = "\(ownedDir)/\(id)"
        var owned = access(mark, F_OK) == 0
        let dir = "\(config.workRoot)/\(id)"
        if !owned && config.workRootDir == nil && config.workDir == nil {
            // Made before marks existed, in the worker's own data dir; not a git worktree.
            owned = access(dir + "/.git", F_OK) != 0
        }
        return TaskFiles(id: id, log: TaskLog.path(logsDir: logsDir, id: id), result: "\(resultsDir)/\(id).json",
                         workDir: owned ? dir : nil, mark: mark)
    }

    /// The scheduler has task `id`'s result: it is kept from now, once measured.
    func retainAcknowledged(_ id: String) {
        retention.pending.append((id, retentionNow))
        measurePending()
    }

    private func measurePending() {
        guard !retention.measuring, !retention.pending.isEmpty else { return }
        let nowMs = loop.nowMs
        if let last = retention.lastMeasureMs, nowMs < last + RetentionShell.measureGapMs {
            return armMeasure(afterMs: last + RetentionShell.measureGapMs - nowMs)
        }
        retention.lastMeasureMs = nowMs
        retention.measuring = true
        retention.measurePasses += 1
        let batch = retention.pending.prefix(10_000)
        retention.pending.removeFirst(batch.count)
        let files = batch.map { taskFiles($0.id) }
        let times = batch.map(\.at)
        workspace.offLoop(loop, { files.map { $0.measure() } }) { [weak self] sizes in
            guard let self else { return }
            self.retention.measuring = false
            for (index, file) in files.enumerated() where !self.isActive(file.id) {
                self.retention.core.kept(file.id, bytes: sizes[index], sinceMs: times[index])
            }
            self.removeDueFiles()
            self.measurePending()
        }
    }

    /// The next measuring pass, once the gap since the last one is over.
    private func armMeasure(afterMs: UInt64) {
        guard !retention.measureArmed else { return }
        if measureTimer == nil { measureTimer = try? UVTimer(loop: loop) }
        guard let measureTimer else { return }  // none: the next acknowledgement tries again
        retention.measureArmed = true
        measureTimer.start(afterMs: afterMs) { [weak self] in
            guard let self else { return }
            self.retention.measureArmed = false
            self.measurePending()
        }
    }

    /// At start: the files of acknowledged tasks a previous worker process left (those the
    /// journal still lists are in the outbox and are kept once acknowledged), and any trash.
    func startRetention() {
        retentionTimer = try? UVTimer(loop: loop)
        let inJournal = Set(journal.entries().map(\.id))
        let files = leftTaskIds().subtracting(inJournal).sorted().map { taskFiles($0) }
        let trash = trashDir
        let wallNow = clocks.wall()
        workspace.offLoop(loop, { () -> ([String], [(Int64, Int64)]) in
            let left = TaskFiles.removeTrash(trash)
            return (left, files.map { file in
                let modified = file.modifiedMs ?? wallNow
                return (file.measure(), max(0, wallNow - modified))
            })
        }) { [weak self] answer in
            guard let self else { return }
            let (left, found) = answer
            self.reportTrashLeft(left)
            let now = self.retentionNow
            let order = found.indices.sorted { found[$0].1 > found[$1].1 }
            for index in order where !self.isActive(files[index].id) {
                let age = UInt64(found[index].1)
                self.retention.core.kept(files[index].id, bytes: found[index].0, sinceMs: now > age ? now - age : 0)
            }
            if !found.isEmpty {
                self.logger.info("keeping the files of \(found.count) finished task(s) a previous worker process left (retention: \(self.retentionText))")
            }
            self.removeDueFiles()
        }
    }

    /// Ids of the tasks whose files are in the data dir (or the work root): a log
    /// (`logs/ID.stream.txt`), a result of an older worker (`results/ID.json`), a mark of a work
    /// directory made in a configured work root (`owned/ID`), or a directory in the default
    /// work root. A task that printed nothing has no log, and results are in the journal
    /// (`RunJournal`): no one place lists every task any more.
    func leftTaskIds() -> Set<String> {
        func names(_ dir: String, suffix: String) -> [String] {
            let all = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return all.compactMap { name in
                guard name.hasSuffix(suffix) else { return nil }
                let id = String(name.dropLast(suffix.count))
                return TaskID.problem(with: id) == nil ? id : nil
            }
        }
        var ids = Set(names(logsDir, suffix: ".stream.txt"))
        ids.formUnion(names(resultsDir, suffix: ".json"))
        ids.formUnion(names(ownedDir, suffix: ""))
        if config.workRootDir == nil && config.workDir == nil {
            // Every directory in the default work root is a task's (`.swarm~trash` is no id).
            ids.formUnion(names(config.workRoot, suffix: "").filter { TaskFiles.isRealDirectory("\(config.workRoot)/\($0)") })
        }
        return ids
    }

    private var retentionNow: UInt64 { UInt64(max(0, clocks.monotonic())) }

    var retentionText: String {
        let limits = retention.core.limits
        return "\(Double(limits.maxAgeMs) / 3_600_000) h, \(Double(limits.maxBytes) / 1_073_741_824) GiB"
    }

    /// A run of `id` is here (running, preparing or collecting): its files are not touched.
    private func isActive(_ id: String) -> Bool {
        runners[id] != nil || workspace.tasks[id] != nil
    }

    /// Removes what is due now and arms the timer for the next one.
    func removeDueFiles() {
        guard !stopping else { return }
        let due = retention.core.due(nowMs: retentionNow)
        var moved = false
        for id in due where !isActive(id) {
            let files = taskFiles(id)
            retention.serial += 1
            files.discard(trash: trashDir, serial: retention.serial)
            moved = moved || files.workDir != nil
            retention.removedTasks += 1
        }
        if !due.isEmpty { logger.debug("removed the files of \(due.count) finished task(s) (retention: \(retentionText))") }
        if moved { emptyTrash() }
        armRetentionTimer()
    }

    private func emptyTrash() {
        guard !retention.removing else { return }
        retention.removing = true
        let trash = trashDir
        workspace.offLoop(loop, { TaskFiles.removeTrash(trash) }) { [weak self] left in
            guard let self else { return }
            self.retention.removing = false
            self.reportTrashLeft(left)
        }
    }

    /// Says (once per change) what the trash could not delete: it stays there, and counts
    /// against nothing, so the operator must know.
    func reportTrashLeft(_ left: [String]) {
        guard left.count != retention.trashLeft else { return }
        retention.trashLeft = left.count
        guard !left.isEmpty else { return }
        let names = left.prefix(5).map { PeerText.safe($0, limit: 100) }.joined(separator: ", ")
        logger.warning("could not delete \(left.count) finished task tree(s) in \(trashDir) (\(names)\(left.count > 5 ? ", …" : "")): immutable files? remove them by hand")
    }

    private func armRetentionTimer() {
        guard let timer = retentionTimer else { return }
        timer.stop()
        guard let next = retention.core.nextDueMs else { return }
        let now = retentionNow
        // At least a second apart: removals are batched, not one wake-up per task.
        let wait = max(1_000, next > now ? next - now : 0)
        timer.start(afterMs: wait) { [weak self] in self?.removeDueFiles() }
        timer.unref()
    }
}
