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

/// A child process, spawned with `posix_spawn` and watched through a pidfd (`pidfd_open(pid)`
/// in the loop's `PidfdWatch`; reaped with `waitid(P_PIDFD)`), so neither the spawn cost nor
/// the exit notification grows with our size or with the number of live children (libuv's
/// `uv_spawn` forks, and scans every child with `waitpid` on each SIGCHLD).
///
/// `onExit` fires once with the exit status and the signal that ended it (0 if none), as
/// libuv's exit callback does. Loop thread only; `close` after the exit (or to abandon it:
/// an abandoned child is neither signalled nor reaped by us). While it is watched (spawned,
/// neither exited nor closed) the loop's `run()` does not return, as for a libuv handle.
public final class UVProcess {
    private unowned let loop: EventLoop
    private let watch: PidfdWatch
    private var token: UInt64 = 0
    private var onExit: ((Int64, Int32) -> Void)?
    public let pid: Int32
    /// Ours until `close`.
    private let pidfd: Int32
    private var closed = false
    public private(set) var exited = false

    private init(loop: EventLoop, watch: PidfdWatch, pid: Int32, pidfd: Int32) {
        self.loop = loop
        self.watch = watch
        self.pid = pid
        self.pidfd = pidfd
    }

    /// Spawns; on failure (e.g. ENOENT for a missing executable or working directory) nothing
    /// is left behind and the error is thrown (pipes in `options` are then open but unused:
    /// the caller closes them, as always).
    public static func spawn(loop: EventLoop, _ options: SpawnOptions,
                             onExit: @escaping (Int64, Int32) -> Void) throws(UVError) -> UVProcess {
        loop.preconditionInLoop()
        let watch = try PidfdWatch.of(loop)
        let found = try ExecutableLookup.resolve(options.executable, environment: options.environment,
                                                 workingDirectory: options.workingDirectory, nowMs: loop.nowMs)
        // Our ends of pipes are opened in their UVPipes first (close-on-exec, so no child
        // inherits them); the child's ends are closed here once the spawn is over.
        var childEnds: [Int32] = []
        defer { for fd in childEnds { Glibc.close(fd) } }
        let childFds = try openStdio(options, childEnds: &childEnds)
        var path = found.path
        var rc = posixSpawn(options, path: path, childFds: childFds)
        if found.cached, rc.error == ENOENT || rc.error == EACCES, let key = found.key {
            // The program cached for this name is gone or no longer runs: search again.
            ExecutableLookup.cache.withLock { $0.forget(key) }
            path = try ExecutableLookup.search(options.executable, in: key.searchPath,
                                               workingDirectory: options.workingDirectory)
            rc = posixSpawn(options, path: path, childFds: childFds)
            if rc.error == 0 || rc.error == ENOEXEC {
                ExecutableLookup.cache.withLock { $0.store(key, path: path, nowMs: loop.nowMs) }
            }
        }
        if rc.error == ENOEXEC {
            // No `#!` line: execvp (and `uv_spawn` before `posix_spawn`, which since glibc 2.27
            // fails with ENOEXEC instead) runs such a file with /bin/sh; do the same.
            rc = posixSpawn(options, path: "/bin/sh", childFds: childFds,
                            argv: ["/bin/sh", path] + options.arguments)
        }
        if rc.error != 0 { throw UVError(-rc.error) }
        let pid = rc.pid

        // The child runs. Should watching it fail, it must not be left behind unwatched.
        func abandon(_ code: Int32) -> UVError {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return UVError(code)
        }
        let pidfd = swarm_pidfd_open(pid)
        if pidfd < 0 { throw abandon(pidfd) }
        let process = UVProcess(loop: loop, watch: watch, pid: pid, pidfd: pidfd)
        do {
            process.token = try watch.watch(process, pidfd: pidfd)
        } catch {
            Glibc.close(pidfd)
            throw abandon(error.code)
        }
        watch.openProcesses += 1
        process.onExit = onExit
        return process
    }

    /// Opens the pipes of `options` (our ends in their `UVPipe`s); the child's descriptors
    /// 0-2 (-1: /dev/null). The child's ends of pipes are added to `childEnds`.
    private static func openStdio(_ options: SpawnOptions, childEnds: inout [Int32]) throws(UVError) -> [Int32] {
        var childFds: [Int32] = [-1, -1, -1]
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
        return childFds
    }

    /// `swarm_spawn` with argv and environment as C strings: the pid, or the errno value.
    /// `argv` defaults to the executable's name and the arguments.
    private static func posixSpawn(_ options: SpawnOptions, path: String, childFds: [Int32],
                                   argv arguments: [String]? = nil) -> (pid: pid_t, error: Int32) {
        var cStrings: [UnsafeMutablePointer<CChar>?] = []
        defer { for p in cStrings { free(p) } }
        func cArray(_ list: [String]) -> [UnsafeMutablePointer<CChar>?] {
            let ptrs = list.map { strdup($0) }
            cStrings.append(contentsOf: ptrs)
            return ptrs + [nil]
        }
        let argv = cArray(arguments ?? [options.executable] + options.arguments)
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
        return (pid, rc)
    }

    /// The pidfd turned readable (`PidfdWatch`): the child exited. Reap it.
    func pidfdReadable() {
        guard !exited, !closed else { return }
        var status: Int64 = 0
        var signal: Int32 = 0
        let rc = swarm_pidfd_reap(pidfd, &status, &signal)
        if rc == 0 { return }  // not yet: spurious wake-up
        if rc < 0 {
            // Someone else reaped it (ECHILD): the status is lost; it is gone all the same.
            status = -1
            signal = 0
        }
        watch.unwatch(token, pidfd: pidfd)
        exited = true
        let callback = onExit
        onExit = nil
        callback?(status, signal)
    }

    /// Signals the child alone.
    public func signal(_ signum: Int32) throws(UVError) {
        guard !closed, !exited else { throw UVError(-ESRCH) }
        // Not yet reaped by us, so the pid cannot have been reused.
        if kill(pid, signum) != 0 { throw UVError(-errno) }
    }

    /// Signals the child's whole process group (it leads one when spawned with
    /// `newProcessGroup`). Works after the leader exited, while any member is left.
    public func signalGroup(_ signum: Int32) throws(UVError) {
        guard pid > 0 else { throw UVError(-ESRCH) }
        try UVError.check(uv_kill(-pid, signum))
    }

    /// Idempotent. The exit callback will not fire after this; `onClose` runs before it returns.
    public func close(_ onClose: (() -> Void)? = nil) {
        loop.preconditionInLoop()
        onExit = nil
        if !closed {
            closed = true
            watch.unwatch(token, pidfd: pidfd)
            watch.openProcesses -= 1
            Glibc.close(pidfd)
        }
        onClose?()
    }

    /// `execvp`'s lookup (see `ExecutableLookup`), uncached.
    static func resolveExecutable(_ file: String, environment: [String]?,
                                  workingDirectory: String?) throws(UVError) -> String {
        guard !file.isEmpty else { throw UVError(-ENOENT) }
        if file.contains("/") { return file }
        return try ExecutableLookup.search(file, in: ExecutableLookup.searchPath(environment: environment),
                                           workingDirectory: workingDirectory)
    }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVProcess: Sendable {}
