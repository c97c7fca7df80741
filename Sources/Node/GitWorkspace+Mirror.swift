import Foundation
import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// The worker's bare mirrors of repositories, and how git is run.
///
/// A mirror is `DATA/git/mirrors/<first 16 hex of sha256(repo)>.git`, a bare repository whose
/// remote `origin` is the repository. Its upstream branches are kept under
/// `refs/remotes/origin/*` (tags under `refs/tags/*`, the upstream HEAD as the symref
/// `refs/remotes/origin/HEAD`), NOT under `refs/heads/*` as `git clone --mirror` does: the
/// worktrees' branches `swarm/ID` live in the mirror's `refs/heads/`, and a mirror's
/// `fetch --prune` would delete them (an upstream `swarm/ID`, pushed back by a user, would
/// overwrite them).
extension GitWorkspace {
    /// Config every git command here runs with: no hooks, no signing prompts, no automatic gc
    /// in the middle of a task's preparation (the user's own config, credentials, URL
    /// rewrites and ssh settings stay in effect).
    static let fixedConfig: [String] = [
        "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false",
        "-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "advice.detachedHead=false",
        "-c", "core.fsmonitor=false",
        // Transports that run no network but a local command or descriptor: `ext::CMD` runs a
        // shell command, `fd::N` talks over a descriptor the git child does not have and hangs
        // until the clone's 30 min limit, holding the task's slot. Never, whatever the
        // user's config says (`protocol.allow=always`).
        "-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never",
    ]

    /// Our environment without the variables that would point git at another repository,
    /// index or identity; no terminal prompts (a worker has no one to answer them); C locale.
    static func gitEnvironment(from base: [String: String]) -> [String] {
        let kept: Set<String> = [
            "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "GIT_SSL_NO_VERIFY", "GIT_SSL_CAINFO",
            "GIT_SSL_CAPATH", "GIT_PROXY_COMMAND", "GIT_EXEC_PATH", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
            "GIT_CONFIG_NOSYSTEM", "GIT_HTTP_USER_AGENT",
        ]
        var env = base.filter { !$0.key.hasPrefix("GIT_") || kept.contains($0.key) }
        env["SWARM_TOKEN"] = nil
        env["GIT_TERMINAL_PROMPT"] = "0"
        env["LC_ALL"] = "C"
        return env.map { "\($0.key)=\($0.value)" }.sorted()
    }

    /// The mirror of `repo`: its path depends only on the repository string.
    func mirrorPath(of repo: String) -> String {
        "\(mirrorsDir)/\(String(BlobHash.of(Array(repo.utf8)).prefix(16))).git"
    }

    /// Runs git with `args`, bounded in time and output; `done` on the loop.
    func git(_ args: [String], in directory: String? = nil, timeoutMs: UInt64? = nil, maxOutput: Int = 64 << 10,
             _ done: @escaping (ChildCommandResult) -> Void) {
        command([gitPath] + Self.fixedConfig + args, in: directory, timeoutMs: timeoutMs, maxOutput: maxOutput, done)
    }

    /// Runs `argv` as a tracked child: `stop` kills it, `onIdle` fires when the last one ends.
    /// Once stopped, nothing more is started (`done` gets a failure at once).
    func command(_ argv: [String], in directory: String? = nil, timeoutMs: UInt64? = nil, maxOutput: Int = 64 << 10,
                 _ done: @escaping (ChildCommandResult) -> Void) {
        guard !stopped else {
            return done(ChildCommandResult(status: -1, signal: 0, stdout: [], stderr: [], spawnError: "worker stopping"))
        }
        let token = nextCommand
        nextCommand += 1
        var ended = false
        let child = ChildCommand.run(loop: loop, argv: argv, environment: environment, workingDirectory: directory,
                                     timeoutMs: timeoutMs ?? localTimeoutMs, maxOutputBytes: maxOutput) { [weak self] result in
            ended = true
            self?.running[token] = nil
            done(result)
            if let self, self.stopped, self.running.isEmpty { self.onIdle?() }
        }
        if !ended { running[token] = child }
    }

    /// Runs each step in order while they succeed; `done` with the first failure (its index
    /// and result) or nil.
    func gitSteps(_ steps: [[String]], in directory: String? = nil, timeoutMs: UInt64? = nil,
                  _ done: @escaping ((Int, ChildCommandResult)?) -> Void) {
        func step(_ index: Int) {
            guard index < steps.count else { return done(nil) }
            git(steps[index], in: directory, timeoutMs: timeoutMs) { result in
                if result.succeeded { step(index + 1) } else { done((index, result)) }
            }
        }
        step(0)
    }

    /// Makes sure the mirror of `repo` exists and is up to date: cloned or fetched at most
    /// once for every request made while that runs (`MirrorSync`). `done` with nil or why not.
    func ensureMirror(_ repo: String, _ done: @escaping (GitFailure?) -> Void) {
        let path = mirrorPath(of: repo)
        switch sync.request(path, done, nowMs: now()) {
        case .ready: done(nil)
        case .joined: break
        case .start:
            let finished: (GitFailure?) -> Void = { [weak self] failure in
                guard let self else { return }
                if let failure { self.logger.warning("git: \(failure.description)") }
                for waiter in self.sync.finished(path, ok: failure == nil, nowMs: self.now()) { waiter(failure) }
            }
            serially(path) { [weak self] next in
                guard let self else { return }
                let report: (GitFailure?) -> Void = { failure in next(); finished(failure) }
                var info = stat()
                if stat(path, &info) == 0 { self.fetch(repo, into: path, report) } else { self.clone(repo, into: path, report) }
            }
        }
    }

    private func fetch(_ repo: String, into mirror: String, _ done: @escaping (GitFailure?) -> Void) {
        fetchCount += 1
        logger.debug("git: fetching \(repo) into \(mirror)")
        git(["--git-dir", mirror, "fetch", "--prune", "--quiet", "origin"], timeoutMs: remoteTimeoutMs) { [weak self] result in
            guard let self else { return }
            guard result.succeeded else {
                return done(GitFailure("git fetch of \(PeerText.safe(repo, limit: 200)) failed: \(result.failureLine)"))
            }
            self.setHead(mirror) { done(nil) }
        }
    }

    /// Records which branch the upstream HEAD names. A remote whose HEAD names no branch is
    /// fine until a task asks for `HEAD`.
    private func setHead(_ mirror: String, _ done: @escaping () -> Void) {
        git(["--git-dir", mirror, "remote", "set-head", "origin", "--auto"], timeoutMs: remoteTimeoutMs) { _ in done() }
    }

    /// Clones into a temporary directory beside the mirror, renamed into place at the end: a
    /// half-made mirror (crash, failed clone) is never at the mirror's path.
    private func clone(_ repo: String, into mirror: String, _ done: @escaping (GitFailure?) -> Void) {
        cloneCount += 1
        logger.info("git: cloning \(repo) into \(mirror)")
        let temp = mirror + ".tmp"
        do { try Files.makeDirectories(mirrorsDir) } catch { return done(GitFailure("cannot create \(mirrorsDir): \(error)")) }
        command(["rm", "-rf", "--", temp]) { [weak self] _ in
            guard let self else { return }
            let steps = [
                ["init", "--bare", "--quiet", temp],
                ["--git-dir", temp, "config", "remote.origin.url", repo],
                ["--git-dir", temp, "config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"],
                ["--git-dir", temp, "config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*"],
                ["--git-dir", temp, "fetch", "--prune", "--quiet", "origin"],
            ]
            self.gitSteps(steps, timeoutMs: self.remoteTimeoutMs) { failure in
                if let (_, result) = failure {
                    return done(GitFailure("git clone of \(PeerText.safe(repo, limit: 200)) failed: \(result.failureLine)"))
                }
                self.setHead(temp) {
                    self.ensureIdentity(temp) {
                        guard rename(temp, mirror) == 0 else {
                            return done(GitFailure("cannot rename \(temp) to \(mirror): \(String(cString: strerror(errno)))"))
                        }
                        done(nil)
                    }
                }
            }
        }
    }

    /// Agents commit in worktrees of the mirror: if this machine's git has no identity, the
    /// mirror gets one (`swarm`, `swarm@WORKER`), else their commits would fail.
    private func ensureIdentity(_ mirror: String, _ done: @escaping () -> Void) {
        git(["--git-dir", mirror, "config", "--get-regexp", "^user\\.(name|email)$"]) { [weak self] result in
            guard let self else { return }
            let have = result.stdoutText.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
            var steps: [[String]] = []
            if !have.contains("user.name") { steps.append(["--git-dir", mirror, "config", "user.name", "swarm"]) }
            if !have.contains("user.email") { steps.append(["--git-dir", mirror, "config", "user.email", self.commitEmail]) }
            self.gitSteps(steps) { _ in done() }
        }
    }

    /// The commit `ref` names in the mirror: `HEAD` is the upstream HEAD, a name is an upstream
    /// branch, then a tag, then (hex only) a commit id; rev suffixes (`main~2`) work.
    func resolve(_ ref: String, in mirror: String, _ done: @escaping (String?) -> Void) {
        var candidates: [String]
        if ref == "HEAD" {
            candidates = ["refs/remotes/origin/HEAD"]
        } else if ref.hasPrefix("refs/heads/") {
            candidates = ["refs/remotes/origin/" + ref.dropFirst("refs/heads/".count)]
        } else if ref.hasPrefix("refs/") {
            candidates = [ref]
        } else {
            candidates = ["refs/remotes/origin/\(ref)", "refs/tags/\(ref)"]
            if ref.utf8.count >= 4, ref.utf8.count <= 64, ref.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
                candidates.append(ref)
            }
        }
        func next(_ index: Int) {
            guard index < candidates.count else { return done(nil) }
            git(["--git-dir", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options", candidates[index] + "^{commit}"]) { result in
                let commit = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                if result.succeeded, !commit.isEmpty { done(commit) } else { next(index + 1) }
            }
        }
        next(0)
    }

    /// Nil when `repo` and `ref` may be handed to git, else why not.
    static func problem(repo: String, ref: String?) -> String? {
        func bad(_ text: String, _ limit: Int) -> Bool {
            text.isEmpty || text.utf8.count > limit || text.hasPrefix("-") || text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
        }
        if bad(repo, 4096) { return "invalid repository \(PeerText.safe(repo, limit: 200)) (empty, a control character, a leading '-', or over 4096 bytes)" }
        if let ref, bad(ref, 256) || ref.contains(" ") {
            return "invalid ref \(PeerText.safe(ref, limit: 200)) (empty, a space or control character, a leading '-', or over 256 bytes)"
        }
        return nil
    }
}
