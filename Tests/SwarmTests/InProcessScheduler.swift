import Foundation
import Logging
@testable import SwarmScheduler
import SwarmUV

/// Log lines a test's scheduler wrote (the message of each, one entry per call).
final class CapturedLog: @unchecked Sendable {
    let lines = Locked<[String]>([])
}

struct CapturingLogHandler: LogHandler {
    let sink: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        sink.lines.withLock { $0.append(message.description) }
    }
}

/// A scheduler in this process on its own loop thread, with its log captured. `onLoop` runs
/// code on that thread and waits for it; `stop` stops it and reports leaked handles.
final class InProcessScheduler: @unchecked Sendable {
    let thread: EventLoopThread
    let port: Int
    let log = CapturedLog()
    private let box = Locked<SchedulerServer?>(nil)

    init(_ config: SchedulerConfig) {
        var config = config
        config.port = 0
        let frozen = config
        let box = box, log = log
        let port = Locked(0)
        thread = EventLoopThread(name: "sched-test") { loop in
            let logger = Logger(label: "test") { _ in CapturingLogHandler(sink: log) }
            let server = SchedulerServer(loop: loop, config: frozen, logger: logger)
            port.withLock { $0 = (try? server.start().port) ?? 0 }
            box.withLock { $0 = server }
        }
        // The setup runs on the loop thread: wait for the port (bounded).
        for _ in 0..<3_000 where port.withLock({ $0 }) == 0 { usleep(10_000) }
        self.port = port.withLock { $0 }
    }

    var address: String { "127.0.0.1:\(port)" }

    /// Runs `body` with the server on its loop thread and returns what it returns.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (SchedulerServer) -> T) -> T? {
        let result = Locked<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        let box = box
        _ = thread.loop.execute {
            if let server = box.withLock({ $0 }) { result.withLock { $0 = body(server) } }
            done.signal()
        }
        _ = done.wait(timeout: .now() + 10)
        return result.withLock { $0 }
    }

    /// Stops the scheduler and its loop; returns the leak report (nil: no handle leaked).
    func stop() -> String? {
        let box = box
        _ = thread.loop.execute {
            box.withLock { $0?.stop(); $0 = nil }
            self.thread.loop.keepAlive(false)
        }
        thread.join()
        return thread.leakReport
    }
}

/// The resident set size of this process, in KiB (Linux `/proc/self/status`).
func residentKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}
