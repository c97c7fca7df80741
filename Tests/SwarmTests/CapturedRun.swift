import Foundation

/// Runs a configured `Process` to its end, bounded: both pipes are read to EOF on threads of
/// their own (nothing is lost however late it comes, and a full pipe never blocks the child),
/// and the process is killed (SIGKILL) at `timeout`. Shared by the harnesses of the tests.
enum CapturedRun {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        /// It had to be killed at the deadline.
        var timedOut: Bool
        /// Its pipes were still open 10 s after it ended (a grandchild holds them).
        var outputOpen: Bool
    }

    /// `process` with its executable, arguments, directory and environment set; its standard
    /// input becomes /dev/null and its outputs are captured. Throws what `run()` throws.
    static func run(_ process: Process, timeout: Double) throws -> Output {
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let outData = Locked(Data()), errData = Locked(Data())
        let readers = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            readers.enter()
            Thread {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                sink.withLock { $0 = data }
                readers.leave()
            }.start()
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(2_000) }
        let timedOut = process.isRunning
        if timedOut { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let outputOpen = readers.wait(timeout: .now() + 10) == .timedOut
        return Output(status: process.terminationStatus,
                      stdout: String(decoding: outData.withLock { $0 }, as: UTF8.self),
                      stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self),
                      timedOut: timedOut, outputOpen: outputOpen)
    }
}
