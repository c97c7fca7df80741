import Foundation
import Testing

/// TLS on one side only, with real processes: the side without it is told why and stops.
@Suite struct TLSMismatchEndToEndTests {
    /// A worker without the token, against a scheduler that has one (so speaks TLS), is told
    /// "this scheduler requires TLS" and stops with exit 1, as a worker with a wrong token
    /// does (README: a refused TLS handshake is fatal), instead of retrying every 5 s for ever.
    @Test func aWorkerWithoutTheTokenOfATLSSchedulerStops() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        try "tls-mismatch-token\n".write(toFile: "\(harness.dir)/token", atomically: true, encoding: .utf8)
        let address = try EndToEndTests.startScheduler(harness, extra: ["--token-file", "\(harness.dir)/token", "--in-memory"])
        let worker = try harness.run(["worker", "--scheduler", address, "--slots", "1", "--name", "w",
                                      "--data-dir", "\(harness.dir)/w"], timeout: 20)
        #expect(worker.status == 1)
        #expect(worker.stderr.contains("requires TLS"), "\(worker.stderr)")
    }
}
