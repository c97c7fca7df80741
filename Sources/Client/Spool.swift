import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// `swarm spool DIR`: the original coordinator's request and result directories served by
/// the cluster. The shell of `SpoolCore`: it watches `DIR/requests/` (`UVFSEvent`, plus a
/// rescan every `rescanMs` for file systems without inotify), does the file work the core
/// asks for, and talks to the scheduler on one `SwarmClient` connection: a `submitBatch` of
/// one task per request (idempotent: a task with the same id and spec is reported as
/// existing) and one `wait` per task, which the scheduler answers when the task ends.
public final class Spool {
    public struct Options: Sendable {
        public var dir: String
        public var defaults = SpoolRequest.Defaults()
        public var limits = SpoolLimits()
        public var rescanMs: UInt64 = 1_000
        /// Stop (as on SIGTERM) once the parent process is no longer this pid: test
        /// harnesses set `SWARM_EXIT_WITH_PARENT` so a crashed harness leaves no spool behind.
        public var exitWithParent: Int32?
        public init(dir: String) { self.dir = dir }
    }

    enum Pending { case submit(String), wait(String) }

    let options: Options
    let client: SwarmClient
    let files: SpoolFiles
    let log: (String) -> Void
    var core: SpoolCore
    var pending: [Int: Pending] = [:]
    var queue: [SpoolEvent] = []
    var draining = false
    var stopping = false
    /// Set when the scheduler refuses the spool's credentials a request: `run` throws it.
    var fatal: ClientError?
    var watcher: UVFSEvent?
    var rescanTimer: UVTimer?
    var dueTimer: UVTimer?
    var dueArmed = false
    var signals: [UVSignal] = []

    /// `log` gets one line per claim, rejection, result and connection change.
    public init(_ options: Options, client: SwarmClient, log: @escaping (String) -> Void) {
        self.options = options
        self.client = client
        self.files = SpoolFiles(root: options.dir)
        self.log = log
        self.core = SpoolCore(limits: options.limits)
    }

    /// Serves the directory until SIGTERM, SIGINT or SIGHUP. `ready` is called once the directories
    /// exist and the watch is on. Throws only for what no retry can fix: the directory (not
    /// creatable, served by another spool), or a scheduler refusing the credentials (at the
    /// handshake, or a token whose scope may not submit or wait).
    public func run(ready: () -> Void) throws(ClientError) {
        let lock: Int32
        do { lock = try files.prepare() } catch { throw .server(.unexpected, error.description) }
        defer { close(lock) }
        let loop = client.eventLoop
        try startHandles(loop)
        defer { closeHandles(loop) }
        feed(.recovering(SpoolFiles.list(files.processing, max: Int.max).files.keys.sorted()))
        rescan()
        ready()
        var nextConnect: Int64 = 0
        var warned = false
        while !stopping {
            if !client.isUsable && monotonicMillis() >= nextConnect {
                do {
                    try client.connect()
                    log("connected to the scheduler at \(client.address)")
                    warned = false
                    feed(.connected)
                } catch {
                    if case .handshake = error { throw error }
                    if !warned { log("cannot reach the scheduler (\(error)); retrying every 2 s"); warned = true }
                    client.resetConnection()
                    nextConnect = monotonicMillis() + 2_000
                }
            }
            _ = loop.runOnce()
            collectReplies()
            if let fatal { throw fatal }
            if client.connectionFailure != nil { connectionLost() }
        }
    }

    // MARK: Handles

    private func startHandles(_ loop: EventLoop) throws(ClientError) {
        do {
            let watcher = try UVFSEvent(loop: loop)
            self.watcher = watcher
            do {
                try watcher.start(path: files.requests) { [unowned self] event in self.fileEvent(event) }
            } catch {
                log("cannot watch \(files.requests) (\(error)); rescanning every \(options.rescanMs) ms only")
            }
            let rescanTimer = try UVTimer(loop: loop)
            rescanTimer.start(afterMs: options.rescanMs, repeatMs: options.rescanMs) { [unowned self] in
                if let parent = self.options.exitWithParent, getppid() != parent { self.stopping = true }
                self.rescan()
                self.feed(.tick)
            }
            self.rescanTimer = rescanTimer
            dueTimer = try UVTimer(loop: loop)
            for number in [SIGTERM, SIGINT, SIGHUP] {
                let signal = try UVSignal(loop: loop)
                try signal.start(signal: number) { [unowned self] _ in self.stopping = true }
                signals.append(signal)
            }
        } catch {
            throw .unreachable("the spool's event loop", error)
        }
    }

    private func closeHandles(_ loop: EventLoop) {
        watcher?.close()
        rescanTimer?.close()
        dueTimer?.close()
        for signal in signals { signal.close() }
        // A few turns for the close callbacks: the client's connection keeps the loop alive,
        // so "until idle" would never come (the client closes it when it goes).
        for _ in 0..<10 { _ = loop.runNoWait() }
    }

    private func fileEvent(_ event: UVFSEvent.Event) {
        guard let name = event.name, event.error == nil else { rescan(); return }
        feed(.observed(name, SpoolFiles.stamp(files.requests + "/" + name)))
    }

    private func rescan() {
        let (listing, complete) = SpoolFiles.list(files.requests, max: options.limits.maxTracked)
        feed(.scanned(listing, complete: complete))
    }

    // MARK: Events and directives

    /// Events are handled one after the other: a directive's outcome is queued, not handled
    /// inside the directive.
    func feed(_ event: SpoolEvent) {
        queue.append(event)
        guard !draining else { return }
        draining = true
        defer { draining = false }
        var onlyObserved = true
        while !queue.isEmpty {
            let next = queue.removeFirst()
            if case .observed = next {} else { onlyObserved = false }
            for directive in core.handle(next, now: monotonicMillis()) { perform(directive) }
        }
        // An observation only adds dues after those already armed for (`nextDue` looks at
        // every candidate: not once per file event of a burst).
        if !(onlyObserved && dueArmed) { armDueTimer() }
    }

    private func armDueTimer() {
        let now = monotonicMillis()
        guard let due = core.nextDue(now: now) else { dueTimer?.stop(); dueArmed = false; return }
        dueArmed = true
        dueTimer?.start(afterMs: UInt64(max(0, due - now))) { [unowned self] in
            self.dueArmed = false
            self.feed(.tick)
        }
    }

    private func perform(_ directive: SpoolDirective) {
        switch directive {
        case let .claim(name, stamp): claim(name, stamp)
        case .read(let name):
            let outcome = readOutcome(name)
            if case .request(let request, _) = outcome { log("taking up processing/\(name) (task \(request.id)) again") }
            queue.append(.read(name, outcome, recovered: true))
        case let .reject(name, reason): reject(name, reason)
        case let .submit(name, spec):
            if let id = client.sendAside({ .submitBatch(.init(requestId: $0, tasks: [spec])) }) {
                pending[id] = .submit(name)
            } else {
                queue.append(.submitFailed(name, nil, "not connected"))
            }
        case let .wait(name, id):
            if let rid = client.sendAside({ .wait(.init(requestId: $0, ids: [id])) }) {
                pending[rid] = .wait(name)
            } else {
                queue.append(.waitFailed(name, nil, "not connected"))
            }
        case let .complete(name, id, result): complete(name, id, result)
        case .finishExisting(let name):
            moveToDone(name)
            queue.append(.completed(name))
        }
    }
}
