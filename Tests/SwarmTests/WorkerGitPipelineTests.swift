import Foundation
import Testing
import SwarmProtocol
@testable import SwarmNode
@testable import SwarmUV

/// `--repo` tasks in a real worker (issue 11 item 4): fake agents (shell commands) commit in
/// their worktrees; their branches come back as `gitBundle` artifacts uploaded before the
/// result, and the worktrees go once the scheduler acknowledged the results.
@Suite(.serialized) struct WorkerGitPipelineTests {
    @Test func fakeAgentsCommitInWorktreesAndEveryBranchFetchesIntoOneRepository() throws {
        let fixture = GitFixture()
        try WorkerPipelineTests.withWorker(slots: 4) { loop, worker, scheduler, blobs, dir in
            let agents: [(id: String, script: String)] = [
                ("g1", "echo one > one.txt && git add one.txt && git commit -qm 'agent g1'"),
                ("g2", "echo two > two.txt && git add two.txt && git commit -qm 'agent g2' && echo more >> a.txt"),
                ("g3", "echo three > three.txt"),
                ("g4", "true"),
            ]
            for agent in agents {
                var spec = TaskSpec(command: ["sh", "-c", "export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@a GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@a; \(agent.script)"])
                spec.repo = fixture.origin
                if agent.id == "g4" { spec.ref = "feature" }
                WorkerPipelineTests.assign(scheduler, agent.id, spec)
            }
            #expect(runLoop(loop, timeoutMs: 60_000) { agents.allSatisfy { scheduler.result($0.id) != nil } })
            let git = try #require(worker.workspace.git)
            #expect(git.cloneCount == 1, "four tasks of one repository: one clone")
            let clone = fixture.root + "/merged"
            shell("git clone -q \(fixture.origin) \(clone)")
            let main = fixture.rev("main")
            let expected: [String: [String]] = [
                "g1": ["agent g1"], "g2": ["uncommitted changes of task g2", "agent g2"], "g3": ["uncommitted changes of task g3"],
            ]
            for agent in agents {
                let result = try #require(scheduler.result(agent.id))
                #expect(result.state == .succeeded, "\(agent.id): \(result.reason ?? "")")
                let outcome = try #require(result.git)
                #expect(outcome.branch == "swarm/\(agent.id)")
                guard let messages = expected[agent.id] else {
                    // Nothing new: no bundle, the branch is where the ref was.
                    #expect(outcome.commits == 0 && outcome.base == fixture.rev("feature") && outcome.head == outcome.base)
                    #expect(result.artifacts?.isEmpty != false)
                    continue
                }
                #expect(outcome.base == main && outcome.commits == messages.count)
                let bundle = try #require(result.artifacts?.first { $0.kind == "gitBundle" })
                #expect(bundle.path == "swarm-\(agent.id).bundle")
                let uploaded = try #require(blobs.uploads.first { $0.sha256 == bundle.sha256 })
                shell("git -C \(clone) fetch -q \(uploaded.path) swarm/\(agent.id):swarm/\(agent.id)")
                #expect(shell("git -C \(clone) log --format=%s \(main)..swarm/\(agent.id)").split(separator: "\n").map(String.init) == messages)
                #expect(shell("git -C \(clone) rev-parse swarm/\(agent.id)") == outcome.head)
                // The context file the worker writes into the task directory is not committed.
                #expect(!shell("git -C \(clone) ls-tree -r --name-only swarm/\(agent.id)").contains(".swarm"))
            }
            #expect(shell("git -C \(clone) show swarm/g2:a.txt") == "one\nmore")
            // Held by the scheduler: worktrees and branches go.
            for agent in agents { scheduler.connection?.send(.resultAck(.init(id: agent.id, attempt: 1))) }
            let mirror = git.mirrorPath(of: fixture.origin)
            #expect(runLoop(loop, timeoutMs: 30_000) {
                agents.allSatisfy { !FileManager.default.fileExists(atPath: "\(dir)/work/\($0.id)") } && git.isIdle
            })
            #expect(shell("git --git-dir \(mirror) for-each-ref refs/heads/") == "")
        }
    }

    @Test func aRepositoryThatCannotBeClonedEndsTheRunSpawnFailedNamingItAndTheWorker() throws {
        let fixture = GitFixture()
        try WorkerPipelineTests.withWorker { loop, _, scheduler, _, _ in
            var spec = TaskSpec(command: ["true"])
            spec.repo = fixture.root + "/missing.git"
            WorkerPipelineTests.assign(scheduler, "nog", spec)
            var bad = TaskSpec(command: ["true"])
            bad.repo = fixture.origin
            bad.ref = "no-such-branch"
            WorkerPipelineTests.assign(scheduler, "noref", bad)
            #expect(runLoop(loop, timeoutMs: 30_000) { scheduler.result("nog") != nil && scheduler.result("noref") != nil })
            let result = try #require(scheduler.result("nog"))
            #expect(result.state == .spawnFailed)
            #expect(result.reason?.hasPrefix("git worktree of \(fixture.root)/missing.git on worker w7: git clone of \(fixture.root)/missing.git failed: ") == true, "\(result.reason ?? "")")
            #expect(scheduler.result("noref")?.reason?.contains("ref no-such-branch is not a branch, tag or commit") == true)
            #expect(scheduler.started.isEmpty)
        }
    }

    @Test func aTaskKilledWhileItsWorktreeIsMadeNeverRunsAndItsWorktreeGoes() throws {
        let fixture = GitFixture()
        try WorkerPipelineTests.withWorker { loop, worker, scheduler, _, dir in
            // A slow git: the kill arrives while the worktree is being made.
            let slow = fixture.root + "/slow-git"
            try writeExecutable("#!/bin/sh\nsleep 0.1\nexec git \"$@\"\n", to: slow)
            let git = try #require(worker.workspace.git)
            git.gitPath = slow
            var spec = TaskSpec(command: ["sh", "-c", "touch \(dir)/spawned"])
            spec.repo = fixture.origin
            WorkerPipelineTests.assign(scheduler, "k1", spec)
            #expect(runLoop(loop) { !git.isIdle })
            scheduler.connection?.send(.kill(.init(id: "k1", attempt: 1, reason: "cancelled by user")))
            #expect(runLoop(loop) { scheduler.result("k1") != nil })
            #expect(scheduler.result("k1")?.state == .cancelled)
            #expect(runLoop(loop, timeoutMs: 30_000) { git.isIdle && git.preparedIds.isEmpty && git.cloneCount == 1 })
            #expect(!FileManager.default.fileExists(atPath: dir + "/work/k1/a.txt"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/spawned"))
            #expect(scheduler.started.isEmpty)
        }
    }
}
