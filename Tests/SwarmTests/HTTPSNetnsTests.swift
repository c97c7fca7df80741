import Foundation
import Testing

/// HTTPS off loopback with real processes (issue 16 item 1): a scheduler in a network
/// namespace of its own, its HTTP listener on the namespace's address with a token and no
/// certificate given, serves a self-signed certificate it makes in its state directory and
/// prints with its fingerprint; curl in that namespace trusts that file alone and reads
/// /metrics with the token; plain HTTP gets the 400; a restart serves the same certificate.
/// And Chromium reads the dashboard over HTTPS (`--ignore-certificate-errors`).
@Suite(.serialized) struct HTTPSNetnsTests {
    /// curl run inside `host`; its stdout (the body, then the status code on the last line).
    static func curl(_ host: NetnsHarness.Host, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(NetnsHarness.ipPath))
        process.arguments = Array(host.launcher.dropFirst()) + [try #require(MetricsEndToEndTests.curl), "-s", "--max-time", "10",
                                                                "-w", "\n%{http_code}"] + arguments
        return try CapturedRun.run(process, timeout: 20).stdout
    }

    @Test(.enabled(if: MetricsEndToEndTests.curl != nil, "curl is not installed (scripts/ensure-deps.sh installs it): no real HTTPS client"),
          .enabled(if: NetnsHarness.available, "needs `ip netns` (root)"))
    func offLoopbackTheListenerServesAKeptSelfSignedCertificate() throws {
        let processes = try ProcessHarness()
        let net = try NetnsHarness(hosts: 1, processes: processes)
        defer { net.cleanup() }
        let host = net.hosts[0]
        let token = "netns-https-\(UInt64.random(in: 0...UInt64.max))"
        let tokenFile = "\(processes.dir)/token"
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let state = "\(processes.dir)/state"
        var fingerprints: [String] = []
        for round in 0..<2 {
            let scheduler = try net.start("scheduler-\(round)", on: host, [
                "scheduler", "--listen", "127.0.0.1:0", "--in-memory", "--state-dir", state, "--token-file", tokenFile,
                "--http-listen", "\(host.address):0"])
            let http = String(try #require(scheduler.waitForLine(containing: "http listening on")?.split(separator: " ").last))
            #expect(http.hasPrefix(host.address + ":"))
            let line = try #require(scheduler.waitForLine(containing: "https: self-signed certificate"))
            #expect(line.contains("\(state)/https-cert.pem") && line.contains("(made now)") == (round == 0), "\(line)")
            fingerprints.append(String(try #require(line.split(separator: " ").last)))
            let ok = try Self.curl(host, ["--cacert", "\(state)/https-cert.pem", "-H", "Authorization: Bearer \(token)",
                                          "https://\(http)/metrics"])
            #expect(ok.hasSuffix("\n200") && ok.contains("swarm_tasks_submitted_total"), "\(ok.suffix(200))")
            let noToken = try Self.curl(host, ["--cacert", "\(state)/https-cert.pem", "https://\(http)/metrics"])
            #expect(noToken.hasSuffix("\n401"))
            let plain = try Self.curl(host, ["http://\(http)/metrics"])
            #expect(plain.hasSuffix("\n400") && plain.contains("this port speaks HTTPS"), "\(plain)")
            scheduler.process.terminate()
            scheduler.process.waitUntilExit()
        }
        #expect(fingerprints.count == 2 && fingerprints[0] == fingerprints[1] && fingerprints[0].count == 95)
        let mode = try FileManager.default.attributesOfItem(atPath: "\(state)/https-key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    /// A real browser (Chromium, told to accept the self-signed certificate) loads the
    /// dashboard over HTTPS and reads `/api/nodes` with the bearer token: TLS 1.3 with this
    /// server works for browsers, not only curl.
    @Test(.enabled(if: HeadlessBrowser.path != nil, "chromium is not installed: skipping the HTTPS browser test"))
    func aBrowserLoadsTheDashboardOverHTTPS() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let token = "browser-https-\(UInt64.random(in: 0...UInt64.max))"
        try token.write(toFile: "\(harness.dir)/token", atomically: true, encoding: .utf8)
        let certs = "\(harness.dir)/certs"
        #expect(try harness.run(["tls", "init", certs, "--workers", "0", "--clients", "0"]).status == 0)
        let scheduler = try harness.start("scheduler", [
            "scheduler", "--listen", "127.0.0.1:0", "--in-memory", "--state-dir", "\(harness.dir)/state",
            "--token-file", "\(harness.dir)/token", "--http-listen", "127.0.0.1:0",
            "--http-tls-cert", "\(certs)/scheduler.pem", "--http-tls-key", "\(certs)/scheduler-key.pem"])
        let http = String(try #require(scheduler.waitForLine(containing: "http listening on")?.split(separator: " ").last))
        #expect(scheduler.waitForLine(containing: "https: certificate \(certs)/scheduler.pem") != nil)
        let browser = try HeadlessBrowser(url: "https://\(http)/", profileDir: "\(harness.dir)/chromium", ignoreCertificateErrors: true)
        defer { browser.quit() }
        let loaded = try browser.waitFor("location.protocol + ' ' + document.readyState + ' ' + document.querySelectorAll('script').length",
                                         timeout: 10) { ($0 as? String)?.hasPrefix("https: complete") == true }
        #expect((loaded as? String)?.hasPrefix("https: complete") == true, "\(String(describing: loaded))")
        _ = try browser.evaluate("""
            fetch('/api/nodes', {headers: {Authorization: 'Bearer \(token)'}})
              .then(r => r.text().then(t => { window.swarmAnswer = r.status + ' ' + t }))
              .catch(e => { window.swarmAnswer = 'error ' + e })
            """)
        let answer = try browser.waitFor("window.swarmAnswer || ''", timeout: 10) { ($0 as? String)?.isEmpty == false } as? String
        #expect(answer?.hasPrefix("200 ") == true, "\(answer ?? "nil")")
    }
}
