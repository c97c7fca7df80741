import Foundation
import Testing

/// Fake agents (shell commands) for the `--repo` end-to-end tests, on loopback and across
/// network namespaces: each works in its own worktree of one bare repository, on branch
/// `swarm/ID`; their branches are then fetched into one clone and merged, as the README's
/// "Getting work in and out" example does.
enum GitAgents {
    /// What each agent does in its worktree, and the commit subjects `base..swarm/ID` must
    /// have afterwards (newest first). `agent-3` leaves a new file and an edit uncommitted:
    /// the worker commits them. `agent-2` gets an input (`notes/brief.txt`), which the worker
    /// leaves out of its commit. `idle` changes nothing: no commit, no bundle.
    static let agents: [(id: String, script: String, subjects: [String])] = [
        ("agent-1", "printf 'one\\n' > a1.txt && git add a1.txt && git commit -qm 'agent-1: add a1'"
            + " && printf 'more\\n' >> a1.txt && git commit -qam 'agent-1: extend a1'",
         ["agent-1: extend a1", "agent-1: add a1"]),
        ("agent-2", "cp notes/brief.txt a2.txt && git add a2.txt && git commit -qm 'agent-2: add a2'",
         ["agent-2: add a2"]),
        ("agent-3", "printf 'three\\n' > a3.txt && git add a3.txt && git commit -qm 'agent-3: add a3'"
            + " && printf 'draft\\n' > a3-draft.txt && printf 'edited by agent-3\\n' >> README.md",
         ["uncommitted changes of task agent-3", "agent-3: add a3"]),
        ("idle", "git log -1 --format=%H > /dev/null", []),
    ]
    static var ids: [String] { agents.map(\.id) }

    /// Submits every agent in one batch with `--repo bare` and waits for all; `swarm` runs a
    /// swarm command (adding the scheduler's address). Returns the workers they ran on.
    static func run(bare: String, dir: String, _ swarm: ([String]) throws -> ProcessHarness.RunResult) throws -> Set<String> {
        try "two\n".write(toFile: "\(dir)/brief.txt", atomically: true, encoding: .utf8)
        let lines = try agents.map { agent in
            // The pause makes the agents overlap, so both workers take some.
            let script = "sleep 0.5; echo \"on $SWARM_NODE, branch $(git rev-parse --abbrev-ref HEAD)\"; " + agent.script
            var task: [String: Any] = ["id": agent.id, "command": ["sh", "-c", script], "repo": bare,
                                       "env": WorkspaceFixtures.gitIdentity]
            if agent.id == "agent-2" { task["inputs"] = ["\(dir)/brief.txt:notes/brief.txt"] }
            return try WorkspaceFixtures.jsonLine(task)
        }
        let file = "\(dir)/agents.jsonl"
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let submit = try swarm(["submit", "--file", file])
        #expect(submit.status == 0, "submit: \(submit.stderr)")
        let wait = try swarm(["wait", "--json", "--timeout", "45"] + ids)
        #expect(wait.status == 0, "wait: \(wait.stdout) \(wait.stderr)")
        let tasks = (try? JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]]) ?? []
        var nodes: Set<String> = []
        for task in tasks {
            let id = task["id"] as? String ?? "?"
            #expect(task["state"] as? String == "succeeded", "\(id): \(task["reason"] ?? "") \(task["output"] ?? "")")
            // A multi-task wait leaves `output` out; status has it.
            let status = try swarm(["status", "--json", id])
            let info = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]) ?? [:]
            #expect((info["output"] as? String)?.contains("branch swarm/\(id)") == true, "\(id): \(info["output"] ?? "")")
            if let node = task["node"] as? String { nodes.insert(node) }
        }
        return nodes
    }

    /// Clones `bare` into `dir/clone`, fetches every agent's branch into it with `swarm fetch
    /// ID --git --into`, checks each branch's commits against `swarm status` and the plan,
    /// and merges the branches into `main`.
    static func fetchAndMerge(bare: String, base: String, dir: String,
                              _ swarm: ([String]) throws -> ProcessHarness.RunResult) throws {
        let clone = "\(dir)/clone"
        let cloned = try WorkspaceFixtures.git(["clone", "--quiet", bare, clone], in: dir)
        try #require(cloned.status == 0, "clone: \(cloned.stderr)")
        for agent in agents {
            let status = try swarm(["status", "--json", agent.id])
            let info = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            let outcome = try #require(info["git"] as? [String: Any], "\(agent.id) has no git outcome: \(status.stdout)")
            #expect(outcome["branch"] as? String == "swarm/\(agent.id)")
            #expect(outcome["base"] as? String == base)
            #expect(outcome["commits"] as? Int == agent.subjects.count, "\(agent.id): \(outcome)")

            let fetch = try swarm(["fetch", agent.id, "--git", "--into", clone])
            if agent.subjects.isEmpty {
                // Nothing to bring back: exit 1 and one line saying so; no branch made.
                #expect(fetch.status == 1, "\(agent.id): \(fetch.stdout) \(fetch.stderr)")
                #expect(fetch.stderr.contains("made no commits"), "\(fetch.stderr)")
                #expect(try WorkspaceFixtures.git(["rev-parse", "--verify", "--quiet", "swarm/\(agent.id)"], in: clone).status != 0)
                continue
            }
            #expect(fetch.status == 0, "fetch --git \(agent.id): \(fetch.stderr)")
            let head = try WorkspaceFixtures.git(["rev-parse", "swarm/\(agent.id)"], in: clone).line
            #expect(head == outcome["head"] as? String)
            let subjects = try WorkspaceFixtures.git(["log", "--format=%s", "\(base)..swarm/\(agent.id)"], in: clone).stdout
                .split(separator: "\n").map(String.init)
            #expect(subjects == agent.subjects, "\(agent.id)")
        }
        // The worker's commit has exactly what the agent left, and nothing of swarm's own;
        // an input stays out of the branch.
        let files = try WorkspaceFixtures.git(["ls-tree", "-r", "--name-only", "swarm/agent-3"], in: clone).stdout
        #expect(files == "README.md\na3-draft.txt\na3.txt\nlib.c\n")
        let withInput = try WorkspaceFixtures.git(["ls-tree", "-r", "--name-only", "swarm/agent-2"], in: clone).stdout
        #expect(withInput == "README.md\na2.txt\nlib.c\n")
        #expect(try WorkspaceFixtures.git(["show", "swarm/agent-3:a3-draft.txt"], in: clone).stdout == "draft\n")
        #expect(try WorkspaceFixtures.git(["show", "swarm/agent-3:README.md"], in: clone).stdout == "# demo\nedited by agent-3\n")

        // Merged back: every agent's work on main.
        let merge = try WorkspaceFixtures.git(["merge", "--quiet", "--no-edit", "swarm/agent-1", "swarm/agent-2", "swarm/agent-3"], in: clone)
        #expect(merge.status == 0, "merge: \(merge.stdout) \(merge.stderr)")
        for (file, text) in [("a1.txt", "one\nmore\n"), ("a2.txt", "two\n"), ("a3.txt", "three\n"), ("a3-draft.txt", "draft\n")] {
            #expect((try? String(contentsOfFile: "\(clone)/\(file)", encoding: .utf8)) == text, "\(file) after the merge")
        }
    }
}
