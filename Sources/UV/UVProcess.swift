import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// How one of a child's standard streams is connected.
public enum ChildStdio {
    /// `/dev/null`.
    case ignore
    /// A pipe: `spawn` creates it and opens our end in this (not yet opened) `UVPipe`; the
    /// child reads it (stdin) or writes it (stdout/stderr). The caller closes the `UVPipe`,
    /// also when the spawn fails. A pipe has no half-close: to end a child's stdin, close it
    /// (after the write completes).
    case pipe(UVPipe)
    /// One of our descriptors, inherited.
    case inherit(Int32)
}

/// What to run.
public struct SpawnOptions {
    public var executable: String
    public var arguments: [String]
    /// Full environment as `KEY=VALUE`; nil inherits ours.
    public var environment: [String]?
    public var workingDirectory: String?
    public var stdin: ChildStdio = .ignore
    public var stdout: ChildStdio = .ignore
    public var stderr: ChildStdio = .ignore
    /// `setsid()` in the child: it leads a new session and process group (pgid == pid), so the
    /// whole group can be signalled with one `kill(-pid, sig)`.
    public var newProcessGroup = true

    public init(executable: String, arguments: [String]) {
        self.executable = executable
        self.arguments = arguments
    }
}

/// A child process, spawned with `posix_spawn` and watched through a pidfd (`uv_poll_t` on
/// `pidfd_open(pid)`; reaped with `waitid(P_PIDFD)`), so neither the spawn cost nor the exit
/// notification grows with our size or with the number of live children (libuv's `uv_spawn`
/// forks, and scans every child with `waitpid` on each SIGCHLD).
///
/// `onExit` fires once with the exit status and the signal that ended it (0 if none), as
/// libuv's exit callback does. Loop thread only; `close` after the exit (or to abandon it:
/// an abandoned child is neither signalled nor reaped by us).
public final class UVProcess: UVHandleOwner {
    private let core: HandleCore<uv_poll_t>
    private var onExit: ((Int64, Int32) -> Void)?
    public let pid: Int32
    /// Owned by the handle: closed in its close callback, never before.
    private let pidfd: Int32
    public private(set) var exited = false

    private init(loop: EventLoop, pid: Int32, pidfd: Int32) {
        core = HandleCore(loop: loop, zero: uv_poll_t())
        self.pid = pid
        self.pidfd = pidfd
    }

    /// Spawns; on failure (e.g. ENOENT for a missing executable or working directory) nothing
    /// is left behind and the error is thrown (pipes in `options` are then open but unused:
    /// the caller closes them, as always).
    public static func spawn(loop: EventLoop, _ options: SpawnOptions,
                             onExit: @escaping (Int64, Int32) -> Void) throws(UVError) -> UVProcess {
        loop.preconditionInLoop()
        let path = try resolveExecutable(options.executable, environment: options.environment,
                                         workingDirectory: options.workingDirectory)

        // Our ends of pipes are opened in their UVPipes first (close-on-exec, so no child
        // inherits them); the child's ends are closed here once the spawn is over.
        var childFds: [Int32] = [-1, -1, -1]
        var childEnds: [Int32] = []
        defer { for fd in childEnds { Glibc.close(fd) } }
        for (index, spec) in [options.stdin, options.stdout, options.stderr].enumerated() {
            switch spec {
            case .ignore:
                childFds[index] = -1
            case .inherit(let fd):
                childFds[index] = fd
            case .pipe(let pipe):
                var ends: [Int32] = [-1, -1]
                let pipeRC = swarm_pipe_cloexec(&ends)
                if pipeRC != 0 { throw UVError(pipeRC) }
                // [0] reads, [1] writes: the child reads its stdin and writes the others.
                let (ours, theirs) = index == 0 ? (ends[1], ends[0]) : (ends[0], ends[1])
                childEnds.append(theirs)
                do {
                    try pipe.open(ours)
                } catch {
                    Glibc.close(ours)
                    throw error
                }
                childFds[index] = theirs
            }
        }

        var cStrings: [UnsafeMutablePointer<CChar>?] = []
        defer { for p in cStrings { free(p) } }
        func cArray(_ list: [String]) -> [UnsafeMutablePointer<CChar>?] {
            let ptrs = list.map { strdup($0) }
            cStrings.append(contentsOf: ptrs)
            return ptrs + [nil]
        }
        let argv = cArray([options.executable] + options.arguments)
        let envp = options.environment.map { cArray($0) }
        var pid: pid_t = 0
        let rc: Int32 = argv.withUnsafeBufferPointer { argvBuf in
            childFds.withUnsafeBufferPointer { fds in
                func go(_ env: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
                    if let cwd = options.workingDirectory {
                        return swarm_spawn(&pid, path, argvBuf.baseAddress, env, cwd, fds.baseAddress,
                                           options.newProcessGroup ? 1 : 0)
                    }
                    return swarm_spawn(&pid, path, argvBuf.baseAddress, env, nil, fds.baseAddress,
                                       options.newProcessGroup ? 1 : 0)
                }
                if let envp { return envp.withUnsafeBufferPointer { go($0.baseAddress) } }
                return go(nil)
            }
        }
        if rc != 0 { throw UVError(-rc) }

        // The child runs. Should watching it fail, it must not be left behind unwatched.
        func abandon(_ code: Int32) -> UVError {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return UVError(code)
        }
        let pidfd = swarm_pidfd_open(pid)
        if pidfd < 0 { throw abandon(pidfd) }
        let process = UVProcess(loop: loop, pid: pid, pidfd: pidfd)
        let initRC = uv_poll_init(loop.raw, process.core.raw, pidfd)
        if initRC != 0 {
            process.core.discardUninitialized()
            Glibc.close(pidfd)
            throw abandon(initRC)
        }
        process.core.attach(process)
        process.onExit = onExit
        let startRC = uv_poll_start(process.core.raw, Int32(UV_READABLE.rawValue)) { handle, _, _ in
            HandleCore<uv_poll_t>.owner(of: handle, as: UVProcess.self).pidfdReadable()
        }
        if startRC != 0 {
            process.close()
            throw abandon(startRC)
        }
        return process
    }

    /// The pidfd turned readable: the child exited (or the poll failed). Reap it.
    private func pidfdReadable() {
        guard !exited else { return }
        var status: Int64 = 0
        var signal: Int32 = 0
        let rc = swarm_pidfd_reap(pidfd, &status, &signal)
        if rc == 0 { return }  // not yet: spurious wake-up
        if rc < 0 {
            // Someone else reaped it (ECHILD): the status is lost; it is gone all the same.
            status = -1
            signal = 0
        }
        uv_poll_stop(core.raw)
        exited = true
        let callback = onExit
        onExit = nil
        callback?(status, signal)
    }

    /// Signals the child alone.
    public func signal(_ signum: Int32) throws(UVError) {
        guard core.isOpen, !exited else { throw UVError(-ESRCH) }
        // Not yet reaped by us, so the pid cannot have been reused.
        if kill(pid, signum) != 0 { throw UVError(-errno) }
    }

    /// Signals the child's whole process group (it leads one when spawned with
    /// `newProcessGroup`). Works after the leader exited, while any member is left.
    public func signalGroup(_ signum: Int32) throws(UVError) {
        guard pid > 0 else { throw UVError(-ESRCH) }
        try UVError.check(uv_kill(-pid, signum))
    }

    /// Idempotent. The exit callback will not fire after this.
    public func close(_ onClose: (() -> Void)? = nil) {
        onExit = nil
        core.close(onClose)
    }

    func handleDidClose() {
        Glibc.close(pidfd)
        core.finishClose()
    }

    /// `execvp`'s lookup, done here because `posix_spawnp` would search *our* PATH: a name
    /// without a slash is searched in the child's PATH when an environment is given (ours
    /// otherwise; glibc's default `/bin:/usr/bin` when there is none), as `uv_spawn` did.
    /// Relative entries count from the child's working directory, where it will run.
    static func resolveExecutable(_ file: String, environment: [String]?,
                                  workingDirectory: String?) throws(UVError) -> String {
        guard !file.isEmpty else { throw UVError(-ENOENT) }
        if file.contains("/") { return file }
        let searchPath: String
        if let environment {
            searchPath = environment.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) } ?? "/bin:/usr/bin"
        } else {
            searchPath = getenv("PATH").map { String(cString: $0) } ?? "/bin:/usr/bin"
        }
        var sawDenied = false
        for entry in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let dir = entry.isEmpty ? "." : String(entry)
            let candidate = dir.hasSuffix("/") ? dir + file : dir + "/" + file
            let probe = candidate.hasPrefix("/") || workingDirectory == nil
                ? candidate : workingDirectory! + "/" + candidate
            var info = stat()
            guard stat(probe, &info) == 0, info.st_mode & S_IFMT != S_IFDIR else { continue }
            if access(probe, X_OK) == 0 { return candidate }
            sawDenied = true
        }
        throw UVError(sawDenied ? -EACCES : -ENOENT)
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVProcess: Sendable {}
