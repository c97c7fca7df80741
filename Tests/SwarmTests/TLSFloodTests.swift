import Foundation
import Testing
import SwarmProtocol
@testable import SwarmTransport

/// A peer holding the token (a task's credential is enough) floods a TLS session with work
/// that carries no frame: KeyUpdates, each costing the receiver new keys and a KeyUpdate of
/// its own. Two sessions talk through memory here, no socket.
@Suite struct TLSFloodTests {
    static let token = ClusterToken("tls-flood-token")

    /// A client and a server session with their handshake done.
    static func pair() throws -> (client: TLSSession, server: TLSSession) {
        let client = try TLSSession(context: TLSContext(clientToken: token, role: .client, name: "c", files: nil))
        let server = try TLSSession(context: TLSContext(serverToken: token, files: nil))
        var plain: [UInt8] = []
        var toServer = try client.start()
        for _ in 0..<4 where !(client.isEstablished && server.isEstablished) {
            let toClient = try toServer.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
            toServer = try toClient.withUnsafeBytes { bytes throws(TLSError) in try client.receive(bytes, plain: &plain) }
        }
        if !toServer.isEmpty {
            _ = try toServer.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        }
        try #require(client.isEstablished && server.isEstablished)
        return (client, server)
    }

    /// `count` KeyUpdates from the client, one byte of data after every `every` of them
    /// (OpenSSL itself stops 32 in a row, not this), then `data` bytes of data.
    static func flood(_ client: TLSSession, count: Int, every: Int = 15, data: Int = 0) throws -> [UInt8] {
        var wire: [UInt8] = []
        for i in 0..<count {
            let update = client.requestKeyUpdate()
            try #require(!update.isEmpty)
            wire += update
            if i % every == every - 1 { wire += try client.seal([0x61]) }
        }
        if data > 0 { wire += try client.seal([UInt8](repeating: 0x62, count: data)) }
        return wire
    }

    @Test func aFloodOfKeyUpdatesEndsTheSession() throws {
        let (client, server) = try Self.pair()
        let wire = try Self.flood(client, count: 3_000)
        var plain: [UInt8] = []
        do {
            _ = try wire.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
            Issue.record("3,000 key updates were all taken")
        } catch {
            #expect("\(error)".contains("TLS key updates"), "\(error)")
        }
        // It ended within one piece of input past the allowance, not after all of them.
        #expect(plain.count < 200, "\(plain.count) bytes of data were read before the flood was cut")
    }

    @Test func keyUpdatesWithinTheAllowanceAreServed() throws {
        let (client, server) = try Self.pair()
        // The allowance, and one more for each MiB of data sent.
        let wire = try Self.flood(client, count: TLSSession.keyUpdateAllowance, data: TLSSession.keyUpdateBytes)
            + Self.flood(client, count: 1, every: 1)
        var plain: [UInt8] = []
        let reply = try wire.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        #expect(plain.count == TLSSession.keyUpdateAllowance / 15 + TLSSession.keyUpdateBytes + 1)
        // The server answered with KeyUpdates of its own (the client would count those as
        // its peer's: not read here), and still takes data.
        #expect(!reply.isEmpty)
        let more = try client.seal(Array("still talking".utf8))
        plain = []
        _ = try more.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        #expect(plain == Array("still talking".utf8))
    }
}
