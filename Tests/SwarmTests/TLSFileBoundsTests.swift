import Foundation
import Testing
@testable import SwarmTransport

/// PEM files given to TLS (`--tls-cert/key/ca`, `--http-tls-cert/key`, the self-signed pair in
/// the state directory) must be regular files of at most `TLSContext.maxPEMBytes`: OpenSSL reads
/// whatever a path gives, and `/dev/zero` or a FIFO held the start for ever (a huge file, its
/// memory). Each is refused at once with a line naming the file.
@Suite(.serialized) struct TLSFileBoundsTests {
    /// A valid self-signed pair in a fresh directory.
    static func pair() throws -> (dir: String, cert: HTTPSCertificate) {
        let dir = try HTTPSServerTests.directory()
        return (dir, try HTTPSCertificate.selfSigned(in: dir))
    }

    @Test func aDeviceOrAFIFOIsRefusedAtOnce() throws {
        let (dir, pair) = try Self.pair()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TLSError.setup("cannot use TLS certificate /dev/zero: not a regular file (a PEM file is wanted)")) {
            _ = try TLSContext(httpsCert: "/dev/zero", key: pair.key)
        }
        let fifo = "\(dir)/key.fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: TLSError.setup("cannot use TLS key \(fifo): not a regular file (a PEM file is wanted)")) {
            _ = try HTTPSCertificate.given(cert: pair.cert, key: fifo)
        }
        let files = TLSCertificateFiles(cert: pair.cert, key: pair.key, ca: "/dev/urandom")
        #expect(throws: TLSError.setup("cannot use TLS CA /dev/urandom: not a regular file (a PEM file is wanted)")) {
            _ = try TLSContext(server: true, files: files)
        }
    }

    /// At the edge: a real certificate padded to `maxPEMBytes` is used; one byte more is not
    /// (OpenSSL took it, reading the whole file).
    @Test func aPEMFileOverTheCapIsRefusedAndOneAtTheCapIsUsed() throws {
        let (dir, pair) = try Self.pair()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pem = try Data(contentsOf: URL(fileURLWithPath: pair.cert))
        let padded = "\(dir)/padded.pem"
        // Text after the certificate is ignored by PEM readers; pad with comment lines.
        var bytes = pem
        let line = Data((String(repeating: "#", count: 99) + "\n").utf8)
        while bytes.count + line.count <= TLSContext.maxPEMBytes { bytes += line }
        bytes += Data(repeating: 0x23, count: TLSContext.maxPEMBytes - bytes.count)
        try bytes.write(to: URL(fileURLWithPath: padded))
        #expect(bytes.count == TLSContext.maxPEMBytes)
        _ = try TLSContext(httpsCert: padded, key: pair.key)
        try (bytes + Data([0x0A])).write(to: URL(fileURLWithPath: padded))
        #expect(throws: TLSError.setup("cannot use TLS certificate \(padded): \(TLSContext.maxPEMBytes + 1) bytes, more than a PEM file here may have (\(TLSContext.maxPEMBytes))")) {
            _ = try TLSContext(httpsCert: padded, key: pair.key)
        }
    }

    /// The self-signed pair kept in the state directory is read with the same bound: a huge
    /// file there (or a link to a device) stops the start with a line, never hangs it.
    @Test func aSelfSignedPairReplacedByALinkToADeviceIsRefused() throws {
        let (dir, pair) = try Self.pair()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: pair.cert)
        try FileManager.default.createSymbolicLink(atPath: pair.cert, withDestinationPath: "/dev/zero")
        #expect(throws: TLSError.setup("cannot use certificate \(pair.cert): not a regular file (a PEM file is wanted)")) {
            _ = try HTTPSCertificate.selfSigned(in: dir)
        }
    }

    /// End to end: `swarm scheduler --http-tls-cert /dev/zero` exits 1 at once with the line.
    @Test func theSchedulerRefusesADeviceAsItsCertificate() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let pair = try HTTPSCertificate.selfSigned(in: "\(harness.dir)/pair")
        let result = try harness.run(["scheduler", "--listen", "127.0.0.1:0", "--in-memory", "--state-dir", "\(harness.dir)/state",
                                      "--http-listen", "127.0.0.1:0", "--http-tls-cert", "/dev/zero", "--http-tls-key", pair.key],
                                     timeout: 30)
        #expect(result.status != 0)
        #expect(result.stderr.contains("/dev/zero: not a regular file"), "\(result.stderr)")
    }
}
