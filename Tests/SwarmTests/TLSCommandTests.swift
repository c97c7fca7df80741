import Foundation
import Testing

/// Certificate mode through the CLI: `swarm tls init` makes the files, a scheduler, a worker
/// and a client given them run a task; a client without a certificate, or with another CA's,
/// is refused with a one-line reason; half the flags is a usage error.
@Suite struct TLSCommandTests {
    @Test func certificateModeEndToEnd() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let dir = "\(harness.dir)/tls"
        let made = try harness.run(["tls", "init", dir, "--workers", "1", "--clients", "1"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("\(dir)/scheduler.pem"))
        let again = try harness.run(["tls", "init", dir])
        #expect(again.status == 2)
        #expect(again.stderr.contains("exists already"))
        func flags(_ name: String, ca: String = "\(dir)/ca.pem") -> [String] {
            ["--tls-cert", "\(dir)/\(name).pem", "--tls-key", "\(dir)/\(name)-key.pem", "--tls-ca", ca]
        }
        // Certificates authenticate: no token needed, any address allowed.
        let address = try EndToEndTests.startScheduler(harness, extra: flags("scheduler"))
        try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "w1",
                                     "--data-dir", "\(harness.dir)/w1"] + flags("worker-1"))
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1, extra: flags("client-1"))
        let submit = try harness.run(["submit", "--scheduler", address, "--wait"] + flags("client-1") + ["--", "echo", "over-tls"])
        #expect(submit.status == 0, "\(submit.stderr)")
        #expect(submit.stdout.contains("over-tls"))

        let plain = try harness.run(["nodes", "--scheduler", address])
        #expect(plain.status != 0)
        #expect(plain.stderr.contains("requires TLS"), "\(plain.stderr)")
        #expect(plain.stderr.split(separator: "\n").count == 1, "\(plain.stderr)")

        let other = "\(harness.dir)/other"
        #expect(try harness.run(["tls", "init", other, "--workers", "0"]).status == 0)
        let stranger = try harness.run(["nodes", "--scheduler", address, "--tls-cert", "\(other)/client-1.pem",
                                        "--tls-key", "\(other)/client-1-key.pem", "--tls-ca", "\(dir)/ca.pem"])
        #expect(stranger.status != 0)
        #expect(stranger.stderr.contains("TLS handshake failed"), "\(stranger.stderr)")

        let half = try harness.run(["nodes", "--scheduler", address, "--tls-cert", "\(dir)/client-1.pem"])
        #expect(half.status != 0)
        #expect(half.stderr.contains("go together"), "\(half.stderr)")
    }
}
