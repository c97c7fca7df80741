import SwarmProtocol
import SwarmUV

/// A `swarm gc` request being carried out: the totals so far.
struct GcJob {
    weak var session: PeerSession?
    var reply: Message.GcResult
    var cutoffMs: Int64?
}

/// Retention (issue 14 item 2): finished tasks past `scheduler.retention` leave `swarm.db`
/// with their runs, logs and the blobs no kept task names, a small transaction per step
/// (`TaskStore.purgeFinished`) on a timer, so the loop never holds on a large deletion.
extension SchedulerServer {
    /// Steps while tasks are past the limits follow each other after this long.
    static let retentionCatchUpMs: UInt64 = 50

    func startRetention() {
        guard store != nil else { return }
        retentionTimer = try? UVTimer(loop: loop)
        armRetention(afterMs: Self.retentionCatchUpMs)
    }

    private func armRetention(afterMs: UInt64) {
        retentionTimer?.start(afterMs: afterMs) { [weak self] in self?.retentionStep() }
    }

    /// `swarm gc [--older-than S]`: steps now, until nothing more is past the limits (or
    /// older than the cutoff); then the totals go back to the client.
    func startGc(session: PeerSession, requestId: Int, cutoffMs: Int64?) {
        guard let store else {
            return deliver(session.connection, .gcResult(.init(requestId: requestId)))
        }
        let bytes = store.databaseBytes()
        gcJobs.append(GcJob(session: session, reply: .init(requestId: requestId, dbBytesBefore: bytes), cutoffMs: cutoffMs))
        armRetention(afterMs: 0)
    }

    /// One step: at most `retentionBatch` tasks deleted in one transaction.
    private func retentionStep() {
        // What this turn changed is saved first: the store's references are then complete
        // (a task just submitted naming an old task's blob keeps it).
        guard persist(), let store else { return }
        let retention = config.retention
        var cutoff = retention.maxAgeHours >= SchedulerRetention.maxAgeRange.upperBound ? nil : clocks.wall() - retention.maxAgeMs
        for job in gcJobs { if let asked = job.cutoffMs { cutoff = max(cutoff ?? asked, asked) } }
        // Built at the first task past the limits only: it is O(the dependencies of every task
        // in flight), 990,000 ids with `swarm bench dag` queued, which held the loop for tens
        // of milliseconds every `retentionIntervalMs` though nothing was past the limits.
        var referenced: Set<String>?
        let report: PurgeReport
        do {
            report = try store.purgeFinished(cutoffMs: cutoff, maxFinished: retention.maxFinishedTasks,
                                             batch: config.retentionBatch,
                                             keep: { id in
                                                 if referenced == nil { referenced = self.state.referencedIds() }
                                                 return referenced!.contains(id) || self.waiters.isNamed(id)
                                             })
        } catch {
            logger.error("retention: \(error)")
            finishGcJobs(store: store)
            return armRetention(afterMs: config.retentionIntervalMs)
        }
        // A step writes hundreds of WAL frames (the deletions, then the pages the incremental
        // vacuum moves): checkpointed now, not at the next save, so the WAL stays near its cap
        // (1,796 and 2,007 frames, 7-8 MiB, were seen at the save after a step in the soak).
        if !report.tasks.isEmpty {
            GapTrace.mark("s_purged", "\(report.tasks.count) \(store.walFrames)")
            checkpointIfDue(store)
        }
        state.forget(report.tasks, sequences: report.sequences)
        var blobBytes: Int64 = 0
        var blobs = 0
        for sha in report.blobs {
            if let size = blobState.store?.remove(sha) { blobBytes += size; blobs += 1 }
        }
        if !report.tasks.isEmpty {
            logger.info("retention: deleted \(report.tasks.count) finished task(s), \(report.runs) run(s), \(report.logs) log(s), \(blobs) blob(s) (\(blobBytes) bytes)\(report.kept > 0 ? "; \(report.kept) kept while tasks in flight need them" : "")")
        }
        for i in gcJobs.indices {
            gcJobs[i].reply.tasks += report.tasks.count
            gcJobs[i].reply.runs += report.runs
            gcJobs[i].reply.logs += report.logs
            gcJobs[i].reply.blobs += blobs
            gcJobs[i].reply.blobBytes += blobBytes
            gcJobs[i].reply.kept = report.kept
        }
        if report.more { return armRetention(afterMs: gcJobs.isEmpty ? Self.retentionCatchUpMs : 0) }
        finishGcJobs(store: store)
        armRetention(afterMs: config.retentionIntervalMs)
    }

    private func finishGcJobs(store: TaskStore) {
        guard !gcJobs.isEmpty else { return }
        let bytes = store.databaseBytes()
        for var job in gcJobs {
            job.reply.dbBytesAfter = bytes
            if let session = job.session { deliver(session.connection, .gcResult(job.reply)) }
        }
        gcJobs = []
    }
}
