import Foundation
import Testing
@testable import SwarmTransport

/// `swarm tls init` writes into files it creates: a link planted at a file's name is never
/// written through, and keys are created mode 0600.
@Suite struct TLSInitTests {
    private func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "swarm-tls-init-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A dangling link at `ca-key.pem` (the existence check follows links and sees nothing)
    /// made the CA's private key go wherever the link pointed, in a file whoever planted the
    /// link may have made readable.
    @Test func aLinkPlantedAtAKeysNameIsNotWrittenThrough() throws {
        let root = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = root + "/tls"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let target = root + "/elsewhere-key.pem"
        try FileManager.default.createSymbolicLink(atPath: dir + "/ca-key.pem", withDestinationPath: target)
        do {
            _ = try TLSInit.make(directory: dir, workers: 0, clients: 0)
            Issue.record("tls init wrote through a link")
        } catch {
            #expect("\(error)".contains("ca-key.pem"), "\(error)")
            #expect("\(error)".contains("exists at that name already"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: target), "the CA key was written where the link pointed")
    }

    @Test func keysAreCreatedPrivate() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let written = try TLSInit.make(directory: dir, workers: 1, clients: 0)
        #expect(written.count == 6)
        for path in written where path.hasSuffix("-key.pem") {
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o600, "\(path): \(String(mode ?? -1, radix: 8))")
        }
    }
}
