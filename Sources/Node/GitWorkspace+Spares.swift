import Foundation
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Spare worktrees: an ended task's worktree, cleaned and kept for the next task of the same
/// repository instead of being deleted and written again.
///
/// Why: a new worktree writes every file of the repository, and removing one deletes them all.
/// A spare is moved into the new task's directory and checked out at its commit: git rewrites
/// only the files that differ. Tasks of one repository come in waves (agents fanned out,
/// then more), so most worktrees after the first ones are spares. On this project's machine it
/// also avoids a file-system cost: ext4 without a journal skips inodes freed in the last minute
/// when it allocates new ones (`recently_deleted`, a third of a checkout's time after others'
/// worktrees were removed).
///
/// What a spare holds: the tracked files at some commit, nothing untracked or ignored (`clean
/// -ffdx`, and FIFOs, sockets and device nodes, which git does not see), a detached HEAD, no
/// branch, and an administrative directory reduced to `HEAD`, `commondir` and `gitdir`: no
/// reflog, no per-worktree config (sparse checkout), no per-worktree refs. Its index is made
/// anew from HEAD (`read-tree`), so no flag a task set survives (skip-worktree and
/// assume-unchanged would hide a file's content from the next task and from its commit), and
/// only the files whose content differs are written again.
///
/// A worktree is kept only when it is still a real directory, no process has its current
/// directory inside it (a task's leftover background process would write into the next
/// task's files), no operation is in progress (merge, rebase, cherry-pick, revert, bisect),
/// and the limits allow (`sparesPerMirror`, `maxSpares`); any failed step removes it instead.
/// Spares unused for `spareIdleMs` are removed at the next release or prepare; all are
/// removed at worker start (`pruneStale`). Tasks share the worker's user and its mirror (no
/// file system sandbox): spares keep one task's work out of the next one's tree, not out of
/// its reach.
extension GitWorkspace {
    struct Spare {
        var dir: String
        var adminDir: String
        var since: Int64
    }

    /// Files in a worktree's administrative directory that mean an operation is half done.
    static let inProgressMarkers = ["MERGE_HEAD", "rebase-merge", "rebase-apply", "CHERRY_PICK_HEAD",
                                    "REVERT_HEAD", "BISECT_LOG", "sequencer"]

    /// A spare of `mirror`, taken out of the pool (the freshest: its files are likeliest cached).
    func takeSpare(of mirror: String) -> Spare? {
        expireSpares()
        guard var pool = spares[mirror], !pool.isEmpty else { return nil }
        let spare = pool.removeLast()
        spares[mirror] = pool.isEmpty ? nil : pool
        return spare
    }

    /// Whether the ended worktree `tree` may become a spare now (and counts it if so).
    func reserveSpare(_ tree: Worktree) -> Bool {
        guard !stopped, ArtifactCollector.isRealDirectory(tree.dir), !tree.adminDir.isEmpty else { return false }
        if Self.inProgressMarkers.contains(where: { access(tree.adminDir + "/" + $0, F_OK) == 0 }) { return false }
        if ProcessTable.anyProcessWorks(inside: tree.dir) { return false }
        let ofMirror = (spares[tree.mirror]?.count ?? 0) + (sparesInMaking[tree.mirror] ?? 0)
        let all = spares.values.reduce(0) { $0 + $1.count } + sparesInMaking.values.reduce(0, +)
        guard ofMirror < sparesPerMirror, all < maxSpares else { return false }
        sparesInMaking[tree.mirror, default: 0] += 1
        return true
    }

    /// In the mirror's queue: moves the ended worktree to `DATA/git/spares/N` (`finished` frees
    /// the queue), then, outside it, cleans it and detaches HEAD, and in the queue again
    /// deletes `branch`. Any failure removes it as `release` would. `done` when it is over.
    func keepAsSpare(_ tree: Worktree, branch: String, finished: @escaping () -> Void, _ done: @escaping () -> Void) {
        nextSpare += 1
        let spareDir = "\(sparesDir)/\(nextSpare)-\(getpid())"
        let failed: (Worktree) -> Void = { [weak self] at in
            guard let self else { return }
            self.sparesInMaking[tree.mirror, default: 1] -= 1
            self.serially(tree.mirror) { next in self.remove(at, branch: branch) { next(); done() } }
        }
        do { try Files.makeDirectories(sparesDir) } catch { finished(); return failed(tree) }
        git(["--git-dir", tree.mirror, "worktree", "move", tree.dir, spareDir]) { [weak self] moved in
            finished()
            guard let self else { return }
            guard moved.succeeded else { return failed(tree) }
            var spare = tree
            spare.dir = spareDir
            self.clean(spare) { kept in
                guard kept else { return failed(spare) }
                self.serially(tree.mirror) { next in
                    self.git(["--git-dir", tree.mirror, "update-ref", "-d", "refs/heads/\(branch)"]) { _ in
                        next()
                        self.sparesInMaking[tree.mirror, default: 1] -= 1
                        self.spares[tree.mirror, default: []].append(Spare(dir: spareDir, adminDir: tree.adminDir, since: self.now()))
                        done()
                    }
                }
            }
        }
    }

    /// Cleans the worktree `spare` (moved out of its task's directory) to what a spare holds:
    /// the administrative directory reduced, the index made anew, tracked files restored,
    /// untracked and special files gone, HEAD detached. False (logged) when a step failed.
    private func clean(_ spare: Worktree, _ done: @escaping (Bool) -> Void) {
        guard Self.resetAdministrativeDirectory(spare.adminDir) else { return done(false) }
        let at = ["--git-dir", spare.adminDir, "--work-tree", spare.dir]
        gitSteps([at + ["read-tree", "HEAD"],
                  at + ["update-index", "-q", "--refresh"],
                  at + ["reset", "--hard", "--quiet", "--no-recurse-submodules"],
                  at + ["clean", "-ffdxq"],
                  at + ["checkout", "--quiet", "--detach"]], in: spare.dir) { [weak self] failure in
            guard let self else { return }
            if let (step, result) = failure {
                self.logger.info("git: worktree \(spare.dir) not kept as a spare: cleaning step \(step + 1) failed: \(result.failureLine)")
                return done(false)
            }
            // What git does not see: FIFOs, sockets, device nodes (never through a link).
            self.command(["find", "-P", spare.dir, "(", "-type", "p", "-o", "-type", "s", "-o", "-type", "b", "-o", "-type", "c", ")", "-delete"]) { found in
                if !found.succeeded { self.logger.info("git: worktree \(spare.dir) not kept as a spare: \(found.failureLine)") }
                done(found.succeeded)
            }
        }
    }

    /// Makes `dir` task `id`'s worktree from `spare`: moved in the mirror's queue (`registered`
    /// frees it), then checked out at `commit` on a new branch `swarm/ID` (in the caller's
    /// checkout slot).
    /// Should any step fail, the spare is removed and a new worktree made instead.
    func reuse(_ spare: Spare, id: String, mirror: String, commit: String, dir: String,
               registered: @escaping () -> Void, _ done: @escaping (Result<String, GitFailure>) -> Void) {
        let start = now()
        let fresh: (Worktree) -> Void = { [weak self] stale in
            guard let self else { return }
            self.logger.info("git: spare worktree \(stale.dir) could not be reused; making a new one")
            self.serially(mirror) { next in
                self.remove(stale, branch: Self.branch(of: id)) {
                    self.addWorktree(id: id, mirror: mirror, commit: commit, dir: dir, registered: next, done)
                }
            }
        }
        git(["--git-dir", mirror, "worktree", "move", spare.dir, dir]) { [weak self] moved in
            registered()
            guard let self else { return }
            let moveMs = self.now() - start
            guard moved.succeeded else { return fresh(Worktree(mirror: mirror, adminDir: spare.adminDir, dir: spare.dir)) }
            let tree = Worktree(mirror: mirror, adminDir: spare.adminDir, dir: dir)
            self.remember(id: id, tree)
            let checkoutStart = self.now()
            let at = ["--git-dir", tree.adminDir, "--work-tree", dir]
            self.gitSteps([at + ["checkout", "--quiet", "--force", "--no-recurse-submodules", "-B", Self.branch(of: id), commit],
                           at + ["clean", "-ffdxq"]], in: dir) { failure in
                if failure != nil {
                    self.forget(id: id)
                    return fresh(tree)
                }
                // The reflog would name the commits the spare was at (an earlier task's): it
                // starts empty, as a new worktree's nearly does.
                try? FileManager.default.removeItem(atPath: tree.adminDir + "/logs")
                self.recordCreation(id: id, ms: moveMs + (self.now() - checkoutStart))
                self.reusedIds.insert(id)
                done(.success(commit))
            }
        }
    }

    /// Empties a worktree's administrative directory but for what makes it a worktree (`HEAD`,
    /// `commondir`, `gitdir`): the index (made anew after), reflogs, per-worktree config and
    /// refs, and any file a task put there. False when something could not be removed.
    static func resetAdministrativeDirectory(_ admin: String) -> Bool {
        let keep: Set<String> = ["HEAD", "commondir", "gitdir"]
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: admin) else { return false }
        for name in names where !keep.contains(name) {
            let path = admin + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                guard (try? FileManager.default.removeItem(atPath: path)) != nil else { return false }
            } else if unlink(path) != 0 {
                return false
            }
        }
        return true
    }

    /// Removes the spares unused for `spareIdleMs` (in their mirrors' queues).
    func expireSpares() {
        let cutoff = now() - spareIdleMs
        for (mirror, pool) in spares {
            let (old, kept) = (pool.filter { $0.since <= cutoff }, pool.filter { $0.since > cutoff })
            guard !old.isEmpty else { continue }
            spares[mirror] = kept.isEmpty ? nil : kept
            for spare in old {
                serially(mirror) { [weak self] next in
                    self?.remove(Worktree(mirror: mirror, adminDir: spare.adminDir, dir: spare.dir), branch: nil) { next() }
                }
            }
        }
    }

    /// Paths of the worktrees in `git worktree list --porcelain` that are spares of this
    /// workspace (under `sparesDir`).
    func spareWorktrees(inPorcelain text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("worktree ") else { return nil }
            let path = String(line.dropFirst("worktree ".count))
            return path.hasPrefix(sparesDir + "/") ? path : nil
        }
    }
}
