import Foundation
import Testing
@testable import SwarmHTTP
@testable import SwarmUV
@testable import SwarmTransport

/// HTTPS on the HTTP server (issue 16 item 1): curl reads `/metrics` over TLS 1.3 with the
/// bearer token, trusting the self-signed certificate alone; a plaintext request to the HTTPS
/// port gets a 400 saying so; HTTPS to a plain port fails at once; a handshake never finished
/// is closed at the deadline; the self-signed certificate is kept across restarts with a
/// private key. Each test ends checking that no handle leaked.
@Suite(.serialized) struct HTTPSServerTests {
    static func directory() throws -> String {
        let dir = NSTemporaryDirectory() + "swarm-https-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// An HTTPS server (self-signed certificate in `dir`) with a token, on loopback.
    static func withServer(limits: HTTPLimits = HTTPLimits(), dir: String,
                           _ body: (EventLoop, HTTPServer, SocketAddress) throws -> Void) throws {
        let loop = EventLoop()
        var https = HTTPSOptions(selfSignedDirectory: dir)
        https.always = true
        let (server, address) = try HTTPListen.start(loop: loop, host: "127.0.0.1", port: 0, token: "s3cret",
                                                     router: HTTPServerTests.router(), limits: limits, https: https)
        try body(loop, server, address)
        server.stop()
        try closeLoopCheckingLeaks(loop)
    }

    /// Runs curl with `arguments` while the loop serves; its exit status and output.
    static func curl(_ loop: EventLoop, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(MetricsEndToEndTests.curl))
        process.arguments = ["-sS", "--max-time", "10"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // A timer keeps the loop turning while curl runs (it may have nothing else to do).
        let tick = try UVTimer(loop: loop)
        tick.start(afterMs: 10, repeatMs: 10) {}
        runLoop(loop, timeoutMs: 15_000) { !process.isRunning }
        tick.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, stdout, stderr)
    }

    @Test(.enabled(if: MetricsEndToEndTests.curl != nil, "curl is not installed (scripts/ensure-deps.sh installs it): no real HTTPS client"))
    func curlReadsMetricsOverTLSWithTheTokenAndTheCertificate() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.withServer(dir: dir) { loop, server, address in
            let cert = try #require(server.certificate)
            #expect(cert.selfSigned && cert.created)
            let url = "https://127.0.0.1:\(address.port)/metrics"
            let ok = try Self.curl(loop, ["--cacert", cert.cert, "-H", "Authorization: Bearer s3cret", "-w", " %{http_code}", url])
            #expect(ok.status == 0, "\(ok.stderr)")
            #expect(ok.stdout == "metrics for /metrics\n 200", "\(ok.stdout)")
            let denied = try Self.curl(loop, ["--cacert", cert.cert, "-o", "/dev/null", "-w", "%{http_code}", url])
            #expect(denied.stdout == "401")
            // Without trusting the certificate, curl refuses it: it is not from a public CA.
            let untrusted = try Self.curl(loop, ["-o", "/dev/null", url])
            #expect(untrusted.status != 0)
            #expect(server.requestsServed == 2)
        }
    }

    @Test func aPlaintextRequestToTheHTTPSPortIsToldAndClosed() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.withServer(dir: dir) { loop, server, address in
            let client = try HTTPServerTests.Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            client.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n")
            #expect(runLoop(loop) { client.ended })
            #expect(client.statuses == ["HTTP/1.1 400 Bad Request"])
            #expect(client.text.contains("this port speaks HTTPS"))
            #expect(server.tlsFailures == 1 && server.requestsServed == 0)
            client.tcp.close()
            runLoop(loop) { server.connectionCount == 0 }
        }
    }

    /// Issue 16: a TLS failure is logged with the peer and the reason, at most
    /// `tlsFailureLogLines` per window; the rest are counted in one summary line at its end.
    @Test func tlsFailuresAreLoggedWithThePeerWithinABudget() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var limits = HTTPLimits()
        limits.tlsFailureLogLines = 2
        limits.tlsFailureLogWindowMs = 600_000
        limits.requestTimeoutMs = 400
        try Self.withServer(limits: limits, dir: dir) { loop, server, address in
            var lines: [String] = []
            server.log = { lines.append($0) }
            for i in 0..<5 {
                let client = try HTTPServerTests.Client(loop: loop, to: address)
                runLoop(loop) { client.connected }
                // Plaintext HTTP, a record that is not a ClientHello, plaintext...
                if i == 1 {
                    client.tcp.stream.write([0x16, 0x03, 0x01, 0x00, 0x05, 0x63, 0x63, 0x63, 0x63, 0x63])
                } else {
                    client.send("GET /metrics HTTP/1.1\r\n\r\n")
                }
                #expect(runLoop(loop, timeoutMs: 5_000) { client.ended })
                client.tcp.close()
            }
            #expect(runLoop(loop) { server.tlsFailures == 5 })
            #expect(lines.count == 2, "\(lines)")
            #expect(lines.first?.contains("TLS with 127.0.0.1:") == true, "\(lines)")
            #expect(lines.first?.contains("plaintext HTTP to this HTTPS port") == true, "\(lines)")
            #expect(lines.last?.contains("TLS handshake failed") == true, "\(lines)")
            // The window ends: the sweep logs how many were not.
            server.tlsFailureLines.windowMs = 0
            #expect(runLoop(loop, timeoutMs: 5_000) { lines.count == 3 })
            #expect(lines.last?.hasPrefix("HTTPS: 3 more TLS failures were not logged (at most 2 lines per") == true, "\(lines)")
            runLoop(loop) { server.connectionCount == 0 }
        }
    }

    @Test(.enabled(if: MetricsEndToEndTests.curl != nil, "curl is not installed (scripts/ensure-deps.sh installs it): no real HTTPS client"))
    func httpsToAPlainPortFailsAtOnce() throws {
        try HTTPServerTests.withServer(token: "s3cret") { loop, _, address in
            let started = Date()
            let result = try Self.curl(loop, ["-k", "https://127.0.0.1:\(address.port)/metrics"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("SSL") || result.stderr.contains("TLS"), "\(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 8)
        }
    }

    @Test func aHandshakeNeverFinishedIsClosedAtTheDeadline() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var limits = HTTPLimits()
        limits.requestTimeoutMs = 200
        limits.idleTimeoutMs = 60_000
        try Self.withServer(limits: limits, dir: dir) { loop, server, address in
            let client = try HTTPServerTests.Client(loop: loop, to: address)
            runLoop(loop) { client.connected }
            // The start of a ClientHello record, and then nothing.
            client.tcp.stream.write([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
            #expect(runLoop(loop, timeoutMs: 3_000) { client.ended })
            #expect(client.received.isEmpty)
            #expect(server.tlsFailures == 1)
            client.tcp.close()
        }
    }

    @Test func theSelfSignedCertificateIsKeptAcrossRestartsWithAPrivateKey() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try HTTPSCertificate.selfSigned(in: dir, names: ["10.0.0.7", "sched.example"])
        #expect(first.created && first.selfSigned)
        let again = try HTTPSCertificate.selfSigned(in: dir)
        #expect(!again.created && again.fingerprint == first.fingerprint)
        let mode = try FileManager.default.attributesOfItem(atPath: first.key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The fingerprint is the one openssl (and a browser) shows.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["x509", "-in", first.cert, "-noout", "-fingerprint", "-sha256", "-ext", "subjectAltName"]
            let output = try CapturedRun.run(process, timeout: 20)
            #expect(output.stdout.contains("=\(first.fingerprint)"), "\(output.stdout)")
            #expect(output.stdout.contains("IP Address:10.0.0.7") && output.stdout.contains("DNS:sched.example"), "\(output.stdout)")
        }
        // Half a pair is refused, never completed.
        try FileManager.default.removeItem(atPath: first.key)
        #expect(throws: TLSError.self) { _ = try HTTPSCertificate.selfSigned(in: dir) }
    }

    @Test func theRuleDecidesWhereHTTPSIsServed() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loopback = try SocketAddress(host: "127.0.0.1", port: 0)
        let other = try SocketAddress(host: "10.1.2.3", port: 0)
        // Loopback without a certificate: plain HTTP; elsewhere: self-signed in the directory.
        #expect(try HTTPListen.certificate(for: loopback, host: "127.0.0.1", https: HTTPSOptions(selfSignedDirectory: dir)) == nil)
        let made = try #require(try HTTPListen.certificate(for: other, host: "10.1.2.3", https: HTTPSOptions(selfSignedDirectory: dir)))
        #expect(made.selfSigned && made.cert.hasPrefix(dir))
        // A given pair: served on loopback too.
        let given = try #require(try HTTPListen.certificate(for: loopback, host: "127.0.0.1",
                                                           https: HTTPSOptions(cert: made.cert, key: made.key)))
        #expect(!given.selfSigned && given.fingerprint == made.fingerprint)
        // Off loopback with nowhere to keep one: a one-line reason.
        #expect(throws: HTTPListen.Failure.self) { _ = try HTTPListen.certificate(for: other, host: "10.1.2.3", https: HTTPSOptions()) }
        // A key that is not the certificate's.
        let otherDir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: otherDir) }
        let stranger = try HTTPSCertificate.selfSigned(in: otherDir)
        do {
            _ = try HTTPListen.certificate(for: loopback, host: "127.0.0.1", https: HTTPSOptions(cert: made.cert, key: stranger.key))
            Issue.record("a mismatched key was accepted")
        } catch {
            #expect(error.description.contains("does not match") || error.description.contains("mismatch"), "\(error)")
        }
    }
}
