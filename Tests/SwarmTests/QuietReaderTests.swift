import Foundation
import Testing
import SwarmProtocol

/// `swarm logs -f ID | head -1` on a task that has gone quiet: the closed pipe is noticed while
/// waiting (the client polls stdout), not at the task's next output, and the command exits
/// quietly with status 0 like every other reader that leaves.
@Suite struct QuietReaderTests {
    /// One line of output, then silence: the task never writes again nor ends.
    static let quietTask: @Sendable (Message) -> FakeScheduler.Reply = { m in
        guard case .logs(let r) = m else {
            return .init(messages: [.error(.init(code: .unexpected, reason: "unexpected", requestId: m.requestId))])
        }
        return .init(messages: [.logChunk(.init(requestId: r.requestId, id: r.id, data: "first\n", done: false,
                                                stream: LogChunkStream.stdout))])
    }

    @Test func followNoticesAClosedReaderWhileTheTaskIsQuiet() throws {
        let fake = try FakeScheduler(script: Self.quietTask)
        defer { fake.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessHarness.swarmBinary)
        process.arguments = ["logs", "-f", "--scheduler", fake.address, "quiet"]
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SWARM_TOKEN")
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        // As `head -1`: read the first line, then close the read end.
        let first = out.fileHandleForReading.readData(ofLength: 6)
        #expect(String(decoding: first, as: UTF8.self) == "first\n")
        try out.fileHandleForReading.close()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        #expect(!process.isRunning, "swarm logs -f kept waiting for a reader that is gone")
        if process.isRunning { return }
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "killed by signal \(process.terminationStatus)")
        #expect(process.terminationStatus == 0)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.isEmpty, "\(stderr)")
    }
}
