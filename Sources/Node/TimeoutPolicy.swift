import SwarmProtocol

/// Every number of progressive timeouts and silence heartbeats, in milliseconds. Layers:
/// built-in defaults, then the cluster config's `timeouts`, then the runtime's, then the
/// task's own fields; each layer sets only what it names.
public struct TimeoutPolicy: Sendable, Equatable {
    public var simpleMs: Int64 = 60_000
    public var moderateMs: Int64 = 120_000
    public var complexMs: Int64 = 180_000
    /// Never extended beyond this (counted from the start).
    public var maxMs: Int64 = 240_000
    public var extendByMs: Int64 = 60_000
    /// Extend only when the deadline is this close...
    public var extendWithinMs: Int64 = 30_000
    /// ...and the agent printed within this window, in at least `minBursts` bursts.
    public var activityWindowMs: Int64 = 30_000
    public var minBursts = 2
    /// Quiet that separates two bursts: output closer than this to the output before it is
    /// part of the same burst (`ProgressClock`). 0: every read is a burst.
    public var burstGapMs: Int64 = 1_000
    public var silenceWarnMs: Int64 = 45_000
    public var silenceKillMs: Int64 = 90_000
    public var killGraceMs: Int64 = 5_000
    /// A task given its own `timeout` starts with it, whatever its complexity.
    public var initialOverrideMs: Int64?
    /// Which checks apply. Runtime tasks get all three; a plain command only those its
    /// task sets (a build job is not killed for being quiet unless asked).
    public var enforcesDeadline = true
    public var warnsOnSilence = true
    public var killsOnSilence = true

    public init() {}

    /// One layer of overrides, as the config and task spell them (seconds).
    public struct Overrides: Sendable, Equatable {
        public var simple: Double?
        public var moderate: Double?
        public var complex: Double?
        public var timeout: Double?
        public var maxTimeout: Double?
        public var extendBy: Double?
        public var extendWithin: Double?
        public var activityWindow: Double?
        public var minBursts: Int?
        public var burstGap: Double?
        public var silenceWarn: Double?
        public var silenceKill: Double?
        public var killGrace: Double?

        public init() {}

        public init(task spec: TaskSpec) {
            timeout = spec.timeout
            maxTimeout = spec.maxTimeout
            extendBy = spec.extendBy
            extendWithin = spec.extendWithin
            activityWindow = spec.activityWindow
            minBursts = spec.minBursts
            burstGap = spec.burstGap
            silenceWarn = spec.silenceWarn
            silenceKill = spec.silenceKill
            killGrace = spec.killGrace
        }
    }

    /// This policy with `layer` applied on top.
    public func applying(_ layer: Overrides) -> TimeoutPolicy {
        func ms(_ s: Double?) -> Int64? { s.map { Bounds.int64($0 * 1000) } }
        var p = self
        p.simpleMs = ms(layer.simple) ?? p.simpleMs
        p.moderateMs = ms(layer.moderate) ?? p.moderateMs
        p.complexMs = ms(layer.complex) ?? p.complexMs
        p.initialOverrideMs = ms(layer.timeout) ?? p.initialOverrideMs
        p.maxMs = ms(layer.maxTimeout) ?? p.maxMs
        p.extendByMs = ms(layer.extendBy) ?? p.extendByMs
        p.extendWithinMs = ms(layer.extendWithin) ?? p.extendWithinMs
        p.activityWindowMs = ms(layer.activityWindow) ?? p.activityWindowMs
        p.minBursts = layer.minBursts ?? p.minBursts
        p.burstGapMs = ms(layer.burstGap) ?? p.burstGapMs
        p.silenceWarnMs = ms(layer.silenceWarn) ?? p.silenceWarnMs
        p.silenceKillMs = ms(layer.silenceKill) ?? p.silenceKillMs
        p.killGraceMs = ms(layer.killGrace) ?? p.killGraceMs
        return p
    }

    /// The policy for `spec` on top of this one: its own fields as the last layer, and for a
    /// plain command only the checks it asks for.
    public func resolved(for spec: TaskSpec) -> TimeoutPolicy {
        var p = applying(Overrides(task: spec))
        if spec.runtime == nil {
            p.enforcesDeadline = spec.timeout != nil || spec.maxTimeout != nil || spec.complexity != nil
            p.warnsOnSilence = spec.silenceWarn != nil
            p.killsOnSilence = spec.silenceKill != nil
        }
        return p
    }

    /// The timeout a run starts with: its own, else its complexity's; never above the maximum.
    public func initialMs(for level: ComplexityLevel) -> Int64 {
        let base = initialOverrideMs ?? (level == .simple ? simpleMs : level == .moderate ? moderateMs : complexMs)
        return min(base, max(maxMs, initialOverrideMs ?? 0))
    }
}
