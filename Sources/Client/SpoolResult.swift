import SwarmProtocol

/// An ended task as the original coordinator's result file (`results/{requestId}.json`). Pure.
///
/// Every key is always written (`null` when swarm has no figure):
/// `requestId`, `status` (`success` only for `succeeded`, else `failed`), `output` (the last
/// 64 KiB of the task's output), `durationMs` (spawn to end of the last run, on its worker's monotonic clock; from
/// placement or submission, on the dates, when it never started), `exitCode`, `failureReason` (null on success; else
/// swarm's reason, or the state when there is none), `stats` and `swarm`.
public enum SpoolResult {
    /// The most bytes of output kept: the end of it, where an agent's answer is.
    public static let maxOutputBytes = 64 * 1024

    public static func json(for info: TaskInfo, contextChars: Int) -> JSONValue {
        let m = info.metrics
        let success = info.state == .succeeded
        let begin = info.startedAt ?? info.placedAt ?? info.submittedAt
        // The worker's monotonic measure of the run when it sent one (a wall-clock step does
        // not change it); the dates' difference otherwise.
        let duration = info.finishedAt.map { m.runMs ?? max(0, $0 - begin) }
        let reason = success ? nil : (info.reason ?? info.state.rawValue)
        let stats: [String: JSONValue] = [
            "contextMode": string(m.contextMode),
            "contextSizeChars": .number(JSONNumber(Int64(contextChars))),
            "complexity": string(m.complexity),
            "complexityScore": number(m.complexityScore.map(Int64.init)),
            "initialTimeoutMs": number(m.initialTimeoutMs),
            "finalTimeoutMs": number(m.finalTimeoutMs),
            "extensionsApplied": number(Int64(m.extensions)),
            // Placement to spawn: the worker's preparation and the spawn (no health check per
            // run: runtimes' health is cached).
            "startupLatencyMs": number(both(info.placedAt, info.startedAt).map { max(0, $1 - $0) }),
            "totalOutputBytes": number(Int64(m.outputBytes)),
            "outputBursts": number(Int64(m.outputBursts)),
            "timeToFirstOutputMs": number(m.timeToFirstOutputMs),
        ]
        let swarm: [String: JSONValue] = [
            "node": string(info.node),
            "attempts": number(Int64(info.attempts)),
            "state": .string(info.state.rawValue),
            "reason": string(info.reason),
            "signal": number(info.signal.map(Int64.init)),
            "runtime": string(m.runtime),
            "model": string(m.model),
        ]
        return .object([
            "requestId": .string(info.id),
            "status": .string(success ? "success" : "failed"),
            "output": .string(tail(info.output ?? "")),
            "durationMs": number(duration),
            "exitCode": number(info.exitCode.map(Int64.init)),
            "failureReason": string(reason),
            "stats": .object(stats),
            "swarm": .object(swarm),
        ])
    }

    /// The file's bytes: pretty JSON and a final line break.
    public static func bytes(for info: TaskInfo, contextChars: Int) -> [UInt8] {
        Array((json(for: info, contextChars: contextChars).pretty + "\n").utf8)
    }

    /// The last `maxOutputBytes` bytes of `text`, starting at a character boundary.
    public static func tail(_ text: String, maxBytes: Int = maxOutputBytes) -> String {
        let utf8 = text.utf8
        guard utf8.count > maxBytes else { return text }
        var start = utf8.index(utf8.endIndex, offsetBy: -maxBytes)
        // Skip continuation bytes (10xxxxxx) so the cut never splits a character.
        while start < utf8.endIndex, utf8[start] & 0xC0 == 0x80 { start = utf8.index(after: start) }
        return String(decoding: utf8[start...], as: UTF8.self)
    }

    private static func string(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
    private static func number(_ n: Int64?) -> JSONValue { n.map { .number(JSONNumber($0)) } ?? .null }
}

private func both(_ a: Int64?, _ b: Int64?) -> (Int64, Int64)? {
    guard let a, let b else { return nil }
    return (a, b)
}
