import Foundation
import Testing
import SwarmProtocol

/// Task trees with real processes (issue 13 items 5 and 6): an agent on 3 workers starts a
/// tree of 3 levels through its own credential (`swarm submit --parent $SWARM_TASK_ID`);
/// `swarm cancel --recursive` stops all of it in one request and says how many, no process of
/// the tree is left (the pids the tasks wrote, checked with `kill -0`), and what the dying
/// agents try to submit on SIGTERM is refused.
@Suite(.serialized) struct TaskTreeEndToEndTests {
    typealias E = EndToEndTests

    /// `agent.sh LEVEL DIR MARKER`: writes its pid and its sleep's pid, starts two children
    /// (levels 0 and 1), then sleeps. On SIGTERM it tries to submit one more child (which
    /// must be refused) and exits.
    static func agentScript(dir: String) -> String {
        let swarm = ProcessHarness.swarmBinary
        return """
            level=$1; dir=$2
            echo $$ > "$dir/pids/$SWARM_TASK_ID"
            trap '\(swarm) submit --parent "$SWARM_TASK_ID" -- sleep 600 >> "$dir/escaped.log" 2>> "$dir/refused.log"; exit 143' TERM
            if [ "$level" -lt 2 ]; then
              for i in 1 2; do
                \(swarm) submit --parent "$SWARM_TASK_ID" --id "$SWARM_TASK_ID.$i" -- sh "$dir/agent.sh" $((level + 1)) "$dir" "$3" >> "$dir/submitted.log" 2>&1
              done
            fi
            sleep 600 &
            echo $! > "$dir/pids/$SWARM_TASK_ID.sleep"
            wait
            """
    }

    static func treeJSON(_ harness: ProcessHarness, _ client: [String], _ id: String) throws -> [[String: Any]] {
        let r = try harness.run(["tasks", "--tree", id, "--json"] + client)
        #expect(r.status == 0, "\(r.stderr)")
        let roots = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "not JSON: \(r.stdout)")
        // Flattened, preorder.
        var all: [[String: Any]] = []
        var stack = roots.reversed() as [[String: Any]]
        while let node = stack.popLast() {
            all.append(try #require(node["task"] as? [String: Any]))
            stack += ((node["children"] as? [[String: Any]]) ?? []).reversed()
        }
        return all
    }

    @Test func aRecursiveCancelStopsAThreeLevelTreeOnThreeWorkers() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let tokenFile = "\(harness.dir)/token"
        try "tree-secret\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let address = try E.startScheduler(harness, extra: ["--token-file", tokenFile])
        for i in 1...3 {
            try harness.start("worker-\(i)", ["worker", "--scheduler", address, "--slots", "3", "--name", "w\(i)",
                                              "--data-dir", "\(harness.dir)/w\(i)", "--token-file", tokenFile])
        }
        let client = ["--scheduler", address, "--token-file", tokenFile]
        _ = try E.waitForNodes(harness, address, count: 3, extra: ["--token-file", tokenFile])
        let dir = "\(harness.dir)/tree"
        try FileManager.default.createDirectory(atPath: "\(dir)/pids", withIntermediateDirectories: true)
        try Self.agentScript(dir: dir).write(toFile: "\(dir)/agent.sh", atomically: true, encoding: .utf8)

        let submit = try harness.run(["submit", "--id", "root"] + client + ["--", "sh", "\(dir)/agent.sh", "0", dir, harness.marker])
        #expect(submit.status == 0, "\(submit.stderr)")
        // 1 + 2 + 4 tasks, each with its shell and its sleep.
        var pids: [String] = []
        for _ in 0..<600 {
            pids = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/pids")) ?? []
            if pids.count == 14 { break }
            usleep(50_000)
        }
        #expect(pids.count == 14, "pid files: \(pids.sorted()); \((try? String(contentsOfFile: "\(dir)/submitted.log", encoding: .utf8)) ?? "")")
        let running = try Self.treeJSON(harness, client, "root")
        #expect(running.map { $0["id"] as? String ?? "?" } == ["root", "root.1", "root.1.1", "root.1.2", "root.2", "root.2.1", "root.2.2"])
        #expect(running.allSatisfy { $0["state"] as? String == "running" })
        #expect(Set(running.compactMap { $0["node"] as? String }).count == 3, "nodes: \(running.map { $0["node"] ?? "-" })")
        let text = try harness.run(["tasks", "--tree", "root"] + client)
        #expect(text.stdout.split(separator: "\n").contains { $0.hasSuffix("     \\_ root.2.2") }, "\(text.stdout)")

        let cancel = try harness.run(["cancel", "--recursive", "root"] + client)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(cancel.stdout == "root: cancelled 7 tasks of its tree of 7 (0 queued, now cancelled; 7 running, being killed)\n")

        let wait = try harness.run(["wait", "--recursive", "root", "--timeout", "30"] + client)
        #expect(wait.status == 1, "\(wait.stderr)")
        #expect(wait.stdout.split(separator: "\n").count == 7 && wait.stdout.split(separator: "\n").allSatisfy { $0.contains(" cancelled") },
                "\(wait.stdout)")
        // No process of the tree is left: every pid it wrote is gone.
        var alive: [String] = []
        for _ in 0..<200 {
            alive = pids.filter { name in
                guard let text = try? String(contentsOfFile: "\(dir)/pids/\(name)", encoding: .utf8),
                      let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
                return kill(pid, 0) == 0 && !processGone(pid)
            }
            if alive.isEmpty { break }
            usleep(50_000)
        }
        #expect(alive.isEmpty, "still alive: \(alive)")
        // What the dying agents tried to submit was refused; the tree is as it was.
        let refused = (try? String(contentsOfFile: "\(dir)/refused.log", encoding: .utf8)) ?? ""
        #expect(refused.contains("is being cancelled: its credential may not submit tasks"), "\(refused)")
        #expect(((try? String(contentsOfFile: "\(dir)/escaped.log", encoding: .utf8)) ?? "").isEmpty)
        let after = try Self.treeJSON(harness, client, "root")
        #expect(after.count == 7 && after.allSatisfy { $0["state"] as? String == "cancelled" })
        // Nor may anyone else add to it.
        let late = try harness.run(["submit", "--parent", "root.1"] + client + ["--", "true"])
        #expect(late.status == 2 && late.stderr.contains("parent 'root.1' was cancelled"), "\(late.stderr)")
    }

    /// `wait --recursive` returns only once the task and every descendant have ended, also a
    /// child submitted by a descendant after the wait began; it exits as `wait` does.
    @Test func aRecursiveWaitWaitsForChildrenSubmittedWhileItWaits() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try RetryEndToEndTests.startCluster(harness, workers: 2)
        let swarm = ProcessHarness.swarmBinary
        // root starts c at once; c, 1 s later, starts g (which fails), and ends. No token here:
        // a task names its parent itself.
        let script = """
            if [ "$SWARM_TASK_ID" = root ]; then \(swarm) submit --parent root --id c -- sh "$0" "$1"; exit 0; fi
            if [ "$SWARM_TASK_ID" = c ]; then sleep 1; \(swarm) submit --parent c --id g -- sh -c 'sleep 0.5; exit 3'; exit 0; fi
            """
        let file = "\(harness.dir)/late.sh"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        let submit = try harness.run(["submit", "--scheduler", address, "--id", "root", "--", "sh", file, harness.marker])
        #expect(submit.status == 0, "\(submit.stderr)")
        let wait = try harness.run(["wait", "--recursive", "root", "--scheduler", address, "--timeout", "30"])
        #expect(wait.status == 1, "\(wait.stderr)")
        #expect(wait.stdout == "root succeeded (exit 0)\nc succeeded (exit 0)\ng failed (exit 3)\n")
        // A timeout reports the tree as it is, 124.
        _ = try harness.run(["submit", "--scheduler", address, "--id", "slow", "--", "sleep", "30"])
        let short = try harness.run(["wait", "--recursive", "slow", "--scheduler", address, "--timeout", "0.5"])
        #expect(short.status == 124 && short.stdout == "slow running (still pending)\n", "\(short.stdout)")
        #expect(short.stderr.contains("waiting for the tree of slow: 1 still pending (slow), 0 ended"))
        _ = try harness.run(["cancel", "--recursive", "slow", "--scheduler", address])
    }

    /// Tree options are checked before anything is sent: one line, exit 64.
    @Test func treeOptionsAreCheckedBeforeAnythingIsSent() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let none = ["--scheduler", "127.0.0.1:1"]
        CLIValidationTests.expectUsageError(try harness.run(["tasks", "root"] + none), "tasks ID", containing: "only with --tree")
        CLIValidationTests.expectUsageError(try harness.run(["tasks", "--tree", "--state", "running"] + none), "tasks --tree --state",
                                            containing: "--tree takes no filter")
        CLIValidationTests.expectUsageError(try harness.run(["tasks", "--tree", "bad id"] + none), "tasks --tree 'bad id'",
                                            containing: "may contain only")
        CLIValidationTests.expectUsageError(try harness.run(["wait", "--recursive", "a", "b"] + none), "wait --recursive a b",
                                            containing: "--recursive takes one task id, got 2")
    }
}
