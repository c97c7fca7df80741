import SwarmProtocol
import SwarmUV

extension WorkerAgent {
    /// Starts every due probe that has a free slot, then sets the timer for the next one.
    func startDueProbes() {
        guard !stopping else { return }
        let nowMs = clocks.monotonic()
        var started = false
        for name in health.due(nowMs: nowMs) where busySlots < config.slots {
            guard let check = health.check(name) else { continue }
            startProbe(name, check, nowMs: nowMs)
            started = true
        }
        if started { sendHealth() }
        armHealthTimer()
    }

    private func armHealthTimer() {
        guard let healthTimer else { return }
        guard let next = health.nextDueMs else { healthTimer.stop(); return }
        // A due probe without a free slot waits for a task to end (`runnerEnded` retries);
        // the timer still looks again now and then.
        let nowMs = clocks.monotonic()
        let delay = max(next - nowMs, health.due(nowMs: nowMs).isEmpty ? 0 : 1_000)
        healthTimer.start(afterMs: UInt64(max(0, delay))) { [weak self] in self?.startDueProbes() }
    }

    private func startProbe(_ name: String, _ check: HealthCheckSpec, nowMs: Int64) {
        health.probeStarted(name, nowMs: nowMs)
        var spec = TaskSpec(id: "health-\(name)", command: check.command)
        spec.timeout = Double(check.timeoutMs) / 1000
        spec.killGrace = 1
        let assignment = TaskAssignment(id: "health-\(name)", attempt: 1, spec: spec)
        var policy = TimeoutPolicy()
        policy.maxMs = check.timeoutMs
        let context = RunnerContext(
            argv: check.command, environment: baseEnvironment.map { "\($0.key)=\($0.value)" },
            workingDirectory: nil, stdin: nil, logPath: "\(logsDir)/health.\(name).log",
            supervisorSettings: .init(drainMs: 200, policy: policy), metrics: RunMetrics(), clocks: clocks)
        let started = nowMs
        let runner = TaskRunner(loop: loop, assignment: assignment, context: context) { [weak self] result in
            self?.probeEnded(name, check, result, startedAt: started)
        }
        probes[name] = runner
        runner.start()
    }

    private func probeEnded(_ name: String, _ check: HealthCheckSpec, _ result: TaskResult, startedAt: Int64) {
        probes[name] = nil
        defer { startHeld() }
        let nowMs = clocks.monotonic()
        var passed = result.state == .succeeded
        var detail: String?
        if passed, let expect = check.expect, !result.output.contains(expect) {
            passed = false
            detail = "output lacks '\(expect)': \(String(result.output.suffix(200)))"
        } else if !passed {
            detail = "\(check.command.joined(separator: " ")): \(result.state.rawValue)\(result.reason.map { " (\($0))" } ?? "")"
        }
        let changed = health.probeFinished(name, passed: passed, latencyMs: nowMs - startedAt, detail: detail, nowMs: nowMs, at: clocks.wall())
        if changed { logger.info("runtime \(name) is now \(passed ? "healthy" : "unhealthy")\(detail.map { ": \($0)" } ?? "")") }
        sendHealth()
        startDueProbes()
        finishStopIfIdle()
    }

    /// Tells the scheduler the runtimes' health and the slots probes hold.
    func sendHealth() {
        guard registered else { return }
        connection?.send(.health(.init(runtimes: health.statuses, probing: probes.count)))
    }
}
