import Foundation
import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Removing worktrees: after the scheduler holds a task's result, and at worker start for
/// tasks that are gone.
extension GitWorkspace {
    /// Once the scheduler holds the result: the worktree becomes a spare when it may
    /// (`GitWorkspace+Spares`), else it and its branch are removed from the mirror. Runs in
    /// the mirror's queue (`serially`). `done` (tests) once it is a spare or gone.
    func release(id: String, dir: String, _ done: (() -> Void)? = nil) {
        guard let tree = worktree(id: id, dir: dir) else {
            done?()
            return
        }
        forget(id: id)
        expireSpares()
        serially(tree.mirror) { [weak self] next in
            guard let self else { return }
            if self.reserveSpare(tree) {
                return self.keepAsSpare(tree, branch: Self.branch(of: id), finished: next) { done?() }
            }
            self.remove(tree, branch: Self.branch(of: id)) {
                done?()
                next()
            }
        }
    }

    /// `worktree remove --force`; should git refuse (a file the task made read-only), the
    /// directory is deleted and the registration pruned. Then the branch goes.
    func remove(_ tree: Worktree, branch: String?, _ done: @escaping () -> Void) {
        var info = stat()
        if lstat(tree.dir, &info) == 0, info.st_mode & S_IFMT != S_IFDIR {
            // The task replaced its worktree by a link or a file: only that entry goes (never
            // what a link points to), then the registration and the branch.
            unlink(tree.dir)
            git(["--git-dir", tree.mirror, "worktree", "prune"]) { [weak self] _ in
                guard let self, let branch else { return done() }
                self.git(["--git-dir", tree.mirror, "update-ref", "-d", "refs/heads/\(branch)"]) { _ in done() }
            }
            return
        }
        git(["--git-dir", tree.mirror, "worktree", "remove", "--force", "--force", tree.dir]) { [weak self] removed in
            guard let self else { return }
            let deleteBranch = {
                guard let branch else { return done() }
                self.git(["--git-dir", tree.mirror, "update-ref", "-d", "refs/heads/\(branch)"]) { deleted in
                    if !deleted.succeeded { self.logger.debug("git: branch \(branch) not deleted: \(deleted.failureLine)") }
                    done()
                }
            }
            if removed.succeeded { return deleteBranch() }
            self.logger.warning("git: worktree remove \(tree.dir) failed (\(removed.failureLine)); deleting it")
            self.command(["sh", "-c", "chmod -R u+w -- \"$1\" 2>/dev/null; rm -rf -- \"$1\"", "sh", tree.dir]) { _ in
                self.git(["--git-dir", tree.mirror, "worktree", "prune"]) { _ in deleteBranch() }
            }
        }
    }

    /// At worker start: in every mirror, removes the worktrees and `swarm/*` branches of tasks
    /// not in `keeping` (their runs are over: their results were delivered or are re-sent from
    /// the results directory, the bundles were uploaded before), and prunes registrations of
    /// worktrees whose directories are gone. `done` once every mirror was looked at.
    func pruneStale(keeping: Set<String>, _ done: @escaping () -> Void) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: mirrorsDir)) ?? []
        let mirrors = names.filter { $0.hasSuffix(".git") }.sorted().map { "\(mirrorsDir)/\($0)" }
        // Tasks prepared by this object are never stale.
        let keeping = keeping.union(preparedIds)
        var left = mirrors.count
        guard left > 0 else { return done() }
        // Queued in every mirror now: a task prepared meanwhile waits behind the pass.
        for mirror in mirrors {
            serially(mirror) { [weak self] finished in
                guard let self else { return }
                self.pruneMirror(mirror, keeping: keeping) {
                    finished()
                    left -= 1
                    if left == 0 { done() }
                }
            }
        }
    }

    private func pruneMirror(_ mirror: String, keeping: Set<String>, _ done: @escaping () -> Void) {
        git(["--git-dir", mirror, "worktree", "prune"]) { [weak self] _ in
            guard let self else { return }
            self.git(["--git-dir", mirror, "worktree", "list", "--porcelain"], maxOutput: 64 << 20) { listed in
                var stale: [(id: String?, path: String)] = Self.worktrees(inPorcelain: listed.stdoutText)
                    .filter { !keeping.contains($0.id) }.map { (id: $0.id, path: $0.path) }
                // Spares of a previous worker process: detached, no branch.
                let inUse = Set(self.spares.values.flatMap { $0.map(\.dir) })
                stale += self.spareWorktrees(inPorcelain: listed.stdoutText).filter { !inUse.contains($0) }.map { (id: nil, path: $0) }
                func next(_ index: Int) {
                    guard index < stale.count else { return self.pruneBranches(mirror, keeping: keeping, done) }
                    let entry = stale[index]
                    self.logger.info("git: removing the worktree \(entry.path)\(entry.id.map { " of ended task \($0)" } ?? " (a spare)")")
                    let tree = Worktree(mirror: mirror, adminDir: "", dir: entry.path)
                    self.remove(tree, branch: entry.id.map(Self.branch(of:))) { next(index + 1) }
                }
                next(0)
            }
        }
    }

    /// Branches `swarm/ID` of tasks not kept and not checked out anywhere (their worktree
    /// directory was deleted by hand, say).
    private func pruneBranches(_ mirror: String, keeping: Set<String>, _ done: @escaping () -> Void) {
        git(["--git-dir", mirror, "for-each-ref", "--format=%(refname)", "refs/heads/swarm/"], maxOutput: 64 << 20) { [weak self] listed in
            guard let self else { return }
            let refs = listed.stdoutText.split(separator: "\n").map(String.init)
                .filter { !keeping.contains(String($0.dropFirst("refs/heads/swarm/".count))) }
            guard listed.succeeded, !refs.isEmpty else { return done() }
            // One `update-ref --stdin` transaction deletes them all (one packed-refs rewrite).
            let script = refs.map { "delete \($0)" }.joined(separator: "\n") + "\n"
            let path = mirror + "/swarm-prune-\(getpid()).txt"
            guard FileManager.default.createFile(atPath: path, contents: Data(script.utf8)) else { return done() }
            self.command(["sh", "-c", "exec \"$@\" < \"$0\"", path, self.gitPath] + Self.fixedConfig
                         + ["--git-dir", mirror, "update-ref", "--stdin"]) { result in
                unlink(path)
                if !result.succeeded { self.logger.warning("git: pruning branches of \(mirror) failed: \(result.failureLine)") }
                done()
            }
        }
    }

    /// (task id, path) of every worktree on a `swarm/ID` branch in `git worktree list --porcelain`.
    static func worktrees(inPorcelain text: String) -> [(id: String, path: String)] {
        var found: [(id: String, path: String)] = []
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("worktree ") {
                path = String(line.dropFirst("worktree ".count))
            } else if line.hasPrefix("branch refs/heads/swarm/"), let current = path {
                found.append((id: String(line.dropFirst("branch refs/heads/swarm/".count)), path: current))
            } else if line.isEmpty {
                path = nil
            }
        }
        return found
    }
}
