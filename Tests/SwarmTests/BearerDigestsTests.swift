import Foundation
import Testing
import SwarmProtocol

/// Issue 16 item 2 on a worker's `/metrics`: the scheduler tells a worker (and only a worker)
/// the digests of the tokens that may read, the worker takes exactly those, bounded.
@Suite struct BearerDigestsTests {
    static let ring = TokenRing(cluster: ClusterToken("cluster-t"), worker: ClusterToken("worker-t"),
                                submit: ClusterToken("submit-t"), read: ClusterToken("read-t"))

    /// Runs a handshake between `ring`'s scheduler and a peer holding `token`; the welcome.
    static func welcome(role: PeerRole, token: ClusterToken) -> (Message.Welcome?, ClientHandshake) {
        var server = ServerHandshake(ring: ring, serverName: "s")
        var client = ClientHandshake(role: role, name: "w1", token: token)
        var inFlight = client.start()
        var welcome: Message.Welcome?
        for _ in 0..<4 {
            var replies: [HandshakeDirective] = []
            for case .send(let message) in inFlight { replies += server.receive(message) }
            inFlight = []
            for case .send(let message) in replies {
                if case .welcome(let w) = message { welcome = w }
                inFlight += client.receive(message)
            }
        }
        return (welcome, client)
    }

    @Test func aWorkerLearnsTheReadingTokensByDigestAndAClientDoesNot() {
        let (welcome, client) = Self.welcome(role: .worker, token: ClusterToken("worker-t"))
        #expect(client.isEstablished)
        #expect(welcome?.readerDigests?.count == 3)
        for token in ["cluster-t", "submit-t", "read-t"] {
            #expect(client.readerDigests.contains(bearer: Array(token.utf8)), "\(token)")
        }
        for other in ["worker-t", "read-", "read-tt", "", "READ-T"] {
            #expect(!client.readerDigests.contains(bearer: Array(other.utf8)), "\(other)")
        }
        // No token text in the welcome.
        let sent = (welcome?.readerDigests ?? []).joined()
        #expect(!sent.contains("read-t") && !sent.contains(BearerDigestsTests.hex("read-t")))
        let (toClient, _) = Self.welcome(role: .client, token: ClusterToken("submit-t"))
        #expect(toClient != nil && toClient?.readerDigests == nil)
    }

    static func hex(_ text: String) -> String { text.utf8.map { String(format: "%02x", $0) }.joined() }

    @Test func digestsFromTheWireAreBounded() {
        let good = BearerDigests.hex(of: ClusterToken("read-t"))
        #expect(good.count == 64)
        // Malformed entries are dropped; past `maxCount` the rest are ignored.
        let odd = [String(good.dropLast()), good + "0", String(repeating: "z", count: 64), good.uppercased()]
        let parsed = BearerDigests(hex: odd)
        #expect(parsed.digests.count == 1)
        #expect(parsed.contains(bearer: Array("read-t".utf8)))
        let many = BearerDigests(hex: Array(repeating: BearerDigests.hex(of: ClusterToken("x")), count: 9) + [good])
        #expect(many.digests.count == BearerDigests.maxCount)
        #expect(!many.contains(bearer: Array("read-t".utf8)))
        #expect(!BearerDigests().contains(bearer: []))
    }
}
