import Foundation
import Testing
import SwarmProtocol
@testable import SwarmTransport

/// What a client concludes from an alert that arrives before any data: a refusal of its
/// credentials (stop: retrying cannot help) only when the alert says so; a first record
/// damaged in flight (bad_record_mac) is not one, so a worker reconnects instead of stopping.
@Suite struct TLSTamperTests {
    /// The client's first flight after the server's (Finished, then `first` as a record with
    /// one byte flipped when `flip`) fed to the server; the alert it sends back fed to the
    /// client. Returns the client's error.
    private func firstRecordDamaged(client clientContext: TLSContext, server serverContext: TLSContext,
                                    flip: Bool) throws -> (client: TLSSession, error: String) {
        let client = try TLSSession(context: clientContext)
        let server = try TLSSession(context: serverContext)
        var plain: [UInt8] = []
        let hello = try client.start()
        let serverFlight = try hello.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        var toServer = try serverFlight.withUnsafeBytes { bytes throws(TLSError) in try client.receive(bytes, plain: &plain) }
        try #require(client.isEstablished)
        var record = try client.seal(MessageCodec.frame(.hello(.init(role: .worker, name: "w", nonce: "n"))))
        if flip { record[record.count - 3] ^= 0x01 }
        toServer += record
        var alert: [UInt8] = []
        do {
            _ = try toServer.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        } catch {
            alert = server.pendingAlert()
        }
        try #require(!alert.isEmpty, "the server took the record")
        do {
            _ = try alert.withUnsafeBytes { bytes throws(TLSError) in try client.receive(bytes, plain: &plain) }
            return (client, "")
        } catch {
            return (client, "\(error)")
        }
    }

    @Test func aFirstRecordDamagedInFlightIsNotARefusedHandshake() throws {
        let token = ClusterToken("tls-tamper-token")
        let (client, error) = try firstRecordDamaged(
            client: TLSContext(clientToken: token, role: .worker, name: "w", files: nil),
            server: TLSContext(serverToken: token, files: nil), flip: true)
        #expect(error.contains("bad record mac"), "\(error)")
        #expect(!client.handshakeFailed, "a damaged record was taken for refused credentials: \(error)")
    }

    /// A client listing TLS_AES_256_GCM_SHA384 first (as OpenSSL's s_client does) still gets
    /// the token's PSK: the server only takes the SHA-256 suites in token mode (it used to
    /// pick the SHA-384 suite and fail: "no suitable signature algorithm").
    @Test func aClientPreferringSHA384SuitesStillHandshakesWithThePSK() throws {
        let token = ClusterToken("tls-suites-token")
        let clientContext = try TLSContext(clientToken: token, role: .worker, name: "w", files: nil)
        #expect(clientContext.setSuites("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"))
        let client = try TLSSession(context: clientContext)
        let server = try TLSSession(context: TLSContext(serverToken: token, files: nil))
        var plain: [UInt8] = []
        let hello = try client.start()
        let serverFlight = try hello.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        let finished = try serverFlight.withUnsafeBytes { bytes throws(TLSError) in try client.receive(bytes, plain: &plain) }
        _ = try finished.withUnsafeBytes { bytes throws(TLSError) in try server.receive(bytes, plain: &plain) }
        #expect(client.isEstablished && server.isEstablished)
    }
}
