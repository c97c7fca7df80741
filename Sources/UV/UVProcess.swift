import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// How one of a child's standard streams is connected.
public enum ChildStdio {
    /// `/dev/null`.
    case ignore
    /// A pipe created by libuv; the child reads it (stdin) or writes it (stdout/stderr).
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

/// `uv_process_t`: a child process. `onExit` fires once with the exit status and the signal
/// that ended it (0 if none). Loop thread only; `close` after the exit (or to abandon it).
public final class UVProcess: UVHandleOwner {
    private let core: HandleCore<uv_process_t>
    private var onExit: ((Int64, Int32) -> Void)?
    public private(set) var pid: Int32 = 0
    public private(set) var exited = false

    private init(loop: EventLoop) {
        core = HandleCore(loop: loop, zero: uv_process_t())
    }

    /// Spawns; on failure (e.g. ENOENT for a missing executable) the handle is already closed
    /// and the error thrown. uv_spawn forks and execs synchronously, blocking the loop ~1 ms.
    public static func spawn(loop: EventLoop, _ options: SpawnOptions,
                             onExit: @escaping (Int64, Int32) -> Void) throws(UVError) -> UVProcess {
        loop.preconditionInLoop()
        let process = UVProcess(loop: loop)
        process.onExit = onExit

        var cStrings: [UnsafeMutablePointer<CChar>?] = []
        defer { for p in cStrings { free(p) } }
        func cArray(_ list: [String]) -> [UnsafeMutablePointer<CChar>?] {
            let ptrs = list.map { strdup($0) }
            cStrings.append(contentsOf: ptrs)
            return ptrs + [nil]
        }
        var argv = cArray([options.executable] + options.arguments)
        var envp = options.environment.map { cArray($0) }
        let file = strdup(options.executable)
        let cwd = options.workingDirectory.map { strdup($0) }
        cStrings.append(file)
        if let cwd { cStrings.append(cwd) }

        var stdio = [uv_stdio_container_t](repeating: uv_stdio_container_t(), count: 3)
        for (index, spec) in [options.stdin, options.stdout, options.stderr].enumerated() {
            switch spec {
            case .ignore: swarm_stdio_ignore(&stdio[index])
            case .pipe(let pipe): swarm_stdio_pipe(&stdio[index], pipe.raw, index == 0 ? 0 : 1)
            case .inherit(let fd): swarm_stdio_fd(&stdio[index], fd)
            }
        }

        var opts = uv_process_options_t()
        opts.exit_cb = { handle, status, signal in
            let process = HandleCore<uv_process_t>.owner(of: handle, as: UVProcess.self)
            process.exited = true
            let callback = process.onExit
            process.onExit = nil
            callback?(status, signal)
        }
        opts.file = UnsafePointer(file!)
        let rc: Int32 = argv.withUnsafeMutableBufferPointer { argvBuf in
            opts.args = argvBuf.baseAddress
            opts.cwd = cwd.flatMap { $0.map { UnsafePointer($0) } }
            opts.flags = options.newProcessGroup ? UInt32(UV_PROCESS_DETACHED.rawValue) : 0
            opts.stdio_count = 3
            return stdio.withUnsafeMutableBufferPointer { stdioBuf in
                opts.stdio = stdioBuf.baseAddress
                if envp != nil {
                    return envp!.withUnsafeMutableBufferPointer { envBuf in
                        opts.env = envBuf.baseAddress
                        return uv_spawn(loop.raw, process.core.raw, &opts)
                    }
                }
                return uv_spawn(loop.raw, process.core.raw, &opts)
            }
        }
        // libuv has initialised the handle even when the spawn failed: it must be closed.
        process.core.attach(process)
        if rc != 0 {
            process.onExit = nil
            process.close()
            throw UVError(rc)
        }
        process.pid = process.core.raw.pointee.pid
        return process
    }

    /// Signals the child alone.
    public func signal(_ signum: Int32) throws(UVError) {
        guard core.isOpen, !exited else { throw UVError(-ESRCH) }
        try UVError.check(uv_process_kill(core.raw, signum))
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

    func handleDidClose() { core.finishClose() }
}

/// Confined to its loop's thread: not Sendable, on purpose.
@available(*, unavailable)
extension UVProcess: Sendable {}
