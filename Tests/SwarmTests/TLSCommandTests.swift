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
        // Again on the same directory: the CA and the scheduler's certificate stay as they
        // are, one more worker and client certificate come from that CA (numbered on).
        let caBefore = try String(contentsOfFile: "\(dir)/ca.pem", encoding: .utf8)
        let again = try harness.run(["tls", "init", dir])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("using the existing CA"), "\(again.stdout)")
        #expect(again.stdout.contains("\(dir)/worker-2.pem") && again.stdout.contains("\(dir)/client-2-key.pem"), "\(again.stdout)")
        #expect(!again.stdout.contains("ca.pem") && !again.stdout.contains("scheduler.pem"), "\(again.stdout)")
        #expect(try String(contentsOfFile: "\(dir)/ca.pem", encoding: .utf8) == caBefore)
        for name in ["ca", "scheduler", "worker-1", "worker-2", "client-2"] {
            let mode = try FileManager.default.attributesOfItem(atPath: "\(dir)/\(name)-key.pem")[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(name)-key.pem")
        }
        let hosts = try harness.run(["tls", "init", dir, "--host", "sched.lan"])
        #expect(hosts.status == 2)
        #expect(hosts.stderr.contains("scheduler.pem exists already and keeps its names"), "\(hosts.stderr)")
        // Half the CA is never completed or replaced.
        try FileManager.default.moveItem(atPath: "\(dir)/ca-key.pem", toPath: "\(harness.dir)/ca-key.pem")
        let halfCA = try harness.run(["tls", "init", dir])
        #expect(halfCA.status == 2)
        #expect(halfCA.stderr.contains("ca-key.pem is missing beside"), "\(halfCA.stderr)")
        func flags(_ name: String, ca: String = "\(dir)/ca.pem") -> [String] {
            ["--tls-cert", "\(dir)/\(name).pem", "--tls-key", "\(dir)/\(name)-key.pem", "--tls-ca", ca]
        }
        // Certificates authenticate: no token needed, any address allowed.
        let scheduler = try harness.start("scheduler", ["scheduler", "--listen", "127.0.0.1:0", "--in-memory",
                                                        "--http-listen", "127.0.0.1:0"] + flags("scheduler"))
        let address = String(try #require(scheduler.waitForLine(containing: "listening on")?.split(separator: " ").last))
        let worker = try harness.start("worker", ["worker", "--scheduler", address, "--slots", "1", "--name", "w1",
                                                  "--data-dir", "\(harness.dir)/w1", "--http-listen", "127.0.0.1:0"] + flags("worker-1"))
        _ = try EndToEndTests.waitForNodes(harness, address, count: 1, extra: flags("client-1"))
        let submit = try harness.run(["submit", "--scheduler", address, "--wait"] + flags("client-1") + ["--", "echo", "over-tls"])
        #expect(submit.status == 0, "\(submit.stderr)")
        #expect(submit.stdout.contains("over-tls"))

        // Their HTTP listeners serve HTTPS with their own certificates, verified against the CA.
        let schedulerHTTP = String(try #require(scheduler.waitForLine(containing: "http listening on")?.split(separator: " ").last))
        let workerHTTP = String(try #require(worker.waitForLine(containing: "http listening on")?.split(separator: " ").last))
        #expect(scheduler.waitForLine(containing: "https: certificate \(dir)/scheduler.pem, SHA-256 fingerprint") != nil)
        if MetricsEndToEndTests.curl != nil {
            let port = { (http: String) in http.split(separator: ":").last.map(String.init) ?? "" }
            let fromScheduler = try MetricsEndToEndTests.get("https://localhost:\(port(schedulerHTTP))/metrics",
                                                             options: ["--cacert", "\(dir)/ca.pem"])
            #expect(fromScheduler.status == 200)
            let workerPort = port(workerHTTP)
            let fromWorker = try MetricsEndToEndTests.get("https://worker-1.swarm:\(workerPort)/metrics",
                                                          options: ["--cacert", "\(dir)/ca.pem", "--resolve", "worker-1.swarm:\(workerPort):127.0.0.1"])
            #expect(fromWorker.status == 200)
            #expect(fromWorker.body.contains("swarm_worker_slots 1"), "\(fromWorker.body.prefix(300))")
            #expect(try MetricsEndToEndTests.get("http://\(workerHTTP)/metrics").status == 400)
        }

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
