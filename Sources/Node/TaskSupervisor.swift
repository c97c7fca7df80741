import SwarmProtocol

/// One of a child's output streams.
public enum OutputChannel: String, Sendable { case stdout, stderr }

/// Inputs to a task's supervisor. `nowMs` is monotonic milliseconds (`monotonicMillis`): every
/// deadline, silence and grace period is measured on it. The wall clock is given beside the
/// event (`TaskSupervisor.handle(_:at:)`), only to date the result.
public enum SupervisorEvent: Sendable {
    case spawned(pid: Int, nowMs: Int64)
    case spawnFailed(reason: String, nowMs: Int64)
    case output(OutputChannel, [UInt8], nowMs: Int64)
    case streamClosed(OutputChannel, nowMs: Int64)
    case exited(status: Int64, signal: Int32, nowMs: Int64)
    /// The wake-up asked for by `armWake` (or any time: checks are idempotent).
    case wake(nowMs: Int64)
    /// The drain timer started at exit fired: streams still open are held by leftovers.
    case drainTimerFired(nowMs: Int64)
    /// The kill grace period ended.
    case graceTimerFired(nowMs: Int64)
    case killRequested(reason: String, state: TaskState, nowMs: Int64)
    /// Kill at once: end the grace period of a kill under way now (a second Ctrl-C).
    case hurryKill(nowMs: Int64)

    /// The event's kind, for log lines.
    public var name: String {
        switch self {
        case .spawned: "spawned"
        case .spawnFailed: "spawnFailed"
        case .output: "output"
        case .streamClosed: "streamClosed"
        case .exited: "exited"
        case .wake: "wake"
        case .drainTimerFired: "drainTimerFired"
        case .graceTimerFired: "graceTimerFired"
        case .killRequested: "killRequested"
        case .hurryKill: "hurryKill"
        }
    }
}

/// What the shell must do for a supervisor.
public enum SupervisorAction: Equatable, Sendable {
    case log(String)
    case signalGroup(Int32)
    /// Deliver `.wake` at this monotonic time (replaces any earlier request).
    case armWake(atMs: Int64)
    case startDrainTimer(ms: UInt64)
    case startGraceTimer(ms: UInt64)
    /// Tell the scheduler: `silence_warning` or `extended`.
    case event(kind: String, detail: String)
    /// Close pipes and the process handle, reap the group, write the result, report it.
    case finish(TaskResult)
}

/// The life of one task as a pure state machine: events in, actions out. The shell
/// (`TaskRunner`) maps actions onto libuv; tests drive this with made-up events and times.
///
/// A task is complete when its process exited and both output pipes reached EOF; if the
/// pipes stay open after the exit (a grandchild holds them), the group is killed after a
/// short drain period. The whole process group is always killed at the end, so no process
/// of a task outlives it. While it runs, a `ProgressClock` enforces the progressive timeout
/// and the silence heartbeat.
public struct TaskSupervisor: Sendable {
    public enum State: Sendable, Equatable {
        case starting
        case running
        /// Killing: SIGTERM sent, SIGKILL after the grace period.
        case killing
        /// Process exited; waiting for the pipes to drain.
        case draining
        case finished
    }

    public struct Settings: Sendable {
        public var drainMs: UInt64 = 200
        /// Defaults for this worker (config and runtime layers); the task's own fields are
        /// applied on top by the supervisor.
        public var policy = TimeoutPolicy()
        public init(drainMs: UInt64 = 200, killGraceMs: UInt64 = 5_000, policy: TimeoutPolicy = TimeoutPolicy()) {
            self.drainMs = drainMs
            self.policy = policy
            self.policy.killGraceMs = Int64(killGraceMs)
        }
        public init(drainMs: UInt64 = 200, policy: TimeoutPolicy) {
            self.drainMs = drainMs
            self.policy = policy
        }
    }

    public let assignment: TaskAssignment
    public let settings: Settings
    /// The policy this run is held to (worker defaults plus the task's own fields).
    public let policy: TimeoutPolicy
    public let complexity: (level: ComplexityLevel, score: Int)
    public private(set) var state: State = .starting
    public private(set) var tail = OutputTail()
    public private(set) var clock: ProgressClock?
    private var metrics: RunMetrics
    private var pid: Int?
    /// Monotonic, for the time to first output.
    private var startedAt: Int64?
    /// Wall clock: the result's `startedAt`, `firstOutputAt` and `finishedAt` (the `at` of the
    /// events they happened at).
    private var startedWallAt: Int64?
    private var wallAt: Int64 = 0
    private var openStreams: Set<String> = ["stdout", "stderr"]
    private var exit: (status: Int64, signal: Int32)?
    /// Set when we killed it: the outcome and reason that the result carries.
    private var killOutcome: (state: TaskState, reason: String)?
    /// While killing: when the grace period ends and SIGKILL goes to the group (monotonic ms).
    public private(set) var sigkillAtMs: Int64?
    private var sigkillSent = false

    /// `metrics`: what the worker knows before the start (node, runtime, model, context).
    public init(assignment: TaskAssignment, settings: Settings = Settings(), metrics: RunMetrics = RunMetrics()) {
        self.assignment = assignment
        self.settings = settings
        self.policy = settings.policy.resolved(for: assignment.spec)
        self.complexity = Complexity.assess(assignment.spec)
        self.metrics = metrics
        self.metrics.complexity = complexity.level.rawValue
        self.metrics.complexityScore = complexity.score
    }

    public var isFinished: Bool { state == .finished }

    /// Every (state, event) pair is decided here, with no `default:`: a new state or event
    /// does not compile until each of its pairs is. Three kinds of answer: the transitions;
    /// late events a race makes normal (a timer or request overtaken by what happened first:
    /// nothing to do); and events the shell can never send in that state, which all go
    /// through `unexpected` (logged, otherwise ignored).
    ///
    /// `at`: the wall clock (unix ms) at the event, only to date the result (`startedAt`,
    /// `firstOutputAt`, `finishedAt`); nil: the event's `nowMs` stands for it (tests whose two
    /// clocks agree). A step of the wall clock moves no deadline.
    public mutating func handle(_ event: SupervisorEvent, at: Int64? = nil) -> [SupervisorAction] {
        wallAt = at ?? event.nowMs
        switch (state, event) {
        case (.starting, .spawned(let pid, let now)):
            return start(pid: pid, now: now)
        case (.starting, .spawnFailed(let reason, _)):
            state = .finished
            return [.log("spawn failed: \(reason)"),
                    .finish(result(.spawnFailed, exitCode: nil, signal: nil, reason: reason))]
        case (.running, .output(_, let bytes, let now)):
            record(bytes, now: now)
            return enforce(now) { $0.output(nowMs: now) }
        case (.starting, .output(_, let bytes, let now)), (.killing, .output(_, let bytes, let now)),
             (.draining, .output(_, let bytes, let now)):
            // Kept and counted as output, but no deadline moves: none runs (yet, or any more).
            record(bytes, now: now)
            self.clock?.recordOutput(nowMs: now)
            return []
        case (.running, .wake(let now)):
            return enforce(now) { $0.check(nowMs: now) }
        case (.starting, .streamClosed(let stream, _)), (.running, .streamClosed(let stream, _)),
             (.killing, .streamClosed(let stream, _)):
            openStreams.remove(stream.rawValue)
            return []
        case (.draining, .streamClosed(let stream, let now)):
            openStreams.remove(stream.rawValue)
            return openStreams.isEmpty ? complete(now: now) : []
        case (.running, .exited(let status, let signal, let now)), (.killing, .exited(let status, let signal, let now)):
            return exited(status: status, signal: signal, now: now)
        case (.draining, .drainTimerFired(let now)):
            return [.log("output still open after exit: killing leftover processes of the group")] + complete(now: now)
        case (.running, .killRequested(let reason, let outcome, let now)):
            return kill(outcome, reason, now: now)
        case (.draining, .killRequested(_, _, let now)):
            // It had already exited on its own: that is its outcome; just end the leftovers.
            return complete(now: now)
        case (.killing, .graceTimerFired(let now)):
            return sigkill("grace period over: SIGKILL to the process group", now: now)
        case (.killing, .hurryKill(let now)):
            return sigkill("asked to stop at once: SIGKILL to the process group", now: now)

        // Late, and normal: the run is reported already; a second kill while one is under
        // way; a wake-up or grace timer overtaken by the kill or the exit; a hurry with no
        // kill under way (or, after the exit, one the drain ends soon anyway).
        case (.finished, .spawned), (.finished, .spawnFailed), (.finished, .output), (.finished, .streamClosed),
             (.finished, .exited), (.finished, .wake), (.finished, .drainTimerFired), (.finished, .graceTimerFired),
             (.finished, .killRequested), (.finished, .hurryKill),
             (.killing, .killRequested), (.killing, .wake), (.draining, .wake), (.draining, .graceTimerFired),
             (.starting, .hurryKill), (.running, .hurryKill), (.draining, .hurryKill):
            return []

        // Never sent in these states: no process yet (starting), one spawn and one exit per
        // run, the drain timer only after the exit, the grace timer only after a kill; the
        // shell spawns before it passes on any kill.
        case (.starting, .exited), (.starting, .wake), (.starting, .drainTimerFired), (.starting, .graceTimerFired),
             (.starting, .killRequested),
             (.running, .spawned), (.running, .spawnFailed), (.running, .drainTimerFired), (.running, .graceTimerFired),
             (.killing, .spawned), (.killing, .spawnFailed), (.killing, .drainTimerFired),
             (.draining, .spawned), (.draining, .spawnFailed), (.draining, .exited):
            return unexpected(event)
        }
    }

    private mutating func start(pid: Int, now: Int64) -> [SupervisorAction] {
        self.pid = pid
        startedAt = now
        startedWallAt = wallAt
        state = .running
        let clock = ProgressClock(policy: policy, level: complexity.level, startedAt: now)
        self.clock = clock
        var line = "started pid \(pid): \(assignment.command.isEmpty ? "runtime \(assignment.spec.runtime ?? "?")" : assignment.command.joined(separator: " "))"
        line += "; complexity \(complexity.level.rawValue) (\(complexity.score))"
        if policy.enforcesDeadline { line += ", timeout \(Self.seconds(clock.initialTimeoutMs)) (max \(Self.seconds(clock.maxDeadline - now)))" }
        if policy.killsOnSilence { line += ", silence kill \(Self.seconds(policy.silenceKillMs))" }
        return [.log(line)] + rearm(now: now)
    }

    /// Output of any state: kept in the tail, and the first output's time noted.
    private mutating func record(_ bytes: [UInt8], now: Int64) {
        tail.append(bytes)
        if metrics.firstOutputAt == nil {
            metrics.firstOutputAt = wallAt
            metrics.timeToFirstOutputMs = startedAt.map { now - $0 }
        }
    }

    /// While running: what the progress clock finds due, carried out.
    private mutating func enforce(_ now: Int64, _ step: (inout ProgressClock) -> [ProgressClock.Verdict]) -> [SupervisorAction] {
        guard var clock else { return [] }
        let verdicts = step(&clock)
        self.clock = clock
        return apply(verdicts, now: now)
    }

    private mutating func exited(status: Int64, signal: Int32, now: Int64) -> [SupervisorAction] {
        exit = (status, signal)
        // The duration on the monotonic clock (`now` is), not from the wall dates.
        metrics.runMs = startedAt.map { max(0, now - $0) }
        state = .draining
        var actions: [SupervisorAction] = [.log(signal != 0 ? "exited on signal \(signal)" : "exited with code \(status)")]
        if openStreams.isEmpty { actions += complete(now: now) } else { actions.append(.startDrainTimer(ms: settings.drainMs)) }
        return actions
    }

    /// While killing: SIGKILL to the group, once (the grace period's end or a hurry, whichever
    /// comes first).
    private mutating func sigkill(_ line: String, now: Int64) -> [SupervisorAction] {
        guard !sigkillSent else { return [] }
        sigkillSent = true
        sigkillAtMs = now
        return [.log(line), .signalGroup(9)]
    }

    /// The one answer to an event the shell cannot send in this state: a line in the task's
    /// log saying so, and no change (a shell's mistake must not end or corrupt a run).
    private func unexpected(_ event: SupervisorEvent) -> [SupervisorAction] {
        [.log("ignored \(event.name) while \(state): not expected in this state")]
    }

    private mutating func apply(_ verdicts: [ProgressClock.Verdict], now: Int64) -> [SupervisorAction] {
        var actions: [SupervisorAction] = []
        for verdict in verdicts {
            switch verdict {
            case .silenceWarning(let silent):
                let detail = "no output for \(Self.seconds(silent)) (kill at \(policy.killsOnSilence ? Self.seconds(policy.silenceKillMs) : "never"))"
                actions += [.log("silence warning: \(detail)"), .event(kind: "silence_warning", detail: detail)]
            case .extended(let by, let deadline, let bursts):
                let detail = "deadline extended by \(Self.seconds(by)) to \(Self.seconds(deadline)) (\(bursts) output bursts in the last \(Self.seconds(policy.activityWindowMs)))"
                actions += [.log(detail), .event(kind: "extended", detail: detail)]
            case .timedOut(let after):
                let why = clock?.timeoutExplanation(nowMs: now) ?? "deadline reached"
                return actions + kill(.timedOut, "timed out after \(Self.seconds(after)): \(why)", now: now)
            case .silenceKill(let silent):
                return actions + kill(.silenceKilled, "no output for \(Self.seconds(silent)) (silence limit \(Self.seconds(policy.silenceKillMs)))", now: now)
            }
        }
        return actions + rearm(now: now)
    }

    private func rearm(now: Int64) -> [SupervisorAction] {
        guard state == .running, let next = clock?.nextWakeMs(nowMs: now) else { return [] }
        return [.armWake(atMs: next)]
    }

    private mutating func kill(_ outcome: TaskState, _ reason: String, now: Int64) -> [SupervisorAction] {
        killOutcome = (outcome, reason)
        state = .killing
        sigkillAtMs = now + max(0, policy.killGraceMs)
        return [.log("killing process group: \(reason)"), .signalGroup(15),
                .startGraceTimer(ms: UInt64(max(0, policy.killGraceMs)))]
    }

    private mutating func complete(now: Int64) -> [SupervisorAction] {
        state = .finished
        let status = exit?.status ?? -1
        let signal = exit?.signal ?? 0
        let exitCode: Int? = signal == 0 ? Int(status) : nil
        let signalValue: Int? = signal == 0 ? nil : Int(signal)
        // Always: nothing of the group may outlive the task (the leader may be gone already).
        var actions: [SupervisorAction] = [.signalGroup(9)]
        let outcome: TaskState
        let reason: String?
        if let killOutcome, killOutcome.state == .lost, signal == 0, status == 0 {
            // Its worker was shutting down, but the run finished its work cleanly in the grace
            // period: that is a success, not a run to repeat.
            outcome = .succeeded
            reason = nil
        } else if let killOutcome {
            outcome = killOutcome.state
            reason = killOutcome.reason
        } else if signal != 0 {
            outcome = .failed
            reason = "killed by signal \(signal)"
        } else if status != 0 {
            outcome = .failed
            reason = "exited with code \(status)"
        } else {
            outcome = .succeeded
            reason = nil
        }
        actions.append(.finish(result(outcome, exitCode: exitCode, signal: signalValue, reason: reason)))
        return actions
    }

    private func result(_ outcome: TaskState, exitCode: Int?, signal: Int?, reason: String?) -> TaskResult {
        var r = TaskResult(id: assignment.id, state: outcome, exitCode: exitCode, signal: signal, reason: reason,
                           output: tail.text, pid: pid, attempt: assignment.attempt, startedAt: startedWallAt, finishedAt: wallAt)
        r.submittedAt = assignment.submittedAt
        r.placedAt = assignment.placedAt
        var m = metrics
        m.outputBytes = tail.totalBytes
        if let clock {
            m.outputBursts = clock.bursts
            m.extensions = clock.extensions
            m.silenceWarnings = clock.silenceWarnings
            if policy.enforcesDeadline {
                m.initialTimeoutMs = clock.initialTimeoutMs
                m.finalTimeoutMs = clock.currentTimeoutMs
            }
        }
        r.metrics = m
        return r
    }

    static func seconds(_ ms: Int64) -> String {
        ms % 1000 == 0 ? "\(ms / 1000) s" : "\(Double(ms) / 1000) s"
    }
}

extension SupervisorEvent {
    /// The monotonic time the event brings.
    public var nowMs: Int64 {
        switch self {
        case .spawned(_, let now), .spawnFailed(_, let now), .output(_, _, let now), .streamClosed(_, let now),
             .exited(_, _, let now), .wake(let now), .drainTimerFired(let now), .graceTimerFired(let now),
             .killRequested(_, _, let now), .hurryKill(let now):
            return now
        }
    }
}
