import Foundation
import SwarmProtocol

/// `swarm tasks --tree`: a tree listing (preorder entries with their depth) as an indented
/// table like `ps --forest`, or as nested JSON. Both read entries one after the other, so a
/// listing that starts in the middle of a tree (`--cursor`) renders too: its first entries
/// stand at the top.
public enum TreeOutput {
    /// Deeper entries are drawn at this indentation, with their depth written out.
    public static let maxDrawnDepth = 32

    /// What is said about a task besides its place in the tree: each string becomes a part of
    /// its line (`TREE` column, after the id): its dependencies (`after: a,b`, `after-any: c`).
    public static func edges(_ task: TaskInfo) -> [String] {
        var parts: [String] = []
        if let after = task.after, !after.isEmpty { parts.append("after: " + after.joined(separator: ",")) }
        if let any = task.afterAny, !any.isEmpty { parts.append("after-any: " + any.joined(separator: ",")) }
        return parts
    }

    /// One line per entry: `STATE  NODE  EXIT  TREE`, the tree column indented by depth
    /// (` \_ ` before a child, as `ps --forest`), with the id, then `edges`.
    public static func table(_ entries: [TreeEntry]) -> String {
        var rows = [["STATE", "NODE", "EXIT", "TREE"]]
        let base = entries.first?.depth ?? 0
        for entry in entries {
            let t = entry.task
            let exit = t.exitCode.map(String.init) ?? t.signal.map { "sig\($0)" } ?? "-"
            let line = ([indent(entry.depth - base) + t.id] + edges(t)).joined(separator: "  ")
            rows.append([t.state.rawValue, PeerText.safe(t.node ?? "-", limit: 40), exit, line])
        }
        return Output.table(rows)
    }

    /// ` \_ ` under its parent, four columns per level; past `maxDrawnDepth` levels the
    /// depth is written out instead of drawn.
    static func indent(_ depth: Int) -> String {
        guard depth > 0 else { return "" }
        if depth > maxDrawnDepth {
            return String(repeating: "    ", count: maxDrawnDepth - 1) + "(depth \(depth)) \\_ "
        }
        return String(repeating: "    ", count: depth - 1) + " \\_ "
    }

    /// The entries as nested JSON: an array of the top entries, each node
    /// `{"task": TASK, "children": [NODE, ...]}`, TASK as in `swarm wait` on several tasks (a
    /// summary: every key, `output` null, long text cut). Written without recursion, one node
    /// per line indented by depth (capped), so a deep tree cannot exhaust the stack.
    public static func json(_ entries: [TreeEntry]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = "["
        // Depths of the nodes still open, innermost last, and whether each has a child yet.
        var open: [(depth: Int, hasChild: Bool)] = []
        var topCount = 0
        for entry in entries {
            while let last = open.last, last.depth >= entry.depth {
                out += "]}"
                open.removeLast()
            }
            if open.isEmpty {
                out += topCount == 0 ? "\n" : ",\n"
                topCount += 1
            } else {
                out += open[open.count - 1].hasChild ? ",\n" : "\n"
                open[open.count - 1].hasChild = true
            }
            let task = (try? encoder.encode(entry.task)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
            out += String(repeating: "  ", count: min(open.count + 1, maxDrawnDepth)) + "{\"task\": " + task + ", \"children\": ["
            open.append((entry.depth, false))
        }
        out += String(repeating: "]}", count: open.count)
        return out + (topCount == 0 ? "]" : "\n]")
    }

    /// `swarm cancel --recursive`: how many tasks of the tree the cancel reached.
    public static func cancelled(_ reply: Message.TreeCancelled) -> String {
        let stopped = reply.cancelled + reply.killing
        var line = "\(reply.id): cancelled \(stopped) task\(stopped == 1 ? "" : "s") of its tree of \(reply.total)"
        line += " (\(reply.cancelled) queued, now cancelled; \(reply.killing) running, being killed)"
        if reply.alreadyEnded > 0 { line += "; \(reply.alreadyEnded) had already ended" }
        if let busy = reply.alreadyCancelling, busy > 0 { line += "; \(busy) already being cancelled" }
        return line
    }
}
