import Foundation
import Logging
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A restarted worker's recovery from what its previous process left in the run journal.
extension RunJournal {
    static let killedReason = "worker restarted while the task ran; its processes were killed"
    static let goneReason = "worker restarted while the task ran; its processes had already ended (outcome unknown)"

    /// What a previous worker process on this data dir left: results it had not delivered
    /// come back as they were; runs it had going are ended here, their process groups killed
    /// (SIGTERM, SIGKILL after `killGraceMs`) if they are still there, and reported `lost`
    /// (the scheduler runs them again, attempts permitting). Their results are recorded here
    /// like any other, so a second restart reports the same. Results in `resultsDir`
    /// (`{id}.json`, written by older workers) count as recorded ones. Blocks until the
    /// groups are gone. Returns the results to deliver, oldest first. `wall` dates the results
    /// made here. Nothing in the journal is a monotonic reading (those restart with a boot): its
    /// `startedAt` is a wall-clock date, a run is told apart by boot id and process start time.
    func recover(resultsDir: String, logsDir: String, killGraceMs: UInt64, wall: () -> Int64, logger: Logger) -> [TaskResult] {
        let bootId = ProcessTable.bootId()
        var results: [TaskResult] = []
        var interrupted: [Entry] = []
        let live = live()
        for entry in Self.ordered(live.entries) {
            if let result = live.results[entry.id], result.run == entry.run {
                results.append(result)
            } else if let data = FileManager.default.contents(atPath: "\(resultsDir)/\(entry.id).json"),
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
                                    startedAt: entry.startedAt, finishedAt: wall())
            // In the task's own log (it was `ID.log`, a file nothing reads, before this path was shared).
            let logPath = TaskLog.path(logsDir: logsDir, id: entry.id)
            let ended = Self.logEndsWithResult(logPath)
            if let log = try? TaskLog(path: logPath) {
                log.lifecycle(ended ? Self.unrecordedEndNote : "result: lost (\(reason))", at: result.finishedAt)
                log.close()
            }
            do { try finished(result, json: WorkerAgent.resultJSON(result)) } catch {
                logger.error("cannot record result of \(entry.id): \(error)")
            }
            logger.notice("task \(entry.id) attempt \(entry.attempt): \(reason)")
            results.append(result)
        }
        return results
    }

    /// What a restart notes in a log that already ends with its run's result line: the run
    /// had ended, and the journal lost its record (a full disk refused the result and the
    /// acknowledgement). "result: lost" there would read as the run's outcome; the scheduler
    /// keeps the result it was sent.
    static let unrecordedEndNote = "worker restarted: its run journal had no record of the result above (a full disk?); reported lost, which the scheduler ignores if it has that result"

    /// Whether the last line of the log at `path` is a run's result (`TaskRunner.closeLog`).
    static func logEndsWithResult(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        let count = Int(min(info.st_size, 4096))
        var tail = [UInt8](repeating: 0, count: count)
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(info.st_size) - off_t(count)) }
        guard n == count, let last = tail.split(separator: 0x0A).last else { return false }
        return String(decoding: last, as: UTF8.self).contains(" swarm  result: ")
    }

    /// Whether anything of the entry's process group still runs, and it is that run's group
    /// (not a later process that got the same pid).
    func isAlive(_ entry: Entry, bootId: String) -> Bool {
        guard entry.pid > 0, entry.bootId == bootId else { return false }
        if let leader = ProcessTable.stat(entry.pid), !leader.isGone {
            guard leader.processGroup == entry.processGroup else { return false }
            if entry.processStartTime != 0 { return leader.startTime == entry.processStartTime }
            guard let from = entry.spawnFromBootMs, let to = entry.spawnToBootMs else { return false }
            return ProcessTable.startedWithin(leader, fromMs: from, toMs: to)
        }
        // The leader is gone; while any member of its group lives, no new process can take
        // the group's number as its pid, so members found are the run's own.
        return !ProcessTable.members(ofGroup: entry.processGroup).isEmpty
    }
}
