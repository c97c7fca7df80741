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

    /// Dependency ids, comma-separated: the first 10 and how many more (up to 1,000 each).
    static func dependencyList(_ ids: [String]) -> String {
        ids.count <= 10 ? ids.joined(separator: ", ") : ids.prefix(10).joined(separator: ", ") + " and \(ids.count - 10) more"
    }

    /// `swarm status`: one field per line; run measurements only when known.
    public static func taskDetail(_ task: TaskInfo) -> String {
        let m = task.metrics
        var lines = [
            "id:        \(task.id)",
            "state:     \(task.state.rawValue)",
        ]
        if !task.command.isEmpty || m.runtime == nil { lines.append("command:   \(task.command.joined(separator: " "))") }
        if let runtime = m.runtime { lines.append("runtime:   \(runtime)") }
        if let model = m.model { lines.append("model:     \(model)") }
        if let level = m.complexity { lines.append("complexity: \(level)\(m.complexityScore.map { " (score \($0))" } ?? "")") }
        lines.append("node:      \(task.node ?? "-")")
        lines.append("attempts:  \(task.attempts)")
        if task.priority != 0 { lines.append("priority:  \(task.priority)") }
        if let parent = task.parent { lines.append("parent:    \(parent)") }
        if let labels = task.labels, !labels.isEmpty { lines.append("labels:    \(pairs(labels))") }
        if let secrets = task.secretEnv, !secrets.isEmpty { lines.append("secrets:   \(pairs(secrets))") }
        if let after = task.after, !after.isEmpty { lines.append("after:     \(dependencyList(after))") }
        if let any = task.afterAny, !any.isEmpty { lines.append("after any: \(dependencyList(any))") }
        if task.state == .queued, let why = task.waitReason {
            lines.append("waiting:   \(why)\(task.unplaceable ? " (unplaceable: no registered worker can run it)" : "")")
        } else if task.unplaceable {
            lines.append("waiting:   unplaceable: no registered worker can run it")
        }
        if let code = task.exitCode { lines.append("exit code: \(code)") }
        if let signal = task.signal { lines.append("signal:    \(signal)") }
        if let reason = task.reason { lines.append("reason:    \(reason)") }
        if m.initialTimeoutMs != nil || m.finalTimeoutMs != nil {
            let initial = m.initialTimeoutMs.map(ms) ?? "-"
            let final = m.finalTimeoutMs.map(ms) ?? initial
            lines.append("timeout:   \(initial) initial, \(final) final, \(m.extensions) extension\(m.extensions == 1 ? "" : "s")")
        } else if m.extensions > 0 {
            lines.append("extensions: \(m.extensions)")
        }
        if m.silenceWarnings > 0 { lines.append("silence warnings: \(m.silenceWarnings)") }
        if m.outputBytes > 0 || m.outputBursts > 0 || m.timeToFirstOutputMs != nil {
            let first = m.timeToFirstOutputMs.map { ", first after \(ms($0))" } ?? ""
            lines.append("output:    \(m.outputBytes) bytes in \(m.outputBursts) burst\(m.outputBursts == 1 ? "" : "s")\(first)")
        }
        if let file = m.logFile { lines.append("log file:  \(file)") }
        lines.append("submitted: \(time(task.submittedAt))")
        if let t = task.startedAt { lines.append("started:   \(time(t)) (+\(ms(t &- task.submittedAt)))") }
        if let t = task.finishedAt { lines.append("finished:  \(time(t)) (ran \(ms(t &- (task.startedAt ?? t))))") }
        lines += workLines(task)
        lines += runLines(task)
        if let output = task.output, !output.isEmpty {
            lines.append("output (last \(output.utf8.count) bytes):")
            lines.append(output.hasSuffix("\n") ? String(output.dropLast()) : output)
        }
        return lines.joined(separator: "\n")
    }

    /// `swarm status`: what the run left (issue 11): uploaded artifacts (path, size; the git
    /// bundle marked), skipped ones with their reasons, a `repo` task's branch and commits.
    static func workLines(_ task: TaskInfo) -> [String] {
        var lines: [String] = []
        if let artifacts = task.artifacts, !artifacts.isEmpty {
            let total = artifacts.reduce(Int64(0)) { $0 &+ $1.size }
            lines.append("artifacts: \(artifacts.count) (\(total) bytes; swarm fetch \(task.id))")
            for a in artifacts {
                lines.append("  \(PeerText.safe(a.path))  \(a.size) bytes\(a.kind == "gitBundle" ? "  (git bundle: swarm fetch \(task.id) --git)" : "")")
            }
        }
        if let skipped = task.skippedArtifacts, !skipped.isEmpty {
            lines.append("skipped:   \(skipped.count) not uploaded")
            for s in skipped {
                lines.append("  \(PeerText.safe(s.path))\(s.size.map { "  \($0) bytes" } ?? ""): \(PeerText.safe(s.reason))")
            }
        }
        if let git = task.git {
            let commits = "\(git.commits) commit\(git.commits == 1 ? "" : "s")"
            lines.append("git:       branch \(git.branch), \(commits) (base \(git.base.prefix(12)), head \(git.head.prefix(12)))")
        }
        return lines
    }

    /// `swarm status`: every run kept (issue 13), oldest first: attempt, node, how it ended
    /// (exit code or signal, reason), when it started and how long it took. Nothing for a task
    /// that has not run.
    static func runLines(_ task: TaskInfo) -> [String] {
        guard let runs = task.runs, !runs.isEmpty else { return [] }
        let dropped = task.attempts - runs.count
        var lines = ["runs:      \(task.attempts)\(dropped > 0 ? " (the first \(dropped) not kept)" : "")"]
        var rows = [["ATTEMPT", "NODE", "STATE", "EXIT", "STARTED", "DURATION", "REASON"]]
        for run in runs {
            let exit = run.exitCode.map(String.init) ?? run.signal.map { "sig\($0)" } ?? "-"
            let started = (run.startedAt ?? run.placedAt).map(time) ?? "-"
            let reason = run.reason.map { PeerText.safe($0, limit: 120) } ?? "-"
            rows.append([String(run.attempt), PeerText.safe(run.node ?? "-", limit: 40), run.state.rawValue, exit, started,
                         run.durationMs.map(ms) ?? (run.state == .running ? "running" : "-"), reason])
        }
        lines += table(rows).split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        return lines
    }

    /// `swarm tasks`: a runtime task shows `runtime:NAME` for its command; a task no worker
    /// can ever run gets a NOTE.
    public static func taskTable(_ tasks: [TaskInfo]) -> String {
        var rows = [["ID", "STATE", "NODE", "MODEL", "EXIT", "ATTEMPTS", "COMMAND", "NOTE"]]
        for t in tasks {
            let what = t.command.isEmpty ? t.metrics.runtime.map { "runtime:\($0)" } ?? "-" : t.command.joined(separator: " ")
            let note = t.unplaceable ? "unplaceable\(t.waitReason.map { ": \($0)" } ?? "")" : ""
            rows.append([t.id, t.state.rawValue, t.node ?? "-", t.metrics.model ?? "-",
                         t.exitCode.map(String.init) ?? (t.signal.map { "sig\($0)" } ?? "-"),
                         String(t.attempts), String(what.prefix(60)), note])
        }
        return table(rows)
    }

    /// `swarm nodes`: RUNTIMES lists each runtime with its health (`claude:ok`, `codex:FAIL`);
    /// COMMANDS says whether plain commands may run there.
    public static func nodeTable(_ nodes: [NodeInfo]) -> String {
        var rows = [["NAME", "STATE", "SLOTS", "FREE", "RUNNING", "HELD", "DONE", "CONNECTED", "LAST SEEN", "RUNTIMES", "COMMANDS", "LABELS"]]
        for n in nodes {
            let runtimes = n.runtimes.isEmpty ? "-" : n.runtimes.map { "\($0.name):\($0.healthy ? "ok" : "FAIL")" }.joined(separator: ",")
            rows.append([n.name, n.state.rawValue, String(n.slots), String(n.freeSlots), String(n.running),
                         n.prefetched.map(String.init) ?? "-", String(n.completed),
                         n.connected ? "yes" : "no", ms(n.lastSeenMsAgo) + " ago", runtimes, n.allowsCommands ? "yes" : "no",
                         pairs(n.labels)])
        }
        return table(rows)
    }

    /// `submit --file`: one line per task, `ID` or `ID (already existed)`.
    public static func batchLines(ids: [String], existing: [String]) -> String {
        let old = Set(existing)
        return ids.map { old.contains($0) ? "\($0) (already existed)" : $0 }.joined(separator: "\n")
    }

    /// `swarm cancel`: `ID cancelled`, or the state the task is in while it is being killed.
    public static func cancelled(_ task: TaskInfo) -> String {
        switch task.state {
        case .cancelled: "\(task.id) cancelled"
        case .running: "\(task.id) running, being killed"
        default: "\(task.id) \(task.state.rawValue)"
        }
    }

    static func pairs(_ map: [String: String]) -> String {
        map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
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
/// A token file holds UTF-8 text of at most `maxTokenFileBytes` bytes (blanks and newlines
/// around it dropped); anything else is refused with a one-line reason. (Bytes that are not
/// UTF-8 were once read as U+FFFD each, so two different binary files made the same token,
/// and a file of random bytes lost most of its entropy.)
public func loadClusterToken(file: String?) throws -> ClusterToken? {
    if let file {
        let data = try readTokenFile(file)
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenError("token file '\(file)' is not UTF-8 text (a token of random bytes? write it as text: head -c 32 /dev/urandom | base64)")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else { throw TokenError("token file '\(file)' is empty") }
        return ClusterToken(secret)
    }
    return try clusterToken(environment: ProcessInfo.processInfo.environment["SWARM_TOKEN"])
}

/// The token `SWARM_TOKEN` holds, read as a token file's text is: blanks and newlines around it
/// dropped (`export SWARM_TOKEN="$(cat f) "` or a pasted CR LF once made a token no HTTP client
/// could send, since HTTP drops blanks at a header's end, and one unequal to the same file's),
/// nil when unset or empty. Only blanks is refused with one line: it was taken as a token of
/// spaces, which let a scheduler listen off loopback behind a token anyone can guess.
public func clusterToken(environment value: String?) throws -> ClusterToken? {
    guard let value, !value.isEmpty else { return nil }
    let secret = value.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !secret.isEmpty else {
        throw TokenError("SWARM_TOKEN holds only blanks: set it to the cluster token, or unset it")
    }
    return ClusterToken(secret)
}

/// The most bytes a token file may hold (a token is a few dozen).
public let maxTokenFileBytes = 4096

/// The bytes of token file `path`, read up to one byte past `maxTokenFileBytes` (a pipe, as
/// `--token-file <(...)`, is read too; `/dev/zero` is not read forever).
private func readTokenFile(_ path: String) throws -> Data {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw TokenError("cannot read token file '\(path)'") }
    defer { try? handle.close() }
    var data = Data()
    do {
        while data.count <= maxTokenFileBytes, let piece = try handle.read(upToCount: maxTokenFileBytes + 1 - data.count), !piece.isEmpty {
            data.append(piece)
        }
    } catch {
        throw TokenError("cannot read token file '\(path)': \(error.localizedDescription)")
    }
    guard data.count <= maxTokenFileBytes else {
        throw TokenError("token file '\(path)' holds more than \(maxTokenFileBytes) bytes: is it the right file?")
    }
    return data
}

/// The token and client name to connect with: the cluster token (`--token-file`, then
/// `SWARM_TOKEN`) as `client`; else, inside a task (`SWARM_TASK_TOKEN` and `SWARM_TASK_ID` set
/// by its worker), the task's own credential as `task:ID`.
public func loadClientCredentials(file: String?) throws -> (token: ClusterToken?, name: String) {
    if let token = try loadClusterToken(file: file) { return (token, "client") }
    let env = ProcessInfo.processInfo.environment
    if let credential = env["SWARM_TASK_TOKEN"], !credential.isEmpty, let id = env["SWARM_TASK_ID"], !id.isEmpty {
        return (ClusterToken(credential), ClusterToken.taskNamePrefix + id)
    }
    return (nil, "client")
}

public struct TokenError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
