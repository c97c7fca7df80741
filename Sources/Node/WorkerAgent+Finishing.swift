import SwarmProtocol
import SwarmUV

/// How a run's end leaves the worker: its result first, its files after.
///
/// Runs of one layer of work exit together. Each result is sent right before the loop next
/// polls (`deliverFinished`, all of that iteration's results in one write); the files of each
/// run (result file, journal record, the log's last line and close, about 0.1-0.4 ms a run on
/// ext4) are written after, a slice of about half a millisecond per loop iteration
/// (`writeFinishedFiles`), so assignments the results released are read and started in
/// between rather than after every file.
///
/// What keeps the guarantee that a result is on the worker's disk before the scheduler's
/// acknowledgement of it is handled: a run's files are written at once when anything needs
/// them (`flushFinishedFiles`): its `resultAck` (and through it the journal's ack record and
/// retention), a new assignment of the same task id, a read of its log, and the worker's
/// stop. A crash of the worker between the send and the files leaves the run in the journal
/// without a result file: the restarted worker reports it `lost`, which the scheduler
/// acknowledges and ignores when the result came through (the run is no longer current there,
/// `ClusterState.finish`) and requeues otherwise, as a crash before the files always did.
extension WorkerAgent {
    /// Keeps `result` until the scheduler acknowledges it: in the outbox (memory), and on disk
    /// (results dir, run journal) for a restart. If the disk refuses it (full), the result is
    /// still sent from memory, and the worker says so: should it stop before the scheduler
    /// has the result, the run counts as lost there (from its journal record, or because the
    /// worker no longer reports it) and runs again, attempts permitting. Never dropped silently.
    /// `runner`: the run's, whose log is ended and closed with the files.
    func finished(_ result: TaskResult, runner: TaskRunner? = nil) {
        finishing.append((result, runner))
        if finisher == nil { finisher = try? UVPrepare(loop: loop) }
        guard let finisher else { return deliverFinished() }
        finisher.start { [weak self] in self?.deliverFinished() }
    }

    /// The results of the runs that ended since the loop last polled, sent in one write; their
    /// files follow (`writeFinishedFiles`). Runs in the prepare phase, before the poll.
    func deliverFinished() {
        finisher?.stop()
        let batch = finishing
        finishing = []
        guard !batch.isEmpty else { return }
        for entry in batch {
            let json = Self.resultJSON(entry.result)
            // Sent now if registered, else after the next registration; resent until acknowledged.
            feed(.finished(entry.result), resultJSON: json.dropLast())
            unwritten.append(UnwrittenRun(result: entry.result, json: json, runner: entry.runner))
        }
        connection?.flush()
        armFinishedFiles()
    }

    private func armFinishedFiles() {
        guard !unwritten.isEmpty else { return finishStopIfIdle() }
        // Stopping: nothing to interleave with any more.
        if stopping { return flushFinishedFiles() }
        if filesTimer == nil { filesTimer = try? UVTimer(loop: loop) }
        guard let filesTimer else { return flushFinishedFiles() }
        // Due at once: the loop polls without waiting, then comes back for the next slice.
        filesTimer.start(afterMs: 0) { [weak self] in self?.writeFinishedFiles() }
    }

    /// One slice of the files still to write, oldest first (at least one run).
    func writeFinishedFiles() {
        let start = monotonicMicros()
        var written = 0
        while written < unwritten.count, written == 0 || monotonicMicros() - start < config.finishedFilesSliceMicros {
            save(unwritten[written])
            written += 1
        }
        unwritten.removeFirst(written)
        armFinishedFiles()
    }

    /// Writes the files of the runs still unwritten at once: all of them, or those of task
    /// `id` only. Call before anything reads or replaces them.
    func flushFinishedFiles(_ id: String? = nil) {
        guard !unwritten.isEmpty else { return }
        guard let id else {
            let all = unwritten
            unwritten = []
            for run in all { save(run) }
            return finishStopIfIdle()
        }
        guard unwritten.contains(where: { $0.result.id == id }) else { return }
        for run in unwritten where run.result.id == id { save(run) }
        unwritten.removeAll { $0.result.id == id }
    }

    private func save(_ run: UnwrittenRun) {
        let result = run.result
        run.runner?.closeLog(result)
        var unsaved: [String] = []
        do { try Files.writeAtomically(run.json, to: "\(resultsDir)/\(result.id).json") } catch { unsaved.append("\(error)") }
        do { try journal.finished(result) } catch { unsaved.append("\(error)") }
        if !unsaved.isEmpty {
            logger.error("result of task \(result.id) attempt \(result.attempt) (\(result.state.rawValue)) is kept in memory only until the scheduler acknowledges it: \(unsaved.joined(separator: "; ")); if this worker stops first, the run counts as lost")
        }
    }
}

/// A run whose result is sent and whose files are not written yet.
struct UnwrittenRun {
    var result: TaskResult
    /// The result file's bytes (the frame carried them without the newline).
    var json: [UInt8]
    var runner: TaskRunner?
}
