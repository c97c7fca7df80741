import Dispatch
import SwarmProtocol
import SwarmTransport

/// The scheduler's durable state: opening and restoring it, saving each turn's changes, and
/// holding back the turn's messages until they are saved.
extension SchedulerServer {
    /// Opens `config.stateDir` and rebuilds the state saved there. Runs before the listener
    /// binds, so no worker or client sees an empty scheduler first.
    func openState() throws(TaskStoreError) {
        let startMs = clocks.monotonic()
        // Commits are made durable off the loop thread (`commitTurn`).
        let store = try TaskStore(directory: config.stateDir, syncOnCommit: false)
        let saved: (tasks: [TaskSnapshot], lastSequence: UInt64)
        do { saved = try store.loadRestart(recentFinished: config.retention.inMemoryFinished) } catch {
            store.close()
            throw error
        }
        self.store = store
        commits = GroupCommit(durable: store.changeCount)
        let ancestors = Self.archivedAncestors(of: saved.tasks, in: store)
        let readMs = clocks.monotonic() - startMs
        state = ClusterState(settings: settings, restoring: saved.tasks + ancestors, lastSequence: saved.lastSequence,
                             nowMs: clocks.monotonic(), at: clocks.wall(),
                             ended: Self.endedDependencies(of: saved.tasks, in: store))
        state.restoreDrained(store.loadDrained())
        let resumed = state.resumeTreeCancels(store.loadTreeCancels(), at: clocks.wall())
        treeCancels += resumed.map { TreeCancelRun(session: nil, requestId: 0, job: $0) }
        for job in resumed {
            logger.notice("resuming the cancel of the tree of task \(PeerText.safe(job.root)): \(job.cancelled) queued tasks of it still to cancel")
        }
        guard !saved.tasks.isEmpty else {
            logger.info("state in \(store.path) (new, empty, or only old finished tasks)")
            return
        }
        var counts: [TaskState: Int] = [:]
        for task in saved.tasks { counts[task.info.state, default: 0] += 1 }
        let running = counts[.running] ?? 0
        let workers = Set(saved.tasks.filter { $0.info.state == .running }.compactMap(\.info.node)).count
        let ended = saved.tasks.count - (counts[.queued] ?? 0) - running
        let awaiting = running == 0 ? "" : " (kept if their workers report them within \(config.settings.lostAfterMs) ms)"
        logger.notice("restored \(saved.tasks.count) tasks from \(store.path) in \(clocks.monotonic() - startMs) ms (\(readMs) ms reading them): \(counts[.queued] ?? 0) queued, \(running) running on \(workers) worker(s)\(awaiting), \(ended) recently ended (older ones are read from the database when asked for)")
    }

    /// Finished tasks that left memory, as the store has them (none without a store).
    var archive: TaskArchive { store?.archive ?? .none }

    /// The finished ancestors (through `parent`) of the tasks in flight that a restart did not
    /// read back: restored with them, so the children index links a running grandchild under
    /// its finished parents again and `cancel --recursive` of the root still reaches it. At
    /// most `maxRestoredAncestors` (a chain is at most `ClusterState.maxSubtreeDepth` deep).
    static func archivedAncestors(of saved: [TaskSnapshot], in store: TaskStore) -> [TaskSnapshot] {
        var known = Set(saved.lazy.map(\.info.id))
        var wanted = saved.compactMap { $0.info.state.isTerminal ? nil : $0.info.parent }.filter { !known.contains($0) }
        let archive = store.archive
        var found: [TaskSnapshot] = []
        while let id = wanted.popLast(), found.count < maxRestoredAncestors {
            guard known.insert(id).inserted, let task = archive.task(id) else { continue }
            found.append(task)
            if let parent = task.info.parent, !known.contains(parent) { wanted.append(parent) }
        }
        return found
    }

    /// Bounds the ancestors a restart reads back beside the tasks in flight.
    static let maxRestoredAncestors = 10_000

    /// The final states the store holds of dependencies that queued tasks of `saved` name but
    /// `saved` lacks (ClusterState+Dependencies.swift): finished tasks a restart did not read
    /// back (it reads the tasks in flight and the recent finished ones only).
    static func endedDependencies(of saved: [TaskSnapshot], in store: TaskStore) -> [String: TaskState] {
        let held = Set(saved.lazy.map(\.info.id))
        var ended: [String: TaskState] = [:]
        for task in saved where task.info.state == .queued {
            for dependency in task.spec.dependencies where !held.contains(dependency.id) && ended[dependency.id] == nil {
                if let state = store.endedState(of: dependency.id) { ended[dependency.id] = state }
            }
        }
        return ended
    }

    /// Saves the changes made since the last save, in one transaction. If that fails the
    /// scheduler stops (`onFatal`, else a critical log line): what it would have acknowledged
    /// is not on disk, and a restart continues from what is. A full disk is no exception (the
    /// turn's replies, `submitted` among them, are never sent), except for the logs of ended
    /// tasks: those are left out when only they do not fit (`TaskStore.save`). Returns
    /// whether the changes are saved.
    func persist() -> Bool {
        var changes = state.takeChanges()
        GapTrace.mark("s_taken", "\(changes.tasks.count)")
        changes.logs = pendingLogs
        pendingLogs = [:]
        if !changes.runs.isEmpty { metrics.runs(changes.runs) { state.tasks[$0] } }
        guard let store, !changes.isEmpty else { return true }
        do {
            let started = ContinuousClock.now
            let dropped = try store.save(changes, at: clocks.wall())
            GapTrace.mark("s_written")
            if store.syncOnCommit { metrics.commit(ContinuousClock.now - started) } else {
                unsyncedWriteTime += ContinuousClock.now - started
            }
            if !dropped.isEmpty { logger.warning("\(StateSaveFailure.droppedLogsLine(dropped, directory: store.directory))") }
            checkpointIfDue(store)
            return true
        } catch {
            stateLost(error)
            return false
        }
    }

    /// The state cannot be saved: the scheduler stops, sending nothing it holds (`onFatal`,
    /// else a critical log line); a restart continues from what is on disk.
    private func stateLost(_ error: TaskStoreError) {
        let line = StateSaveFailure.stopLine(error)
        // One line for the operator: whoever handles `onFatal` prints it as the process ends.
        if onFatal == nil { logger.critical("\(line)") }
        commits.dropAll()
        store?.close()
        self.store = nil
        stop()
        onFatal?(line)
    }

    /// Checkpoints the WAL when one is due (TaskStore+Sync.swift: commits do not): on another
    /// thread when none runs there; here, on the loop, once the WAL is past
    /// `TaskStore.inlineCheckpointFrames` (background checkpoints copy only what was written
    /// before they started, and the WAL starts over only after one that copied all: a loop
    /// writing all along could keep that from ever happening), or without such a thread. Past
    /// that cap with a background checkpoint still running, the loop waits for it first (two
    /// cannot run at once: the second would fail, busy), so the WAL never grows much past the
    /// cap: with 2,000 frames and no wait, the soak's database bound failed (the WAL grew by
    /// the frames written while a slow background checkpoint ran). A failed checkpoint loses
    /// nothing (the WAL keeps every frame): logged, tried again later.
    func checkpointIfDue(_ store: TaskStore) {
        guard store.checkpointDue else { return }
        if let running = checkpointDone {
            guard store.inlineCheckpointDue else { return }
            GapTrace.mark("s_ckpt_wait", "\(store.walFrames)")
            running.wait()
            checkpointDone = nil
        }
        guard let jobs = blobState.jobs, !store.inlineCheckpointDue else {
            GapTrace.mark("s_ckpt_here", "\(store.walFrames)")
            do { try store.checkpointHere() } catch { logger.warning("checkpoint of \(store.path) failed (retried later): \(error)") }
            return
        }
        let done = DispatchSemaphore(value: 0)
        checkpointDone = done
        GapTrace.mark("s_ckpt_start", "\(store.walFrames)")
        let job = store.checkpointJob()
        jobs.run({ () -> TaskStoreError? in
            defer { done.signal() }
            return job()
        }, then: { [weak self] failure in
            GapTrace.mark("s_ckpt_end")
            guard let self else { return }
            if self.checkpointDone === done { self.checkpointDone = nil }
            if let failure { self.logger.warning("checkpoint of \(store.path) failed (retried later): \(failure)") }
        })
    }

    // MARK: Group commit

    /// Syncs under way at once (`GroupCommit.maxSyncs`), after the first has ended: a turn
    /// written while one runs starts its own at once (a DAG's layer released while the
    /// previous results' sync ran waited for that one, then for its own: two syncs in the gap).
    static let maxSyncs = 2

    /// Placements a turn makes at most (`placementRound`); the rest are placed in the next
    /// loop iterations, a slice each, after a poll.
    static let placementSlice = 8

    /// A placement round, its directives carried out: at most `placementSlice` placements.
    /// Returns whether it stopped at that limit (more may be placeable now): the caller goes on
    /// in the next loop iteration, after a poll (`continueAfterPoll`), and ends this turn
    /// first: its changes are saved and handed to group commit, so the first of a burst (a
    /// layer of a DAG released by its last dependency's end, 100 tasks) leaves one sync after
    /// its release. Were the rest placed in the same turn (about 30 µs of CPU each, `swarm
    /// bench dag`), the sync's end (a message from the sync thread, read by the poll) could
    /// not release it before the whole burst was placed and written; now each slice's sync
    /// runs while the next slice is placed, and a sync's end is read between slices. The same
    /// in memory: the first slice's assignments leave at the end of its turn.
    func placementRound() -> Bool {
        let directives = state.schedule(nowMs: clocks.monotonic(), at: clocks.wall(), limit: Self.placementSlice)
        let placed = directives.reduce(0) { count, directive in
            if case .assign = directive { return count + 1 }
            return count
        }
        execute(directives)
        return placed == Self.placementSlice
    }

    /// A turn written to the store: the turn's messages stay here until group commit says the
    /// store has them on disk (`GroupCommit`). A turn without a store (in memory) or whose
    /// writes are durable already, behind no other, leaves at once.
    func commitTurn(_ turn: HeldTurn) {
        guard !turn.isEmpty else { return startSync() }
        send(commits.hold(turn, written: store?.changeCount ?? 0))
        startSync()
    }

    /// Starts a sync of everything written so far when one is needed and none runs: on the
    /// blob jobs' threads (`BackgroundJobs`), or here when they could not be made. Its end
    /// releases the turns it covers, then starts the next one for what was written meanwhile.
    private func startSync() {
        guard let store, !store.syncOnCommit, let count = commits.startSync(written: store.changeCount) else { return }
        let plainJob = store.syncJob()
        GapTrace.mark("s_sync_start", "\(count)")
        let job: @Sendable () -> TaskStoreError? = {
            GapTrace.mark("s_fsync_begin", "\(count)")
            let result = plainJob()
            GapTrace.mark("s_fsync_end", "\(count)")
            return result
        }
        let writes = unsyncedWriteTime
        unsyncedWriteTime = .zero
        let started = ContinuousClock.now
        let finish: (TaskStoreError?) -> Void = { [weak self] failure in
            guard let self, self.store === store else { return }
            GapTrace.mark("s_sync_seen", "\(count)")
            if let failure { return self.stateLost(failure) }
            self.metrics.commit(writes + (ContinuousClock.now - started))
            // The first sync also made the WAL's name durable (`syncJob`): only from then on may
            // a second run beside one under way (it could end first, before that name is on disk).
            self.commits.maxSyncs = Self.maxSyncs
            self.send(self.commits.synced(count))
            self.startSync()
        }
        guard let jobs = blobState.jobs else { return finish(job()) }
        jobs.run(job, then: finish)
    }

    /// Queues `message` for the end of this loop turn (after its changes are saved).
    func deliver(_ connection: FramedConnection, _ message: Message) {
        outgoing.append((connection, message))
        endOfTurnSoon()
    }
}

/// One loop turn's messages and the connections it closes once they are sent: held until the
/// turn's changes are durable.
struct HeldTurn {
    var messages: [(FramedConnection, Message)]
    var closing: [(FramedConnection, String)]

    var isEmpty: Bool { messages.isEmpty && closing.isEmpty }
}

/// What the scheduler says when its state cannot be saved: pure text, tested on its own.
enum StateSaveFailure {
    /// The one line a scheduler that stops for `error` leaves: the state directory, what went
    /// wrong ("no space left on device" for a full disk), and that nothing unsaved was
    /// acknowledged, so a restart on the same directory loses nothing it acknowledged.
    static func stopLine(_ error: TaskStoreError) -> String {
        let after = "nothing it did not save was acknowledged, and a restart on the same state directory continues from what it saved"
        if case .noSpace = error {
            return "\(error): the scheduler stopped, as it cannot save its state; \(after) (make room first)"
        }
        return "cannot save the scheduler's state (\(error)): the scheduler stopped; \(after)"
    }

    /// The warning when the logs of ended tasks were left out of a save for lack of room.
    static func droppedLogsLine(_ ids: [String], directory: String) -> String {
        let shown = ids.prefix(5).map { PeerText.safe($0) }.joined(separator: ", ") + (ids.count > 5 ? ", ..." : "")
        return "no space left on device in state directory \(directory): the stored logs of \(ids.count) ended task(s) were not saved (\(shown)); their state and output tail were, and their workers keep the whole logs"
    }
}
