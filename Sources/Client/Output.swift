import Foundation
import SwarmProtocol

/// Text and JSON renderings of what the scheduler returns, for the CLI.
public enum Output {
    /// One JSON value, keys sorted, for scripts.
    public static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    public static func taskDetail(_ task: TaskInfo) -> String {
        var lines = [
            "id:        \(task.id)",
            "state:     \(task.state.rawValue)",
            "command:   \(task.command.joined(separator: " "))",
            "node:      \(task.node ?? "-")",
            "attempts:  \(task.attempts)",
        ]
        if let code = task.exitCode { lines.append("exit code: \(code)") }
        if let signal = task.signal { lines.append("signal:    \(signal)") }
        if let reason = task.reason { lines.append("reason:    \(reason)") }
        lines.append("submitted: \(time(task.submittedAt))")
        if let t = task.startedAt { lines.append("started:   \(time(t)) (+\(ms(t &- task.submittedAt)))") }
        if let t = task.finishedAt { lines.append("finished:  \(time(t)) (ran \(ms(t &- (task.startedAt ?? t))))") }
        if let output = task.output, !output.isEmpty {
            lines.append("output (last \(output.utf8.count) bytes):")
            lines.append(output.hasSuffix("\n") ? String(output.dropLast()) : output)
        }
        return lines.joined(separator: "\n")
    }

    public static func taskTable(_ tasks: [TaskInfo]) -> String {
        var rows = [["ID", "STATE", "NODE", "EXIT", "ATTEMPTS", "COMMAND"]]
        for t in tasks {
            rows.append([t.id, t.state.rawValue, t.node ?? "-", t.exitCode.map(String.init) ?? (t.signal.map { "sig\($0)" } ?? "-"),
                         String(t.attempts), String(t.command.joined(separator: " ").prefix(60))])
        }
        return table(rows)
    }

    public static func nodeTable(_ nodes: [NodeInfo]) -> String {
        var rows = [["NAME", "STATE", "SLOTS", "FREE", "RUNNING", "DONE", "CONNECTED", "LAST SEEN", "LABELS"]]
        for n in nodes {
            rows.append([n.name, n.state.rawValue, String(n.slots), String(n.freeSlots), String(n.running), String(n.completed),
                         n.connected ? "yes" : "no", ms(n.lastSeenMsAgo) + " ago",
                         n.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")])
        }
        return table(rows)
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    public static func ms(_ value: Int64) -> String {
        value < 1000 ? "\(value) ms" : String(format: "%.1f s", Double(value) / 1000)
    }

    static func time(_ unixMs: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(unixMs) / 1000)
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}

/// Reads the cluster token: `--token-file F` first, then `SWARM_TOKEN`; nil when neither.
public func loadClusterToken(file: String?) throws -> ClusterToken? {
    if let file {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenError("cannot read token file '\(file)'")
        }
        let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else { throw TokenError("token file '\(file)' is empty") }
        return ClusterToken(secret)
    }
    if let secret = ProcessInfo.processInfo.environment["SWARM_TOKEN"], !secret.isEmpty {
        return ClusterToken(secret)
    }
    return nil
}

public struct TokenError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
