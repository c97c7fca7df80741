import SwarmProtocol
import SwarmUV

/// How a run's end leaves the worker: its result first, its files after.
///
/// Runs of one layer of work exit together. Each result is sent right before the loop next
/// polls (`deliverFinished`, all of that iteration's results in one write); the files of each
/// run (the journal's result record, the log's last line and close) are written after, a slice of about half a millisecond per loop iteration
/// (`writeFinishedFiles`, driven by an idle handle), so assignments the results released
/// are read and started in between rather than after every file, and the heartbeat goes out
/// however many runs end together. The scheduler's `resultAck`s are handled in the same
/// slices, oldest first: thousands arrive in one read when a layer of runs ends.
///
/// What keeps the guarantee that a result is on the worker's disk before the scheduler's
/// acknowledgement of it is handled: a run's files are written at once when anything needs
/// them (`flushFinishedFiles`): the handling of its `resultAck` (before the journal's ack
/// record and retention), a new assignment of the same task id, a read of its log, and the
/// worker's stop. A crash of the worker between the send and the files leaves the run in the journal
/// without a result record: the restarted worker reports it `lost`, which the scheduler
/// acknowledges and ignores when the result came through (the run is no longer current there,
/// `ClusterState.finish`) and requeues otherwise, as a crash before the files always did.
extension WorkerAgent {
    /// Keeps `result` until the scheduler acknowledges it: in the outbox (memory), and on disk
    /// (the run journal's result record) for a restart. If the disk refuses it (full), the result is
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
    /// At most `deliverSliceMicros` of them per iteration (at least one; all when stopping):
    /// a layer of thousands of runs encoded and sent at once held the loop for seconds on a
    /// loaded machine. The rest go in the next iterations (the idle handle keeps the loop from
    /// waiting meanwhile: what was delivered has files to write).
    func deliverFinished() {
        let start = monotonicMicros()
        var count = 0
        while count < finishing.count, stopping || count == 0 || monotonicMicros() - start < config.deliverSliceMicros {
            deliver(finishing[count])
            GapTrace.mark("w_deliver", finishing[count].result.id)
            count += 1
        }
        finishing.removeFirst(count)
        if finishing.isEmpty { finisher?.stop() }
        guard count > 0 else { return }
        // A held assignment takes a freed slot now, its `taskStarted` after the results that
        // freed it (the scheduler never counts more running than slots).
        startHeld()
        connection?.flush()
        GapTrace.mark("w_flushed", "\(count)")
        armFinishedFiles()
    }

    private func deliver(_ entry: (result: TaskResult, runner: TaskRunner?)) {
        let json = Self.resultJSON(entry.result)
        // Sent now if registered, else after the next registration; resent until acknowledged.
        feed(.finished(entry.result), resultJSON: json.dropLast())
        // An earlier run of the id still unwritten: its files go first (never replaced unwritten).
        if unwritten.contains(entry.result.id) { flushFinishedFiles(entry.result.id) }
        unwritten.append(entry.result.id, UnwrittenRun(result: entry.result, json: json, runner: entry.runner))
    }

    /// The scheduler has `run`'s result: handled in the slices too (`writeFinishedFiles`), in
    /// order, so that thousands of acknowledgements in one read do not hold the loop.
    func acknowledgedLater(_ run: RunRef) {
        pendingAcks.append(run, ())
        armFinishedFiles()
    }

    /// What a `resultAck` does: the run's files are on disk before the journal forgets it.
    func acknowledgeNow(_ run: RunRef) {
        pendingAcks.remove(run)
        flushFinishedFiles(run.id)
        journal.acknowledged(run)
        releaseWorkspace(run)
        retainAcknowledged(run.id)
    }

    private func armFinishedFiles() {
        guard !unwritten.isEmpty || !pendingAcks.isEmpty else {
            filesIdle?.stop()
            return finishStopIfIdle()
        }
        // Stopping: nothing to interleave with any more.
        if stopping { return flushFinishedFiles() }
        if filesIdle == nil { filesIdle = try? UVIdle(loop: loop) }
        guard let filesIdle else { return flushFinishedFiles() }
        // Once per loop iteration, the poll not waiting meanwhile (a 0 ms timer restarted from
        // its own callback runs again before any poll in libuv 1.44: no slicing at all).
        filesIdle.start { [weak self] in self?.writeFinishedFiles() }
    }

    /// One slice of what is left, oldest first (at least one thing): acknowledgements, then
    /// files still unwritten.
    func writeFinishedFiles() {
        let start = monotonicMicros()
        var done = 0
        while done == 0 || monotonicMicros() - start < config.finishedFilesSliceMicros {
            if let ack = pendingAcks.popFirst() {
                acknowledgeNow(ack.key)
            } else if let run = unwritten.popFirst() {
                save(run.value)
            } else {
                break
            }
            done += 1
        }
        GapTrace.mark("w_files", "\(done)")
        armFinishedFiles()
    }

    /// Writes the files of the runs still unwritten at once and handles the acknowledgements
    /// waiting (`id` nil: all of them, as the worker stops), or writes those of task `id` only.
    /// Call before anything reads or replaces them.
    func flushFinishedFiles(_ id: String? = nil) {
        guard let id else {
            while let ack = pendingAcks.popFirst() { acknowledgeNow(ack.key) }
            while let run = unwritten.popFirst() { save(run.value) }
            filesIdle?.stop()
            return finishStopIfIdle()
        }
        if let run = unwritten.remove(id) { save(run) }
    }

    private func save(_ run: UnwrittenRun) {
        let result = run.result
        run.runner?.closeLog(result)
        // One append to the run journal (no file per result: see `RunJournal`).
        do { try journal.finished(result, json: run.json) } catch {
            logger.error("result of task \(result.id) attempt \(result.attempt) (\(result.state.rawValue)) is kept in memory only until the scheduler acknowledges it: \(error); if this worker stops first, the run counts as lost")
        }
    }
}

/// A run whose result is sent and whose files are not written yet.
struct UnwrittenRun {
    var result: TaskResult
    /// The result's JSON line (the frame carried it without the newline; the journal's result
    /// record wraps it).
    var json: [UInt8]
    var runner: TaskRunner?
}
