import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// An event loop running on its own thread.
public final class EventLoopThread: Sendable {
    public let loop: EventLoop
    private let done = Locked<Bool>(false)
    private let thread: pthread_t
    private let closeError = Locked<String?>(nil)

    /// After `join`: why the loop could not be closed (leaked handles), or nil.
    public var leakReport: String? { closeError.withLock { $0 } }

    /// Starts a thread, creates its loop, calls `setup` on it, then runs the loop until
    /// `shutdown()` is called and every handle is closed. Blocks until `setup` has returned.
    public init(name: String, setup: @escaping @Sendable (EventLoop) -> Void) {
        final class Start: @unchecked Sendable {
            let ready = Locked<EventLoop?>(nil)
            let setup: @Sendable (EventLoop) -> Void
            let closeError: Locked<String?>
            let name: String
            init(name: String, setup: @escaping @Sendable (EventLoop) -> Void, closeError: Locked<String?>) {
                self.name = name
                self.setup = setup
                self.closeError = closeError
            }
        }
        let start = Start(name: name, setup: setup, closeError: closeError)
        var tid = pthread_t()
        let box = Unmanaged.passRetained(start).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let start = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
            _ = swarm_set_thread_name(String(start.name.prefix(15)))
            let loop = EventLoop()
            loop.keepAlive(true)
            start.setup(loop)
            start.ready.withLock { $0 = loop }
            loop.run()
            do { try loop.close() } catch {
                start.closeError.withLock { $0 = "\(error)" }
                FileHandleStderr.write("swarm: \(error)\n")
            }
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
        while true {
            if let loop = start.ready.withLock({ $0 }) { self.loop = loop; break }
            usleep(200)
        }
    }

    /// Lets the loop end once its handles are closed (they must be closed by the caller's
    /// code, e.g. inside an `execute` block). Safe from any thread.
    public func shutdown() {
        loop.execute { [loop] in loop.keepAlive(false) }
    }

    /// Waits for the loop thread to end. Call once, off the loop thread.
    public func join() {
        let already = done.withLock { d -> Bool in defer { d = true }; return d }
        if already { return }
        pthread_join(thread, nil)
    }
}
