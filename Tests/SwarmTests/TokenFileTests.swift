import Foundation
import Testing
import SwarmClient
import SwarmProtocol

/// Token files (`--token-file`, `--worker/submit/read-token-file`) at their edges: text with
/// a trailing newline or CRLF is the same token, anything but UTF-8 text of at most
/// `maxTokenFileBytes` bytes is refused with one line, never read as some other token.
@Suite struct TokenFileTests {
    private func file(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "swarm-token-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func refusal(_ path: String) -> String? {
        do {
            _ = try loadClusterToken(file: path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Two different files of bytes that are not UTF-8 each once decoded as U+FFFD per bad
    /// byte: the same token, so either file's holder was let into the other's cluster.
    @Test func bytesThatAreNotUTF8AreRefusedNotReadAsAnotherToken() throws {
        let a = try file(Array("key-".utf8) + [0xff, 0xfe, 0x80])
        let b = try file(Array("key-".utf8) + [0xc0, 0xc1, 0xf5])
        defer { unlink(a); unlink(b) }
        for path in [a, b] {
            let reason = try #require(refusal(path), "a token file of random bytes was accepted")
            #expect(reason.contains("is not UTF-8 text"), "\(reason)")
            #expect(reason.contains("base64"), "\(reason)")
        }
    }

    @Test func newlinesAroundTheTokenAreNotPartOfIt() throws {
        let plain = try file(Array("s3cret".utf8))
        let lf = try file(Array("s3cret\n".utf8))
        let crlf = try file(Array("s3cret\r\n".utf8))
        defer { for path in [plain, lf, crlf] { unlink(path) } }
        let tokens = try [plain, lf, crlf].map { try loadClusterToken(file: $0) }
        #expect(tokens.allSatisfy { $0 == ClusterToken("s3cret") })
    }

    @Test func emptyHugeAndMissingFilesAreRefusedWithAReason() throws {
        let empty = try file([])
        let blanks = try file(Array(" \r\n\t\n".utf8))
        let atLimit = try file([UInt8](repeating: 0x61, count: maxTokenFileBytes))
        let overLimit = try file([UInt8](repeating: 0x61, count: maxTokenFileBytes + 1))
        defer { for path in [empty, blanks, atLimit, overLimit] { unlink(path) } }
        #expect(refusal(empty)?.contains("is empty") == true)
        #expect(refusal(blanks)?.contains("is empty") == true)
        #expect(try loadClusterToken(file: atLimit) == ClusterToken(String(repeating: "a", count: maxTokenFileBytes)))
        #expect(refusal(overLimit)?.contains("holds more than \(maxTokenFileBytes) bytes") == true, "\(refusal(overLimit) ?? "accepted")")
        #expect(refusal("/nonexistent/swarm-token")?.contains("cannot read token file") == true)
        #expect(refusal(NSTemporaryDirectory()) != nil)
    }

    /// `SWARM_TOKEN` is read as a token file is: the same token with blanks or a newline
    /// around it, and only blanks refused (it was a token of spaces, accepted off loopback;
    /// and `"s3cret "` was a token no HTTP client could send: HTTP drops a header's trailing
    /// blanks).
    @Test func theEnvironmentTokenIsTrimmedAndBlankIsRefused() throws {
        #expect(try clusterToken(environment: nil) == nil)
        #expect(try clusterToken(environment: "") == nil)
        for value in ["s3cret", "s3cret\n", " s3cret \r\n", "\ts3cret"] {
            #expect(try clusterToken(environment: value)?.text == "s3cret", "\(value.debugDescription)")
        }
        for value in ["   ", "\n", " \t\r\n"] {
            #expect(throws: (any Error).self, "\(value.debugDescription)") { _ = try clusterToken(environment: value) }
            do { _ = try clusterToken(environment: value) } catch {
                #expect("\(error)" == "SWARM_TOKEN holds only blanks: set it to the cluster token, or unset it")
            }
        }
    }
}
