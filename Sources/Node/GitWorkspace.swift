import Foundation
import Logging
import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Why a git step of a task failed: one line, bounded (git's own error included).
struct GitFailure: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = PeerText.safe(description, limit: 600) }
}

/// A task's git worktree: the task directory of a `repo` task, on branch `swarm/ID` of the
/// worker's bare mirror of the repository. Every git command runs as a child process on the
/// loop (`ChildCommand`), never blocking it, with explicit `--git-dir`/`--work-tree` (a task
/// directory inside some other repository must never be mistaken for it), bounded in time
/// (the whole process group is killed past the limit) and in captured output. Loop thread only.
final class GitWorkspace {
    let loop: EventLoop
    let logger: Logger
    let mirrorsDir: String
    let now: () -> Int64
    let environment: [String]
    /// The auto-commit's author and committer: `swarm <swarm@WORKER>`.
    let commitEmail: String
    var gitPath = "git"
    /// Limit of one clone or fetch (a large repository over a slow link).
    var remoteTimeoutMs: UInt64 = 30 * 60_000
    /// Limit of any other git command (checkout, add, commit, bundle of a big tree).
    var localTimeoutMs: UInt64 = 10 * 60_000
    var sync = MirrorSync<(GitFailure?) -> Void>()
    /// Clones and fetches started since this workspace was made (single flight: tests count).
    var cloneCount = 0
    var fetchCount = 0
    /// Children running now, by token; `stop` kills them.
    var running: [Int: ChildCommand] = [:]
    var nextCommand = 0
    var stopped = false
    /// Called when the last running child ended (the worker's stop waits for it).
    var onIdle: (() -> Void)?
    /// Per task id, its worktree (from `prepare` until `release`).
    private var worktrees: [String: Worktree] = [:]
    /// Per mirror, the operations waiting for the running one (`serially`).
    private var mirrorQueues: [String: [() -> Void]] = [:]
    /// Checkouts (the slow part of a worktree: writing every file) running at once on the
    /// worker; the others wait their turn, FIFO. A checkout is CPU and file-system work, so
    /// more at once than cores only makes each slower: 100 at once on 2 cores made each take
    /// ~25 s (release bench, 5,000-file repository), when one alone takes ~0.14 s.
    /// The workers set it from `WorkerConfig.checkoutSlots` (default: one per core).
    ///
    /// An earlier measurement found turns much slower than all-at-once (268 s vs 37 s to the
    /// last start). The cause was this machine's file system, not the turns: ext4 without a
    /// journal skips inodes freed in the last minute when it allocates (`recently_deleted`,
    /// 32% of a `cp -r` profile after a big delete), so creating files right after removing
    /// others' worktrees slowed every checkout, whatever the order.
    var checkoutSlots = Int.max {
        didSet {
            // More room: the waiters it makes room for go now.
            while checkoutsRunning < checkoutSlots, !checkoutWaiters.isEmpty { checkoutWaiters.removeFirst()() }
        }
    }
    /// One per core of this machine.
    static var defaultCheckoutSlots: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
    private var checkoutsRunning = 0
    private var checkoutWaiters: [() -> Void] = []
    /// Per task id, the milliseconds its own git commands took to make its worktree
    /// (registration and checkout), waits in the mirror's queue and for a checkout slot
    /// excluded: the worktree creation time the bench reports (`RunMetrics.worktreeMs`).
    private(set) var creationMs: [String: Int64] = [:]
    /// Task ids whose worktree was a reused spare (until `takeReused`).
    var reusedIds: Set<String> = []
    /// Spare worktrees by mirror, ready for the next task (`GitWorkspace+Spares`).
    var spares: [String: [Spare]] = [:]
    /// Spares being cleaned, by mirror (they count against the limits already).
    var sparesInMaking: [String: Int] = [:]
    var nextSpare = 0
    /// At most this many spares per mirror, and in all; a spare unused for `spareIdleMs` is removed.
    var sparesPerMirror = 4
    var maxSpares = 16
    var spareIdleMs: Int64 = 10 * 60_000
    /// Where spares wait: `DATA/git/spares`.
    let sparesDir: String

    struct Worktree {
        var mirror: String
        /// The worktree's administrative directory, `MIRROR/worktrees/NAME`.
        var adminDir: String
        var dir: String
    }

    init(loop: EventLoop, dataDir: String, logger: Logger, workerName: String? = nil, now: (() -> Int64)? = nil) {
        self.loop = loop
        self.logger = logger
        self.mirrorsDir = dataDir + "/git/mirrors"
        self.sparesDir = dataDir + "/git/spares"
        // Monotonic: the loop's clock (ms), as the freshness window of mirror updates needs.
        self.now = now ?? { [unowned loop] in Int64(loop.nowMs) }
        var base: [String: String] = [:]
        for (key, value) in ProcessInfo.processInfo.environment { base[key] = value }
        self.environment = Self.gitEnvironment(from: base)
        let name = workerName ?? Self.hostName()
        self.commitEmail = "swarm@\(name.filter { $0.isLetter || $0.isNumber || "-._".contains($0) })"
    }

    /// `gethostname` (Foundation's `hostName` may ask DNS).
    static func hostName() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "worker" }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func branch(of id: String) -> String { "swarm/\(id)" }

    /// Makes the worktree `dir` (must not exist) of `repo` at `ref ?? "HEAD"` on a new branch
    /// `swarm/ID`, from the worker's bare mirror of `repo` (`DATA/git/...`), cloned or updated
    /// at most once for all tasks asking at the same time. Success: the base commit.
    /// A branch `swarm/ID` left by an earlier attempt is reset to the base; an empty `dir` or
    /// an earlier attempt's worktree at `dir` is replaced.
    func prepare(id: String, repo: String, ref: String?, dir: String, _ done: @escaping (Result<String, GitFailure>) -> Void) {
        if let problem = Self.problem(repo: repo, ref: ref) { return done(.failure(GitFailure(problem))) }
        let mirror = mirrorPath(of: repo)
        let refName = ref ?? "HEAD"
        ensureMirror(repo) { [weak self] failure in
            guard let self else { return }
            if let failure { return done(.failure(failure)) }
            self.resolve(refName, in: mirror) { commit in
                guard let commit else {
                    return done(.failure(GitFailure("ref \(PeerText.safe(refName, limit: 200)) is not a branch, tag or commit of \(PeerText.safe(repo, limit: 200))")))
                }
                // The checkout slot first, then the choice between a spare and a new worktree:
                // a task that waited its turn takes a spare that an ended task left meanwhile.
                self.withCheckoutSlot { release in
                    let made: (Result<String, GitFailure>) -> Void = { release(); done($0) }
                    self.serially(mirror) { finished in
                        self.clearDirectory(dir, mirror: mirror) { failure in
                            if let failure {
                                finished()
                                return made(.failure(failure))
                            }
                            if let spare = self.takeSpare(of: mirror) {
                                self.reuse(spare, id: id, mirror: mirror, commit: commit, dir: dir, registered: finished, made)
                            } else {
                                self.addWorktree(id: id, mirror: mirror, commit: commit, dir: dir, registered: finished, made)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Registers the worktree and its branch (in the mirror's queue: `registered` frees it),
    /// then checks the files out outside the queue: the checkout, the slow part, touches only
    /// the worktree's own index and files, so the tasks of one mirror check out in parallel
    /// (as many as the caller's checkout slots allow).
    func addWorktree(id: String, mirror: String, commit: String, dir: String,
                             registered: @escaping () -> Void, _ done: @escaping (Result<String, GitFailure>) -> Void) {
        // --force: a worktree of an earlier attempt registered at `dir` but gone from disk.
        let addStart = now()
        git(["--git-dir", mirror, "worktree", "add", "--quiet", "--force", "--no-checkout", "-B", Self.branch(of: id), dir, commit]) { [weak self] result in
            registered()
            guard let self else { return }
            let addMs = self.now() - addStart
            guard result.succeeded else {
                return done(.failure(GitFailure("git worktree add \(dir) failed: \(result.failureLine)")))
            }
            guard let admin = Self.adminDir(of: dir) else {
                return done(.failure(GitFailure("git worktree add made no \(dir)/.git")))
            }
            self.worktrees[id] = Worktree(mirror: mirror, adminDir: admin, dir: dir)
            let checkoutStart = self.now()
            self.git(["--git-dir", admin, "--work-tree", dir, "reset", "--hard", "--quiet", "--no-recurse-submodules"], in: dir) { checkedOut in
                guard checkedOut.succeeded else {
                    return done(.failure(GitFailure("git checkout of \(commit) in \(dir) failed: \(checkedOut.failureLine)")))
                }
                self.creationMs[id] = addMs + (self.now() - checkoutStart)
                done(.success(commit))
            }
        }
    }

    /// `dir` must not exist for `worktree add`: an empty directory is removed, an earlier
    /// worktree of this mirror is removed with git; anything else is refused (never deleted).
    private func clearDirectory(_ dir: String, mirror: String, _ done: @escaping (GitFailure?) -> Void) {
        var info = stat()
        guard lstat(dir, &info) == 0 else { return done(nil) }
        if info.st_mode & S_IFMT == S_IFDIR, rmdir(dir) == 0 { return done(nil) }
        guard let admin = Self.adminDir(of: dir), admin.hasPrefix(mirror + "/worktrees/") else {
            return done(GitFailure("task directory \(dir) already exists and is not a worktree of this task's repository"))
        }
        git(["--git-dir", mirror, "worktree", "remove", "--force", "--force", dir]) { result in
            done(result.succeeded ? nil : GitFailure("cannot remove the earlier worktree \(dir): \(result.failureLine)"))
        }
    }

    /// The administrative directory a worktree's `.git` file names, if it is one.
    /// The task may have replaced that file: it is read only when it is a regular file (not
    /// through a link, never waiting on a FIFO), and at most 4 KiB of it (a link to
    /// `/dev/zero` read whole grew the worker until it was killed; a FIFO stopped its loop).
    static func adminDir(of dir: String) -> String? {
        guard let bytes = try? BoundedFile.read(dir + "/.git", limit: 4096, kinds: .regularOnly),
              let text = String(validating: bytes, as: UTF8.self), text.hasPrefix("gitdir: ") else { return nil }
        return text.dropFirst("gitdir: ".count).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The worktree of task `id`: remembered from `prepare`, else (a worktree made before a
    /// restart of this object) read from `dir/.git` when it names one of our mirrors.
    func worktree(id: String, dir: String) -> Worktree? {
        if let known = worktrees[id] { return known }
        guard let admin = Self.adminDir(of: dir), admin.hasPrefix(mirrorsDir + "/"),
              let range = admin.range(of: ".git/worktrees/", options: .backwards) else { return nil }
        return Worktree(mirror: String(admin[..<range.lowerBound]) + ".git", adminDir: admin, dir: dir)
    }

    /// After the run (any state): commits uncommitted changes (except `excluding` paths) as one
    /// commit "uncommitted changes of task ID", and when base..swarm/ID has commits writes a
    /// bundle of them to `bundlePath`. Success: the outcome and whether a bundle was written.
    func collect(id: String, dir: String, base: String, excluding: [String], bundlePath: String,
                 _ done: @escaping (Result<(GitOutcome, Bool), GitFailure>) -> Void) {
        guard let tree = worktree(id: id, dir: dir) else {
            return done(.failure(GitFailure("\(dir) is no longer a git worktree of this worker")))
        }
        commitChanges(id: id, tree, base: base, excluding: excluding) { [weak self] failure in
            guard let self else { return }
            if let failure { return done(.failure(failure)) }
            self.bundle(id: id, tree, base: base, to: bundlePath, done)
        }
    }

    /// `add -A` (inputs excluded), then a commit of what is staged on `swarm/ID`. When the task
    /// left HEAD elsewhere (detached, another branch, a rebase in progress), the worktree's
    /// files are still what comes back: committed as a child of `swarm/ID` (or of `base`, had
    /// the task deleted the branch), HEAD left as it is.
    private func commitChanges(id: String, _ tree: Worktree, base: String, excluding: [String], _ done: @escaping (GitFailure?) -> Void) {
        // A task that replaced its directory by a link (to another tree) must not have that
        // tree committed and sent back as its work: nothing is committed through a link.
        guard ArtifactCollector.isRealDirectory(tree.dir) else {
            return done(GitFailure("the task's directory \(tree.dir) is no longer a directory (removed, or replaced by a link: links are not followed); nothing committed"))
        }
        let at = ["--git-dir", tree.adminDir, "--work-tree", tree.dir]
        git(at + ["add", "-A", "--", "."] + excluding.map { ":(exclude,literal)\($0)" }, in: tree.dir) { [weak self] added in
            guard let self else { return }
            guard added.succeeded else { return done(GitFailure("git add in \(tree.dir) failed: \(added.failureLine)")) }
            self.git(at + ["symbolic-ref", "--quiet", "HEAD"], in: tree.dir) { head in
                if head.succeeded, head.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "refs/heads/" + Self.branch(of: id) {
                    self.commitOnBranch(id: id, tree, at: at, done)
                } else {
                    self.commitTree(id: id, tree, at: at, base: base, done)
                }
            }
        }
    }

    private var identity: [String] { ["-c", "user.name=swarm", "-c", "user.email=\(commitEmail)"] }
    private func message(_ id: String) -> String { "uncommitted changes of task \(id)" }

    private func commitOnBranch(id: String, _ tree: Worktree, at: [String], _ done: @escaping (GitFailure?) -> Void) {
        git(at + ["diff", "--cached", "--quiet"], in: tree.dir) { [weak self] diff in
            guard let self else { return }
            guard diff.spawnError == nil, !diff.timedOut, diff.status == 0 || diff.status == 1 else {
                return done(GitFailure("git diff in \(tree.dir) failed: \(diff.failureLine)"))
            }
            if diff.status == 0 { return done(nil) }
            self.git(self.identity + at + ["commit", "--quiet", "--no-verify", "-m", self.message(id)], in: tree.dir) { commit in
                done(commit.succeeded ? nil : GitFailure("git commit in \(tree.dir) failed: \(commit.failureLine)"))
            }
        }
    }

    /// The index's tree as a commit on `swarm/ID`, when it differs from the branch's tree.
    private func commitTree(id: String, _ tree: Worktree, at: [String], base: String, _ done: @escaping (GitFailure?) -> Void) {
        let branchRef = "refs/heads/" + Self.branch(of: id)
        git(at + ["write-tree"], in: tree.dir) { [weak self] written in
            guard let self else { return }
            let newTree = written.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            guard written.succeeded, !newTree.isEmpty else { return done(GitFailure("git write-tree in \(tree.dir) failed: \(written.failureLine)")) }
            self.git(["--git-dir", tree.mirror, "rev-parse", "--verify", "--quiet", branchRef + "^{commit}"]) { branch in
                let tip = branch.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                let parent = branch.succeeded && !tip.isEmpty ? tip : base
                self.git(["--git-dir", tree.mirror, "rev-parse", "--verify", "--quiet", parent + "^{tree}"]) { parentTree in
                    let point = { (commit: String) in
                        self.git(["--git-dir", tree.mirror, "update-ref", branchRef, commit]) { updated in
                            done(updated.succeeded ? nil : GitFailure("git update-ref \(branchRef) failed: \(updated.failureLine)"))
                        }
                    }
                    if parentTree.succeeded, parentTree.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == newTree {
                        // Nothing new; a deleted branch is made again where it started.
                        return parent == tip ? done(nil) : point(parent)
                    }
                    self.git(self.identity + ["--git-dir", tree.mirror, "commit-tree", newTree, "-p", parent, "-m", self.message(id)]) { made in
                        let commit = made.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                        guard made.succeeded, !commit.isEmpty else { return done(GitFailure("git commit-tree failed: \(made.failureLine)")) }
                        point(commit)
                    }
                }
            }
        }
    }

    /// Counts base..swarm/ID and bundles those commits (the bundle names `refs/heads/swarm/ID`,
    /// with `base` as its prerequisite: it fetches into any clone that has `base`).
    private func bundle(id: String, _ tree: Worktree, base: String, to path: String,
                        _ done: @escaping (Result<(GitOutcome, Bool), GitFailure>) -> Void) {
        let branchRef = "refs/heads/" + Self.branch(of: id)
        git(["--git-dir", tree.mirror, "rev-parse", "--verify", "--quiet", branchRef + "^{commit}"]) { [weak self] head in
            guard let self else { return }
            let headCommit = head.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            guard head.succeeded, !headCommit.isEmpty else {
                return done(.failure(GitFailure("branch \(Self.branch(of: id)) no longer exists (deleted by the task?)")))
            }
            self.git(["--git-dir", tree.mirror, "rev-list", "--count", "\(base)..\(headCommit)"]) { counted in
                guard counted.succeeded, let commits = Int(counted.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    return done(.failure(GitFailure("git rev-list \(base)..\(Self.branch(of: id)) failed: \(counted.failureLine)")))
                }
                let outcome = GitOutcome(branch: Self.branch(of: id), base: base, head: headCommit, commits: commits)
                guard commits > 0 else { return done(.success((outcome, false))) }
                do { try Files.makeDirectories((path as NSString).deletingLastPathComponent) } catch {
                    return done(.failure(GitFailure("cannot create the bundle's directory: \(error)")))
                }
                // git writes `path.lock` and renames it: a bundle is whole or absent.
                self.git(["--git-dir", tree.mirror, "bundle", "create", "--quiet", path, "\(base)..\(branchRef)"]) { bundled in
                    guard bundled.succeeded else {
                        return done(.failure(GitFailure("git bundle create failed: \(bundled.failureLine)")))
                    }
                    done(.success((outcome, true)))
                }
            }
        }
    }

    func forget(id: String) { worktrees[id] = nil }

    /// The worker stops: running git commands are killed (their callers get the failure),
    /// nothing more starts. `onIdle` fires once the last one is gone (now, if none runs).
    /// Runs `job` when one of `checkoutSlots` is free (FIFO); `job` calls its argument when
    /// its checkout is over. After `stop`, waiters run at once (their git fails: stopped).
    private func withCheckoutSlot(_ job: @escaping (_ release: @escaping () -> Void) -> Void) {
        let run: () -> Void = { [weak self] in
            self?.checkoutsRunning += 1
            job {
                guard let self else { return }
                self.checkoutsRunning -= 1
                if !self.checkoutWaiters.isEmpty { self.checkoutWaiters.removeFirst()() }
            }
        }
        if checkoutsRunning < checkoutSlots || stopped { run() } else { checkoutWaiters.append(run) }
    }

    /// Forgets and returns the worktree creation time of `id` (nil: not made here).
    func takeCreationMs(id: String) -> Int64? { creationMs.removeValue(forKey: id) }
    func recordCreation(id: String, ms: Int64) { creationMs[id] = ms }
    func remember(id: String, _ tree: Worktree) { worktrees[id] = tree }
    /// Whether `id`'s worktree was a reused spare; forgets it.
    func takeReused(id: String) -> Bool { reusedIds.remove(id) != nil }

    func stop() {
        stopped = true
        let waiting = checkoutWaiters
        checkoutWaiters = []
        for waiter in waiting { waiter() }
        if running.isEmpty { onIdle?() }
        for command in running.values { command.kill() }
    }
    var isIdle: Bool { running.isEmpty }
    var preparedIds: Set<String> { Set(worktrees.keys) }

    /// Runs `job` once the operations on `mirror` queued before it are over; `job` calls its
    /// argument when it is over. Clone/fetch, `worktree add` and `worktree remove` of one
    /// mirror run one at a time: measured, 20 concurrent `worktree add -B` in one repository
    /// fail about one run in two ("failed to read .../worktrees/OTHER/commondir": each lists
    /// the worktrees, and reads the ones others are half-way through making); `fetch` lists
    /// them too, and ref deletions contend for the `packed-refs` lock.
    func serially(_ mirror: String, _ job: @escaping (_ finished: @escaping () -> Void) -> Void) {
        let run: () -> Void = { [weak self] in
            job {
                guard let self else { return }
                var queue = self.mirrorQueues[mirror] ?? []
                if !queue.isEmpty { queue.removeFirst() }
                self.mirrorQueues[mirror] = queue.isEmpty ? nil : queue
                queue.first?()
            }
        }
        let idle = mirrorQueues[mirror] == nil
        mirrorQueues[mirror, default: []].append(run)
        if idle { run() }
    }
}
