import SwarmUV

/// The worker's own stall log (`LoopStallWatch`): the scheduler logs its stalls, and a worker
/// whose loop is held misses heartbeats, so its stalls are logged too, on its side.
extension WorkerAgent {
    func startStallWatch() {
        guard let timer = try? UVTimer(loop: loop) else { return }
        stallTimer = timer
        var watch = LoopStallWatch(nowMs: clocks.monotonic())
        let period = UInt64(watch.periodMs)
        timer.start(afterMs: period, repeatMs: period) { [weak self] in
            guard let self else { return }
            if let gap = watch.fired(nowMs: self.clocks.monotonic()) {
                self.logger.warning("worker loop was stalled for \(gap) ms (\(self.runners.count) runs, \(self.unwritten.count) results' files to write)")
            }
        }
    }
}
