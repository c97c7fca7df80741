import Foundation
import Logging
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What a worker keeps on disk about each run until the scheduler has acknowledged its
/// result: `{dataDir}/runs/{id}.json`, written when the run's process has started (or when a
/// run without one ended), removed on the scheduler's `resultAck`. A worker restarted on the
/// same data dir reads it to learn what its previous process left behind (`recover`).
/// Entries are small and written atomically (temp file + rename), not fsynced: they guard
/// against the worker process dying, and after a machine crash the runs are gone anyway.
public struct RunJournal: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var id: String
        public var attempt: Int
        /// The task's process, leader of its own process group (pgid == pid); 0: none started.
        public var pid: Int32
        public var processGroup: Int32
        /// Field 22 of `/proc/PID/stat`: with `bootId`, tells this process from a later one
        /// that got the same pid.
        public var processStartTime: UInt64
        public var bootId: String
        public var startedAt: Int64?

        public var run: RunRef { RunRef(id: id, attempt: attempt) }
    }

    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    func path(_ id: String) -> String { "\(directory)/\(id).json" }

    /// Records a run whose process `pid` has just been spawned.
    func started(_ run: RunRef, pid: Int32, startedAt: Int64) throws(FileError) {
        let stat = ProcessTable.stat(pid)
        try write(Entry(id: run.id, attempt: run.attempt, pid: pid, processGroup: pid,
                        processStartTime: stat?.startTime ?? 0, bootId: ProcessTable.bootId(), startedAt: startedAt))
    }

    /// Records a finished run that never got a process (its spawn failed), so its result is
    /// delivered even across a worker restart; runs with a process are recorded already.
    func finished(_ result: TaskResult) throws(FileError) {
        guard result.pid == nil else { return }
        try write(Entry(id: result.id, attempt: result.attempt, pid: 0, processGroup: 0, processStartTime: 0,
                        bootId: ProcessTable.bootId(), startedAt: result.startedAt))
    }

    /// The scheduler has the run's result: forget the run (unless the entry is another attempt's).
    func acknowledged(_ run: RunRef) {
        guard entry(run.id)?.attempt == run.attempt else { return }
        unlink(path(run.id))
    }

    func entry(_ id: String) -> Entry? {
        guard let data = FileManager.default.contents(atPath: path(id)) else { return nil }
        return try? JSONDecoder().decode(Entry.self, from: data)
    }

    /// Every entry, oldest start first. Leftover temp files of an interrupted write go.
    func entries() -> [Entry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var entries: [Entry] = []
        for name in names {
            if name.contains(".json.tmp-") { unlink("\(directory)/\(name)"); continue }
            guard name.hasSuffix(".json"), let entry = entry(String(name.dropLast(5))) else { continue }
            entries.append(entry)
        }
        return entries.sorted { ($0.startedAt ?? 0, $0.id) < ($1.startedAt ?? 0, $1.id) }
    }

    private func write(_ entry: Entry) throws(FileError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = Array((try? encoder.encode(entry)) ?? Data()) + [0x0A]
        try Files.writeAtomically(bytes, to: path(entry.id))
    }

    // MARK: Recovery

    static let killedReason = "worker restarted while the task ran; its processes were killed"
    static let goneReason = "worker restarted while the task ran; its processes had already ended (outcome unknown)"

    /// What a previous worker process on this data dir left: results it had not delivered
    /// come back as they were; runs it had going are ended here, their process groups killed
    /// (SIGTERM, SIGKILL after `killGraceMs`) if they are still there, and reported `lost`
    /// (the scheduler runs them again, attempts permitting). Their results are written to
    /// `resultsDir` like any other, so a second restart reports the same. Blocks until the
    /// groups are gone. Returns the results to deliver, oldest first.
    func recover(resultsDir: String, logsDir: String, killGraceMs: UInt64, now: () -> Int64, logger: Logger) -> [TaskResult] {
        let bootId = ProcessTable.bootId()
        var results: [TaskResult] = []
        var interrupted: [Entry] = []
        for entry in entries() {
            if let data = FileManager.default.contents(atPath: "\(resultsDir)/\(entry.id).json"),
               let result = try? JSONDecoder().decode(TaskResult.self, from: data), result.run == entry.run {
                results.append(result)
            } else {
                interrupted.append(entry)
            }
        }
        let alive = interrupted.filter { isAlive($0, bootId: bootId) }
        if !alive.isEmpty {
            logger.warning("\(alive.count) task(s) of the previous worker process are still running; killing their process groups")
            ProcessTable.killGroups(alive.map(\.processGroup), graceMs: killGraceMs)
        }
        let aliveRuns = Set(alive.map(\.run))
        for entry in interrupted {
            let reason = aliveRuns.contains(entry.run) ? Self.killedReason : Self.goneReason
            let result = TaskResult(id: entry.id, state: .lost, exitCode: nil, signal: nil, reason: reason, output: "",
                                    pid: entry.pid > 0 ? Int(entry.pid) : nil, attempt: entry.attempt,
                                    startedAt: entry.startedAt, finishedAt: now())
            if let log = try? TaskLog(path: "\(logsDir)/\(entry.id).log") {
                log.lifecycle("result: lost (\(reason))", nowMs: result.finishedAt)
                log.close()
            }
            do { try Files.writeAtomically(WorkerAgent.resultJSON(result), to: "\(resultsDir)/\(entry.id).json") } catch {
                logger.error("cannot write result of \(entry.id): \(error)")
            }
            logger.notice("task \(entry.id) attempt \(entry.attempt): \(reason)")
            results.append(result)
        }
        return results
    }

    /// Whether anything of the entry's process group still runs, and it is that run's group
    /// (not a later process that got the same pid).
    func isAlive(_ entry: Entry, bootId: String) -> Bool {
        guard entry.pid > 0, entry.bootId == bootId else { return false }
        if let leader = ProcessTable.stat(entry.pid), !leader.isGone {
            return leader.startTime == entry.processStartTime && leader.processGroup == entry.processGroup
        }
        // The leader is gone; while any member of its group lives, no new process can take
        // the group's number as its pid, so members found are the run's own.
        return !ProcessTable.members(ofGroup: entry.processGroup).isEmpty
    }
}
