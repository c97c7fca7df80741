import Foundation
import Logging
import Testing
@testable import SwarmNode
@testable import SwarmProtocol
@testable import SwarmUV

/// Runs `script` with sh in `dir`, synchronously (test set-up only); returns stdout, trimmed.
/// Fails the test on a non-zero exit.
@discardableResult
func shell(_ script: String, in dir: String? = nil, env: [String: String] = [:]) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    if let dir { process.currentDirectoryURL = URL(fileURLWithPath: dir) }
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in ["GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"] { environment[k] = v }
    for (k, v) in env { environment[k] = v }
    process.environment = environment
    let out = Pipe()
    process.standardOutput = out
    let err = Pipe()
    process.standardError = err
    try! process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(script): \(String(decoding: errors, as: UTF8.self))")
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A temporary directory with a bare "origin" repository (main: 2 commits, tag v1 on the
/// first, branch feature with one more commit), removed at the end.
final class GitFixture {
    let root: String
    let origin: String
    let workRoot: String
    let dataDir: String
    init(files: Int = 0) {
        root = NSTemporaryDirectory() + "swarm-git-\(getpid())-\(UUID().uuidString.prefix(8))"
        origin = root + "/origin.git"
        // The task directories sit inside another repository: git must never mistake it for theirs.
        workRoot = root + "/outer/work"
        dataDir = root + "/data"
        shell("""
            set -e
            mkdir -p \(root)/outer/work \(root)/data && git -C \(root)/outer init -q
            git init -q --bare -b main \(origin)
            git clone -q \(origin) \(root)/scratch 2>/dev/null
            cd \(root)/scratch
            echo one > a.txt && git add a.txt && git commit -qm one && git tag v1
            i=0; while [ $i -lt \(files) ]; do mkdir -p d$((i / 100)); echo $i > d$((i / 100))/f$i; i=$((i + 1)); done
            echo two > b.txt && git add -A && git commit -qm two
            git checkout -qb feature && echo f > f.txt && git add f.txt && git commit -qm feat && git checkout -q main
            git push -q origin main feature v1
            """)
    }
    func rev(_ ref: String) -> String { shell("git -C \(origin) rev-parse \(ref)") }
    deinit { try? FileManager.default.removeItem(atPath: root) }
}

@Suite(.serialized) struct GitWorkspaceTests {
    /// Calls `body` with a fresh loop and workspace, then checks no handle leaked.
    /// `now`: the workspace's clock (ms) for the freshness of mirror updates; the loop's by default.
    func withWorkspace(_ fixture: GitFixture, now: (() -> Int64)? = nil, _ body: (EventLoop, GitWorkspace) throws -> Void) throws {
        let loop = EventLoop()
        let git = GitWorkspace(loop: loop, dataDir: fixture.dataDir, logger: Logger(label: "test"), workerName: "w1", now: now)
        try body(loop, git)
        try closeLoopCheckingLeaks(loop)
    }

    func prepare(_ loop: EventLoop, _ git: GitWorkspace, _ id: String, _ repo: String, ref: String? = nil, dir: String) -> Result<String, GitFailure>? {
        var outcome: Result<String, GitFailure>?
        git.prepare(id: id, repo: repo, ref: ref, dir: dir) { outcome = $0 }
        #expect(runLoop(loop, timeoutMs: 30_000) { outcome != nil })
        return outcome
    }

    func collect(_ loop: EventLoop, _ git: GitWorkspace, _ id: String, dir: String, base: String, excluding: [String] = [],
                 bundle: String) -> Result<(GitOutcome, Bool), GitFailure>? {
        var outcome: Result<(GitOutcome, Bool), GitFailure>?
        git.collect(id: id, dir: dir, base: base, excluding: excluding, bundlePath: bundle) { outcome = $0 }
        #expect(runLoop(loop, timeoutMs: 30_000) { outcome != nil })
        return outcome
    }

    @Test func childCommandBoundsOutputAndKillsItsGroupOnTimeout() throws {
        let loop = EventLoop()
        let env = ["PATH=/usr/bin:/bin"]
        var result: ChildCommandResult?
        ChildCommand.run(loop: loop, argv: ["sh", "-c", "head -c 200000 /dev/zero; echo 'fatal: it broke' >&2; exit 3"],
                         environment: env, timeoutMs: 10_000, maxOutputBytes: 1_000) { result = $0 }
        #expect(runLoop(loop, timeoutMs: 10_000) { result != nil })
        #expect(result?.stdout.count == 1_000)
        #expect(result?.droppedBytes == 199_000)
        #expect(result?.status == 3)
        #expect(result?.failureLine == "fatal: it broke")
        // A child (and its own child) still running at the limit: the whole group is killed.
        let marker = NSTemporaryDirectory() + "swarm-child-\(getpid())"
        result = nil
        ChildCommand.run(loop: loop, argv: ["sh", "-c", "(sleep 1; touch \(marker)) & sleep 30"], environment: env, timeoutMs: 200) { result = $0 }
        #expect(runLoop(loop, timeoutMs: 10_000) { result != nil })
        #expect(result?.timedOut == true)
        #expect(result?.failureLine == "timed out")
        result = nil
        ChildCommand.run(loop: loop, argv: ["no-such-program-\(getpid())"], environment: env, timeoutMs: 1_000) { result = $0 }
        #expect(runLoop(loop, timeoutMs: 10_000) { result != nil })
        #expect(result?.spawnError?.hasPrefix("command not found") == true)
        try closeLoopCheckingLeaks(loop)
        Thread.sleep(forTimeInterval: 1.3)
        #expect(!FileManager.default.fileExists(atPath: marker), "the group's background child survived the timeout")
    }

    @Test func stopKillsRunningCommandsAndStartsNoMore() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            var first: ChildCommandResult?
            git.command(["sleep", "30"]) { first = $0 }
            var idle = false
            git.onIdle = { idle = true }
            git.stop()
            #expect(runLoop(loop, timeoutMs: 5_000) { first != nil && idle })
            #expect(first?.failureLine == "stopped")
            var prepared: Result<String, GitFailure>?
            git.prepare(id: "late", repo: fixture.origin, ref: nil, dir: fixture.workRoot + "/late") { prepared = $0 }
            #expect(runLoop(loop, timeoutMs: 5_000) { prepared != nil })
            #expect(prepared.map { if case .failure(let f) = $0 { f.description.contains("worker stopping") } else { false } } == true)
            #expect(git.isIdle)
        }
    }

    @Test func mirrorSyncJoinsRunningUpdatesAndReusesFreshOnes() {
        var sync = MirrorSync<Int>()
        #expect(sync.request("m", 1, nowMs: 0) == .start)
        #expect(sync.request("m", 2, nowMs: 10) == .joined)
        #expect(sync.request("other", 3, nowMs: 10) == .start)
        #expect(sync.finished("m", ok: true, nowMs: 100) == [1, 2])
        // Fresh: strictly less than freshMs after it succeeded.
        #expect(sync.request("m", 4, nowMs: 100 + MirrorSync<Int>.freshMs - 1) == .ready)
        #expect(sync.request("m", 5, nowMs: 100 + MirrorSync<Int>.freshMs) == .start)
        // A failed update is not reused.
        #expect(sync.finished("m", ok: false, nowMs: 3_000) == [5])
        #expect(sync.request("m", 6, nowMs: 3_001) == .start)
        #expect(sync.finished("other", ok: true, nowMs: 3_002) == [3])
        #expect(sync.updating == 1)
    }

    @Test func preparedWorktreeCommitsComeBackAsABundleBranch() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let dir = fixture.workRoot + "/t1"
            let base = try #require(prepare(loop, git, "t1", fixture.origin, dir: dir)).get()
            #expect(base == fixture.rev("main"))
            #expect(shell("git -C \(dir) rev-parse --abbrev-ref HEAD") == "swarm/t1")
            #expect(FileManager.default.fileExists(atPath: dir + "/b.txt"))
            // A fake agent: one commit of its own, one uncommitted change, one new file; plus an
            // input unpacked at `in/` that must stay out of the auto-commit.
            shell("echo agent > c.txt && git add c.txt && git commit -qm 'agent work' && echo changed >> a.txt && echo new > n.txt && mkdir in && echo x > in/input.bin", in: dir)
            let bundle = fixture.root + "/results/swarm-t1.bundle"
            let (outcome, wrote) = try #require(collect(loop, git, "t1", dir: dir, base: base, excluding: ["in"], bundle: bundle)).get()
            #expect(wrote)
            #expect(outcome.branch == "swarm/t1" && outcome.base == base && outcome.commits == 2)
            #expect(shell("git -C \(dir) log -1 --format='%s|%an|%ae'") == "uncommitted changes of task t1|swarm|swarm@w1")
            #expect(shell("git -C \(dir) status --porcelain") == "?? in/")
            // The bundle fetches into a clone of the original repository as branch swarm/t1.
            let clone = fixture.root + "/clone"
            shell("git clone -q \(fixture.origin) \(clone) && cd \(clone) && git fetch -q \(bundle) swarm/t1:swarm/t1")
            #expect(shell("git -C \(clone) rev-parse swarm/t1") == outcome.head)
            #expect(shell("git -C \(clone) log --format=%s \(base)..swarm/t1") == "uncommitted changes of task t1\nagent work")
            #expect(shell("git -C \(clone) show swarm/t1:a.txt") == "one\nchanged")
            #expect(shell("git -C \(clone) ls-tree -r --name-only swarm/t1").split(separator: "\n").contains("in/input.bin") == false)
            // The outer repository saw nothing.
            #expect(shell("git -C \(fixture.root)/outer status --porcelain --untracked-files=no") == "")
            var released = false
            git.release(id: "t1", dir: dir) { released = true }
            #expect(runLoop(loop, timeoutMs: 30_000) { released })
            #expect(!FileManager.default.fileExists(atPath: dir))
            let mirror = git.mirrorPath(of: fixture.origin)
            #expect(shell("git --git-dir \(mirror) for-each-ref refs/heads/") == "")
            // What is left is a spare (detached, under DATA/git/spares) for the next task.
            #expect(shell("git --git-dir \(mirror) worktree list | wc -l") == "2")
            #expect(git.spares[mirror]?.count == 1)
        }
    }

    @Test func refsResolveInTheMirrorAndNothingNewMeansNoBundle() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let cases: [(String?, String)] = [("v1", fixture.rev("v1^{commit}")), ("feature", fixture.rev("feature")),
                                              ("refs/heads/feature", fixture.rev("feature")),
                                              (String(fixture.rev("feature").prefix(10)), fixture.rev("feature")),
                                              ("main~1", fixture.rev("main~1")), (nil, fixture.rev("main"))]
            for (index, (ref, expected)) in cases.enumerated() {
                let dir = fixture.workRoot + "/r\(index)"
                #expect(try #require(prepare(loop, git, "r\(index)", fixture.origin, ref: ref, dir: dir)).get() == expected)
                let bundle = fixture.root + "/r\(index).bundle"
                let (outcome, wrote) = try #require(collect(loop, git, "r\(index)", dir: dir, base: expected, bundle: bundle)).get()
                #expect(!wrote && outcome.commits == 0 && outcome.head == expected)
                #expect(!FileManager.default.fileExists(atPath: bundle))
            }
            // The mirror was made once; fresh for the later ones.
            #expect(git.cloneCount == 1)
            guard case .failure(let missing) = prepare(loop, git, "bad", fixture.origin, ref: "nope", dir: fixture.workRoot + "/bad") else {
                Issue.record("an unknown ref was prepared"); return
            }
            #expect(missing.description.contains("ref nope is not a branch, tag or commit"))
            guard case .failure(let dash) = prepare(loop, git, "bad", fixture.origin, ref: "--upload-pack=x", dir: fixture.workRoot + "/bad") else {
                Issue.record("an option was taken for a ref"); return
            }
            #expect(dash.description.contains("invalid ref"))
            // Another attempt of r0: its worktree and branch are replaced.
            let again = try #require(prepare(loop, git, "r0", fixture.origin, ref: "feature", dir: fixture.workRoot + "/r0")).get()
            #expect(again == fixture.rev("feature"))
            #expect(shell("git -C \(fixture.workRoot)/r0 rev-parse HEAD") == fixture.rev("feature"))
            // A directory that is not ours is never deleted.
            shell("mkdir -p \(fixture.workRoot)/own && echo keep > \(fixture.workRoot)/own/file")
            guard case .failure(let exists) = prepare(loop, git, "own", fixture.origin, dir: fixture.workRoot + "/own") else {
                Issue.record("a foreign directory was replaced"); return
            }
            #expect(exists.description.contains("already exists"))
            #expect(FileManager.default.fileExists(atPath: fixture.workRoot + "/own/file"))
        }
    }

    @Test func filesLeftWithHeadElsewhereStillComeBackOnTheBranch() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let scripts = [
                // Detached and committed there.
                "d1": "git checkout -q --detach && echo d > d.txt && git add d.txt && git commit -qm detached",
                // On another branch, with uncommitted work.
                "d2": "echo c > c.txt && git add c.txt && git commit -qm mine && git checkout -qb other && echo e > e.txt",
                // Deleted its branch, changed nothing.
                "d3": "git checkout -q --detach && git branch -qD swarm/d3",
            ]
            for (id, script) in scripts.sorted(by: { $0.key < $1.key }) {
                let dir = fixture.workRoot + "/" + id
                let base = try #require(prepare(loop, git, id, fixture.origin, dir: dir)).get()
                shell(script, in: dir)
                let (outcome, wrote) = try #require(collect(loop, git, id, dir: dir, base: base, bundle: fixture.root + "/\(id).bundle")).get()
                let mirror = git.mirrorPath(of: fixture.origin)
                let files = shell("git --git-dir \(mirror) ls-tree -r --name-only swarm/\(id)").split(separator: "\n").map(String.init)
                switch id {
                case "d1":
                    #expect(outcome.commits == 1 && wrote && files.contains("d.txt"))
                case "d2":
                    #expect(outcome.commits == 2 && wrote && files.contains("c.txt") && files.contains("e.txt"))
                    #expect(shell("git --git-dir \(mirror) log -1 --format=%s swarm/d2") == "uncommitted changes of task d2")
                default:
                    #expect(outcome.commits == 0 && !wrote && outcome.head == base)
                }
            }
        }
    }

    @Test func twentyConcurrentPreparesMakeOneCloneAndAFailureFailsEveryWaiter() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            var results: [String: Result<String, GitFailure>] = [:]
            for index in 0..<20 {
                git.prepare(id: "c\(index)", repo: fixture.origin, ref: nil, dir: fixture.workRoot + "/c\(index)") { results["c\(index)"] = $0 }
            }
            #expect(runLoop(loop, timeoutMs: 60_000) { results.count == 20 })
            #expect(git.cloneCount == 1 && git.fetchCount == 0)
            #expect(results.values.allSatisfy { (try? $0.get()) == fixture.rev("main") }, "\(results.values.compactMap { if case .failure(let f) = $0 { f } else { nil } })")
            #expect(shell("git --git-dir \(git.mirrorPath(of: fixture.origin)) worktree list | wc -l") == "21")
            var released = 0
            for index in 0..<20 { git.release(id: "c\(index)", dir: fixture.workRoot + "/c\(index)") { released += 1 } }
            #expect(runLoop(loop, timeoutMs: 60_000) { released == 20 })
            #expect(shell("git --git-dir \(git.mirrorPath(of: fixture.origin)) for-each-ref refs/heads/ | wc -l") == "0")

            let missing = fixture.root + "/no-such-repo.git"
            var failures: [GitFailure] = []
            for index in 0..<5 {
                git.prepare(id: "f\(index)", repo: missing, ref: nil, dir: fixture.workRoot + "/f\(index)") {
                    if case .failure(let f) = $0 { failures.append(f) }
                }
            }
            #expect(runLoop(loop, timeoutMs: 30_000) { failures.count == 5 })
            #expect(git.cloneCount == 2)
            #expect(Set(failures.map(\.description)).count == 1)
            #expect(failures.first?.description.hasPrefix("git clone of \(missing) failed: ") == true)
            #expect(failures.first?.description.contains("\n") == false)
            #expect(!FileManager.default.fileExists(atPath: git.mirrorPath(of: missing)))
        }
    }

    /// Checkouts take turns (one slot here): every prepare still succeeds, each records the
    /// time of its own git work, and a stop while some wait ends them all.
    @Test func checkoutsTakeTurnsAndEachRecordsItsCreationTime() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            git.checkoutSlots = 1
            var results: [String: Result<String, GitFailure>] = [:]
            for index in 0..<4 {
                git.prepare(id: "s\(index)", repo: fixture.origin, ref: nil, dir: fixture.workRoot + "/s\(index)") { results["s\(index)"] = $0 }
            }
            #expect(runLoop(loop, timeoutMs: 60_000) { results.count == 4 })
            for index in 0..<4 {
                #expect((try? results["s\(index)"]?.get()) == fixture.rev("main"))
                let ms = git.takeCreationMs(id: "s\(index)")
                #expect(ms != nil && ms! >= 0)
                #expect(git.takeCreationMs(id: "s\(index)") == nil, "taken once")
            }
            #expect(FileManager.default.fileExists(atPath: fixture.workRoot + "/s3/a.txt"))
        }
    }

    /// `fd::3` hung the clone until its 30 min limit (the task holding its slot); `ext::`
    /// runs a command. Both are refused at once (the worker's own `-c`, whatever the user's
    /// config allows; not set here: the environment is the whole test process's).
    @Test func localCommandTransportsAreRefusedAtOnce() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            git.remoteTimeoutMs = 20_000
            let marker = fixture.root + "/ext-ran"
            for (index, repo) in ["fd::3", "ext::sh -c touch% \(marker)"].enumerated() {
                let outcome = prepare(loop, git, "t\(index)", repo, dir: fixture.workRoot + "/t\(index)")
                guard case .failure(let failure) = outcome else { Issue.record("\(repo): \(String(describing: outcome))"); continue }
                #expect(failure.description.contains("not allowed"), "\(repo): \(failure)")
            }
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
    }

    @Test func aNewPushIsFetchedOnceTheMirrorIsNoLongerFresh() throws {
        let fixture = GitFixture()
        // A fake clock: the window is the clock's, not however long a loaded machine takes
        // for the push between the prepares.
        let clock = Locked<Int64>(1_000)
        try withWorkspace(fixture, now: { clock.withLock { $0 } }) { loop, git in
            _ = try #require(prepare(loop, git, "p1", fixture.origin, dir: fixture.workRoot + "/p1")).get()
            shell("cd \(fixture.root)/scratch && echo three > b.txt && git commit -qam three && git push -q origin main")
            // Within the window (its last millisecond): the mirror is reused as it is.
            clock.withLock { $0 += MirrorSync<Int>.freshMs - 1 }
            #expect(try #require(prepare(loop, git, "p2", fixture.origin, dir: fixture.workRoot + "/p2")).get() == fixture.rev("main~1"))
            clock.withLock { $0 += 1 }
            #expect(try #require(prepare(loop, git, "p3", fixture.origin, dir: fixture.workRoot + "/p3")).get() == fixture.rev("main"))
            #expect(git.cloneCount == 1 && git.fetchCount == 1)
            // The fetch pruned nothing of the tasks' branches.
            #expect(shell("git --git-dir \(git.mirrorPath(of: fixture.origin)) for-each-ref --format='%(refname)' refs/heads/") == "refs/heads/swarm/p1\nrefs/heads/swarm/p2\nrefs/heads/swarm/p3")
        }
    }

    @Test func startupPruneRemovesWorktreesOfEndedTasks() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            for id in ["keep", "gone", "vanished"] {
                _ = try #require(prepare(loop, git, id, fixture.origin, dir: fixture.workRoot + "/" + id)).get()
            }
            shell("rm -rf \(fixture.workRoot)/vanished")
            // A new workspace, as after a worker restart.
            let restarted = GitWorkspace(loop: loop, dataDir: fixture.dataDir, logger: Logger(label: "test"))
            var pruned = false
            restarted.pruneStale(keeping: ["keep"]) { pruned = true }
            #expect(runLoop(loop, timeoutMs: 30_000) { pruned })
            let mirror = git.mirrorPath(of: fixture.origin)
            #expect(FileManager.default.fileExists(atPath: fixture.workRoot + "/keep/a.txt"))
            #expect(!FileManager.default.fileExists(atPath: fixture.workRoot + "/gone"))
            #expect(shell("git --git-dir \(mirror) for-each-ref --format='%(refname)' refs/heads/") == "refs/heads/swarm/keep")
            #expect(shell("git --git-dir \(mirror) worktree list | wc -l") == "2")
        }
    }

    /// A task that replaced its worktree by a link to another tree: that tree is neither
    /// committed as its work nor touched by the removal (only the link goes, and the branch).
    @Test func aWorktreeReplacedByALinkIsNotCommittedNorRemovedThrough() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let dir = fixture.workRoot + "/linked"
            let base = try #require(prepare(loop, git, "linked", fixture.origin, dir: dir)).get()
            shell("mkdir -p \(fixture.root)/elsewhere && echo secret > \(fixture.root)/elsewhere/s.txt && chmod 444 \(fixture.root)/elsewhere/s.txt")
            shell("rm -rf \(dir) && ln -s \(fixture.root)/elsewhere \(dir)")
            let outcome = try #require(collect(loop, git, "linked", dir: dir, base: base, bundle: fixture.root + "/l.bundle"))
            guard case .failure(let failure) = outcome else { Issue.record("a link was committed"); return }
            #expect(failure.description.contains("no longer a directory"))
            var released = false
            git.release(id: "linked", dir: dir) { released = true }
            #expect(runLoop(loop, timeoutMs: 30_000) { released })
            var info = stat()
            #expect(lstat(dir, &info) != 0, "the link is gone")
            #expect(FileManager.default.fileExists(atPath: fixture.root + "/elsewhere/s.txt"), "its target is untouched")
            lstat(fixture.root + "/elsewhere/s.txt", &info)
            #expect(info.st_mode & 0o777 == 0o444, "not even chmod-ed")
            let mirror = git.mirrorPath(of: fixture.origin)
            #expect(shell("git --git-dir \(mirror) for-each-ref --format='%(refname)' refs/heads/").isEmpty)
        }
    }

    func release(_ loop: EventLoop, _ git: GitWorkspace, _ id: String, dir: String) {
        var released = false
        git.release(id: id, dir: dir) { released = true }
        #expect(runLoop(loop, timeoutMs: 30_000) { released })
    }

    /// An ended task's worktree becomes a spare: cleaned (untracked and ignored files gone,
    /// tracked edits undone, its branch deleted), then moved into the next task's directory
    /// and checked out at that task's ref on its own branch.
    @Test func aReleasedWorktreeIsCleanedAndReusedByTheNextTaskOfItsRepository() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let first = fixture.workRoot + "/first"
            _ = try #require(prepare(loop, git, "first", fixture.origin, dir: first)).get()
            #expect(git.takeReused(id: "first") == false)
            shell("cd \(first) && echo junk > untracked.txt && echo '*.log' > .gitignore && echo x > build.log && echo edited > a.txt && mkdir -p deep/er && echo y > deep/er/z")
            release(loop, git, "first", dir: first)
            #expect(!FileManager.default.fileExists(atPath: first))
            #expect(git.spares[git.mirrorPath(of: fixture.origin)]?.count == 1)
            let mirror = git.mirrorPath(of: fixture.origin)
            #expect(shell("git --git-dir \(mirror) for-each-ref --format='%(refname)' refs/heads/").isEmpty, "swarm/first deleted")

            let second = fixture.workRoot + "/second"
            let base = try #require(prepare(loop, git, "second", fixture.origin, ref: "feature", dir: second)).get()
            #expect(base == fixture.rev("feature"))
            #expect(git.takeReused(id: "second"))
            #expect(git.takeCreationMs(id: "second") != nil)
            #expect(git.spares.isEmpty)
            #expect(shell("git -C \(second) rev-parse --abbrev-ref HEAD") == "swarm/second")
            #expect(shell("git -C \(second) status --porcelain --ignored").isEmpty, "nothing left of the first task")
            #expect(shell("cat \(second)/a.txt") == "one")
            #expect(FileManager.default.fileExists(atPath: second + "/f.txt"), "the feature branch's file")
            // Its work comes back as before.
            shell("cd \(second) && echo mine > mine.txt")
            let outcome = try #require(collect(loop, git, "second", dir: second, base: base, bundle: fixture.root + "/s.bundle")).get()
            #expect(outcome.0.commits == 1 && outcome.1)
        }
    }

    /// What the attack pass left in a spare for the next task, and what now reaches it: index
    /// flags (skip-worktree, assume-unchanged) that hid a changed file, a sparse checkout that
    /// left files out, the reflog and files in the administrative directory, a FIFO.
    @Test func nothingATaskSetInItsWorktreeReachesTheNextTaskThroughASpare() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let a = fixture.workRoot + "/a"
            _ = try #require(prepare(loop, git, "a", fixture.origin, dir: a)).get()
            shell("""
                cd \(a)
                git update-index --skip-worktree a.txt && echo LEAKSW > a.txt
                git update-index --assume-unchanged b.txt && echo LEAKAU > b.txt
                git commit -q --allow-empty -m secret
                echo admin > "$(git rev-parse --git-dir)/leak.txt"
                mkfifo u.fifo
                git sparse-checkout set --no-cone /a.txt
                """)
            release(loop, git, "a", dir: a)
            let b = fixture.workRoot + "/b"
            _ = try #require(prepare(loop, git, "b", fixture.origin, dir: b)).get()
            #expect(git.takeReused(id: "b"))
            #expect(shell("cat \(b)/a.txt \(b)/b.txt") == "one\ntwo")
            #expect(shell("git -C \(b) ls-files -v | grep -v '^H' || true").isEmpty, "no flag on any file")
            #expect(!FileManager.default.fileExists(atPath: b + "/u.fifo"))
            let admin = try #require(GitWorkspace.adminDir(of: b))
            #expect(!FileManager.default.fileExists(atPath: admin + "/leak.txt"))
            #expect(!shell("git -C \(b) reflog --format=%s || true").contains("secret"))
            #expect(shell("git -C \(b) sparse-checkout list 2>/dev/null || true").isEmpty)
            #expect(shell("git -C \(b) status --porcelain --ignored").isEmpty)
        }
    }

    /// A process still working inside an ended task's worktree (a background job the task left)
    /// would write into the next task's files: that worktree is removed, not kept.
    @Test func aWorktreeSomeProcessStillWorksInIsNotKept() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            let a = fixture.workRoot + "/busy"
            _ = try #require(prepare(loop, git, "busy", fixture.origin, dir: a)).get()
            let lurker = Process()
            lurker.executableURL = URL(fileURLWithPath: "/bin/sleep")
            lurker.arguments = ["30"]
            lurker.currentDirectoryURL = URL(fileURLWithPath: a)
            try lurker.run()
            // SIGKILL, not terminate(): Foundation spawns it with the calling thread's signal
            // mask, and the test process's pool threads block SIGTERM (SigBlk), so a SIGTERM
            // waited for `sleep 30` to end on its own: 30 s of the suite.
            defer { kill(lurker.processIdentifier, SIGKILL); lurker.waitUntilExit() }
            #expect(ProcessTable.anyProcessWorks(inside: a))
            release(loop, git, "busy", dir: a)
            #expect(git.spares.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: a))
        }
    }

    /// A task that waits for a checkout slot chooses between a spare and a new worktree once it
    /// has the slot: a spare left meanwhile by an ended task is the one it takes.
    @Test func aTaskWaitingForACheckoutSlotTakesTheSpareLeftMeanwhile() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            _ = try #require(prepare(loop, git, "w", fixture.origin, dir: fixture.workRoot + "/w")).get()
            git.checkoutSlots = 0
            var outcome: Result<String, GitFailure>?
            git.prepare(id: "y", repo: fixture.origin, ref: nil, dir: fixture.workRoot + "/y") { outcome = $0 }
            release(loop, git, "w", dir: fixture.workRoot + "/w")
            #expect(git.spares[git.mirrorPath(of: fixture.origin)]?.count == 1)
            #expect(outcome == nil, "still waiting for a slot")
            git.checkoutSlots = 1
            #expect(runLoop(loop, timeoutMs: 30_000) { outcome != nil })
            #expect(try outcome?.get() == fixture.rev("main"))
            #expect(git.takeReused(id: "y"))
        }
    }

    /// Not kept: a worktree with a merge half done, and any past the per-mirror limit;
    /// spares left by an earlier worker process are removed at start.
    @Test func sparesAreKeptOnlyWhenCleanAndWithinLimitsAndPrunedAtStart() throws {
        let fixture = GitFixture()
        try withWorkspace(fixture) { loop, git in
            git.sparesPerMirror = 1
            let mirror = git.mirrorPath(of: fixture.origin)
            for id in ["m", "a", "b"] {
                _ = try #require(prepare(loop, git, id, fixture.origin, dir: fixture.workRoot + "/" + id)).get()
            }
            let admin = try #require(GitWorkspace.adminDir(of: fixture.workRoot + "/m"))
            shell("echo \(fixture.rev("main")) > \(admin)/MERGE_HEAD")
            for id in ["m", "a", "b"] { release(loop, git, id, dir: fixture.workRoot + "/" + id) }
            #expect(git.spares[mirror]?.count == 1, "m refused (merge in progress), a kept, b over the limit")
            #expect(shell("git --git-dir \(mirror) worktree list | wc -l") == "2", "the bare mirror and one spare")
            let restarted = GitWorkspace(loop: loop, dataDir: fixture.dataDir, logger: Logger(label: "test"))
            var pruned = false
            restarted.pruneStale(keeping: []) { pruned = true }
            #expect(runLoop(loop, timeoutMs: 30_000) { pruned })
            #expect(shell("git --git-dir \(mirror) worktree list | wc -l") == "1")
            #expect(try FileManager.default.contentsOfDirectory(atPath: git.sparesDir).isEmpty)
        }
    }

    /// A measurement for the report, not a timing assertion: worktree preparation of a
    /// 5,000-file repository, one at a time and 20 at once (p50/p99 in ms). Set
    /// SWARM_GIT_MEASURE=1 to run it (about 10 s).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SWARM_GIT_MEASURE"] != nil))
    func worktreeTimesOfAFiveThousandFileRepository() throws {
        let fixture = GitFixture(files: 5_000)
        try withWorkspace(fixture) { loop, git in
            _ = try #require(prepare(loop, git, "warm", fixture.origin, dir: fixture.workRoot + "/warm")).get()
            func ms(_ since: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - since) / 1e6 }
            var single: [Double] = []
            for index in 0..<20 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try #require(prepare(loop, git, "s\(index)", fixture.origin, dir: fixture.workRoot + "/s\(index)")).get()
                single.append(ms(start))
            }
            var concurrent: [Double] = []
            let start = DispatchTime.now().uptimeNanoseconds
            for index in 0..<20 {
                git.prepare(id: "c\(index)", repo: fixture.origin, ref: nil, dir: fixture.workRoot + "/c\(index)") { _ in concurrent.append(ms(start)) }
            }
            #expect(runLoop(loop, timeoutMs: 120_000) { concurrent.count == 20 })
            func pct(_ values: [Double], _ p: Double) -> Int { Int(values.sorted()[min(values.count - 1, Int(Double(values.count) * p))]) }
            let copyStart = DispatchTime.now().uptimeNanoseconds
            shell("cp -r \(fixture.root)/scratch \(fixture.root)/copy")
            let copyMs = Int(ms(copyStart))
            print("cp -r of the same tree (with its .git): \(copyMs) ms")
            print("worktree of 5,000 files: one at a time p50 \(pct(single, 0.5)) ms p99 \(pct(single, 0.99)) ms; 20 at once p50 \(pct(concurrent, 0.5)) ms p99 \(pct(concurrent, 0.99)) ms; files \(shell("git -C \(fixture.workRoot)/s0 ls-files | wc -l"))")
            var released = 0
            for index in 0..<20 { git.release(id: "s\(index)", dir: fixture.workRoot + "/s\(index)") { released += 1 } }
            let releaseStart = DispatchTime.now().uptimeNanoseconds
            #expect(runLoop(loop, timeoutMs: 120_000) { released == 20 })
            print("release of 20 worktrees: \(Int(ms(releaseStart))) ms")
        }
    }
}
