import SwarmProtocol

/// One of a child's output streams.
public enum OutputChannel: String, Sendable { case stdout, stderr }

/// Inputs to a task's supervisor. Times are unix milliseconds.
public enum SupervisorEvent: Sendable {
    case spawned(pid: Int, nowMs: Int64)
    case spawnFailed(reason: String, nowMs: Int64)
    case output(OutputChannel, [UInt8], nowMs: Int64)
    case streamClosed(OutputChannel, nowMs: Int64)
    case exited(status: Int64, signal: Int32, nowMs: Int64)
    /// The drain timer started at exit fired: streams still open are held by leftovers.
    case drainTimerFired(nowMs: Int64)
    /// The kill grace period ended.
    case graceTimerFired(nowMs: Int64)
    case killRequested(reason: String, state: TaskState, nowMs: Int64)
}

/// What the shell must do for a supervisor.
public enum SupervisorAction: Equatable, Sendable {
    case log(String)
    case signalGroup(Int32)
    case startDrainTimer(ms: UInt64)
    case startGraceTimer(ms: UInt64)
    /// Close pipes and the process handle, write the result, report it.
    case finish(TaskResult)
}

/// The life of one task as a pure state machine: events in, actions out. The shell
/// (`TaskRunner`) maps actions onto libuv; tests drive this with made-up events and times.
///
/// A task is complete when its process exited and both output pipes reached EOF; if the
/// pipes stay open after the exit (a grandchild holds them), the group is killed after a
/// short drain period. The whole process group is always killed at the end, so no process
/// of a task outlives it.
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
        public var killGraceMs: UInt64 = 5_000
        public init(drainMs: UInt64 = 200, killGraceMs: UInt64 = 5_000) {
            self.drainMs = drainMs
            self.killGraceMs = killGraceMs
        }
    }

    public let assignment: TaskAssignment
    public let settings: Settings
    public private(set) var state: State = .starting
    public private(set) var tail = OutputTail()
    private var pid: Int?
    private var startedAt: Int64?
    private var openStreams: Set<String> = ["stdout", "stderr"]
    private var exit: (status: Int64, signal: Int32)?
    /// Set when we killed it: the outcome and reason that the result carries.
    private var killOutcome: (state: TaskState, reason: String)?

    public init(assignment: TaskAssignment, settings: Settings = Settings()) {
        self.assignment = assignment
        self.settings = settings
    }

    public var isFinished: Bool { state == .finished }

    public mutating func handle(_ event: SupervisorEvent) -> [SupervisorAction] {
        switch (state, event) {
        case (.finished, _):
            return []

        case (.starting, .spawned(let pid, let now)):
            self.pid = pid
            startedAt = now
            state = .running
            return [.log("started pid \(pid): \(assignment.command.joined(separator: " "))")]

        case (.starting, .spawnFailed(let reason, let now)):
            state = .finished
            return [.log("spawn failed: \(reason)"),
                    .finish(result(.spawnFailed, exitCode: nil, signal: nil, reason: reason, now: now))]

        case (_, .output(_, let bytes, _)):
            tail.append(bytes)
            return []

        case (_, .streamClosed(let stream, let now)):
            openStreams.remove(stream.rawValue)
            return state == .draining && openStreams.isEmpty ? complete(now: now) : []

        case (.running, .exited(let status, let signal, let now)), (.killing, .exited(let status, let signal, let now)):
            exit = (status, signal)
            state = .draining
            var actions: [SupervisorAction] = [.log(signal != 0 ? "exited on signal \(signal)" : "exited with code \(status)")]
            if openStreams.isEmpty { actions += complete(now: now) } else { actions.append(.startDrainTimer(ms: settings.drainMs)) }
            return actions

        case (.draining, .drainTimerFired(let now)):
            return [.log("output still open after exit: killing leftover processes of the group")] + complete(now: now)

        case (.running, .killRequested(let reason, let outcome, _)):
            killOutcome = (outcome, reason)
            state = .killing
            return [.log("killing process group: \(reason)"), .signalGroup(15), .startGraceTimer(ms: settings.killGraceMs)]

        case (.draining, .killRequested(_, _, let now)):
            // It had already exited on its own: that is its outcome; just end the leftovers.
            return complete(now: now)

        case (.killing, .graceTimerFired):
            return [.log("grace period over: SIGKILL to the process group"), .signalGroup(9)]

        default:
            return []
        }
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
        actions.append(.finish(result(outcome, exitCode: exitCode, signal: signalValue, reason: reason, now: now)))
        return actions
    }

    private func result(_ outcome: TaskState, exitCode: Int?, signal: Int?, reason: String?, now: Int64) -> TaskResult {
        TaskResult(id: assignment.id, state: outcome, exitCode: exitCode, signal: signal, reason: reason,
                   output: tail.text, pid: pid, attempt: assignment.attempt, startedAt: startedAt, finishedAt: now)
    }
}
