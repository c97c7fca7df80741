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
/// -ffdx`), a detached HEAD, no branch. A worktree is kept only when it is still a real
/// directory with no operation in progress (merge, rebase, cherry-pick, revert, bisect) and the
/// limits allow (`sparesPerMirror`, `maxSpares`); any failed step removes it instead. Spares
/// unused for `spareIdleMs` are removed at the next release or prepare; all are removed at
/// worker start (`pruneStale`).
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
            let at = ["--git-dir", tree.adminDir, "--work-tree", spareDir]
            self.gitSteps([at + ["reset", "--hard", "--quiet", "--no-recurse-submodules"],
                           at + ["clean", "-ffdxq"],
                           at + ["checkout", "--quiet", "--detach"]], in: spareDir) { failure in
                if failure != nil { return failed(spare) }
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

    /// Makes `dir` task `id`'s worktree from `spare`: moved in the mirror's queue (`registered`
    /// frees it), then checked out at `commit` on a new branch `swarm/ID` in a checkout slot.
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
            self.withCheckoutSlot { release in
                let checkoutStart = self.now()
                let at = ["--git-dir", tree.adminDir, "--work-tree", dir]
                self.gitSteps([at + ["checkout", "--quiet", "--force", "--no-recurse-submodules", "-B", Self.branch(of: id), commit],
                               at + ["clean", "-ffdxq"]], in: dir) { failure in
                    release()
                    if failure != nil {
                        self.forget(id: id)
                        return fresh(tree)
                    }
                    self.recordCreation(id: id, ms: moveMs + (self.now() - checkoutStart))
                    self.reusedIds.insert(id)
                    done(.success(commit))
                }
            }
        }
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
