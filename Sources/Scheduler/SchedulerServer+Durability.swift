import SwarmProtocol
import SwarmTransport

/// The scheduler's durable state: opening and restoring it, saving each turn's changes, and
/// holding back the turn's messages until they are saved.
extension SchedulerServer {
    /// Opens `config.stateDir` and rebuilds the state saved there. Runs before the listener
    /// binds, so no worker or client sees an empty scheduler first.
    func openState() throws(TaskStoreError) {
        let startMs = clocks.monotonic()
        let store = try TaskStore(directory: config.stateDir)
        let saved: [TaskSnapshot]
        do { saved = try store.loadTasks() } catch {
            store.close()
            throw error
        }
        self.store = store
        state = ClusterState(settings: config.settings, restoring: saved, nowMs: clocks.monotonic(), at: clocks.wall())
        guard !saved.isEmpty else {
            logger.info("state in \(store.path) (new or empty)")
            return
        }
        var counts: [TaskState: Int] = [:]
        for task in saved { counts[task.info.state, default: 0] += 1 }
        let running = counts[.running] ?? 0
        let workers = Set(saved.filter { $0.info.state == .running }.compactMap(\.info.node)).count
        let ended = saved.count - (counts[.queued] ?? 0) - running
        let awaiting = running == 0 ? "" : " (kept if their workers report them within \(config.settings.lostAfterMs) ms)"
        logger.notice("restored \(saved.count) tasks from \(store.path) in \(clocks.monotonic() - startMs) ms: \(counts[.queued] ?? 0) queued, \(running) running on \(workers) worker(s)\(awaiting), \(ended) ended")
    }

    /// Saves the changes made since the last save, in one transaction. If that fails the
    /// scheduler stops (`onFatal`): what it would have acknowledged is not on disk, and a
    /// restart continues from what is. Returns whether the changes are saved.
    func persist() -> Bool {
        var changes = state.takeChanges()
        changes.logs = pendingLogs
        pendingLogs = [:]
        guard let store, !changes.isEmpty else { return true }
        do {
            try store.save(changes, at: clocks.wall())
            return true
        } catch {
            logger.critical("cannot save the scheduler's state, stopping: \(error)")
            store.close()
            self.store = nil
            stop()
            onFatal?("cannot save the scheduler's state: \(error)")
            return false
        }
    }

    /// Queues `message` for the end of this loop turn (after its changes are saved).
    func deliver(_ connection: FramedConnection, _ message: Message) {
        outgoing.append((connection, message))
        endOfTurnSoon()
    }
}
