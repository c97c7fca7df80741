import Testing
@testable import SwarmProtocol

/// `ServerHandshake` and `ClientHandshake` driven against each other by hand: every message
/// goes through `MessageCodec` as it would on the wire.
@Suite struct HandshakeTests {
    static let secret = "s3cret-Token-value-42"
    static let fixedNonce: @Sendable () -> String = { "server-nonce-0001" }

    /// What one side asked for, split by kind.
    struct Outcome {
        var sent: [Message] = []
        var closed = false
        var established: Message.Hello?
        var failures: [String] = []
    }

    static func split(_ directives: [HandshakeDirective]) -> Outcome {
        var o = Outcome()
        for d in directives {
            switch d {
            case .send(let m): o.sent.append(m)
            case .close: o.closed = true
            case .established(let h): o.established = h
            case .failed(let r): o.failures.append(r)
            }
        }
        return o
    }

    /// Transcript of a run: every message each side sent, plus both sides' outcomes.
    struct Run {
        var wire: [Message] = []
        var client = Outcome()
        var server = Outcome()
    }

    /// Runs the exchange until neither side has anything more to send.
    static func run(client: inout ClientHandshake, server: inout ServerHandshake) throws -> Run {
        var r = Run()
        var toServer: [Message] = []
        var toClient: [Message] = []
        func absorb(_ o: Outcome, into side: inout Outcome, outbox: inout [Message]) {
            side.sent += o.sent
            side.closed = side.closed || o.closed
            if let h = o.established { side.established = h }
            side.failures += o.failures
            outbox += o.sent
        }
        absorb(split(client.start()), into: &r.client, outbox: &toServer)
        var steps = 0
        while !toServer.isEmpty || !toClient.isEmpty {
            steps += 1
            #expect(steps < 20)
            if steps >= 20 { break }
            if !toServer.isEmpty {
                let m = toServer.removeFirst()
                r.wire.append(m)
                let onWire = try MessageCodec.decode(MessageCodec.encode(m))
                absorb(split(server.receive(onWire)), into: &r.server, outbox: &toClient)
            } else {
                let m = toClient.removeFirst()
                r.wire.append(m)
                let onWire = try MessageCodec.decode(MessageCodec.encode(m))
                absorb(split(client.receive(onWire)), into: &r.client, outbox: &toServer)
            }
        }
        return r
    }

    @Test func withoutTokenBothSidesAreEstablished() throws {
        var client = ClientHandshake(role: .worker, name: "w1", token: nil, nonce: "client-nonce")
        var server = ServerHandshake(token: nil, serverName: "sched", makeNonce: Self.fixedNonce)
        let r = try Self.run(client: &client, server: &server)
        #expect(r.wire.map(\.type) == ["hello", "welcome"])
        // Without a token the client offers no nonce.
        #expect(r.wire.first == .hello(.init(role: .worker, name: "w1", nonce: nil)))
        #expect(r.wire.last == .welcome(.init(server: "sched", mac: nil)))
        #expect(client.isEstablished)
        #expect(server.isEstablished)
        #expect(r.server.established == Message.Hello(role: .worker, name: "w1"))
        #expect(r.client.established?.name == "w1")
        #expect(r.client.failures.isEmpty && r.server.failures.isEmpty)
        #expect(!r.client.closed && !r.server.closed)
    }

    @Test func sameTokenGoesThroughChallengeAndNeverSendsTheToken() throws {
        var client = ClientHandshake(role: .client, name: "cli", token: ClusterToken(Self.secret), nonce: "client-nonce")
        var server = ServerHandshake(token: ClusterToken(Self.secret), serverName: "sched", makeNonce: Self.fixedNonce)
        let r = try Self.run(client: &client, server: &server)
        #expect(r.wire.map(\.type) == ["hello", "challenge", "auth", "welcome"])
        #expect(r.wire[0] == .hello(.init(role: .client, name: "cli", nonce: "client-nonce")))
        #expect(r.wire[1] == .challenge(.init(nonce: "server-nonce-0001")))
        #expect(client.isEstablished)
        #expect(server.isEstablished)
        #expect(r.server.established?.role == .client)
        #expect(r.server.established?.nonce == "client-nonce")
        #expect(r.client.failures.isEmpty && r.server.failures.isEmpty)
        // The proofs are the expected HMACs, and the welcome carries the server's own proof.
        let token = ClusterToken(Self.secret)
        let peerProof = token.proof(purpose: "peer", nonce: "server-nonce-0001", role: .client, name: "cli")
        #expect(r.wire[2] == .auth(.init(mac: peerProof)))
        #expect(peerProof.count == 64)
        guard case .welcome(let welcome) = r.wire[3] else { Issue.record("no welcome"); return }
        #expect(welcome.mac == token.proof(purpose: "server", nonce: "client-nonce", role: .client, name: "cli"))
        #expect(welcome.mac != peerProof)
        // The secret never crosses the wire.
        for m in r.wire {
            let text = String(decoding: MessageCodec.frame(m), as: UTF8.self)
            #expect(!text.contains(Self.secret), "\(m.type) leaks the token")
            #expect(!text.contains("s3cret"))
        }
    }

    @Test func wrongTokenOnClientIsRefusedWithAuthFailed() throws {
        var client = ClientHandshake(role: .worker, name: "w1", token: ClusterToken("wrong"), nonce: "cn")
        var server = ServerHandshake(token: ClusterToken(Self.secret), serverName: "sched", makeNonce: Self.fixedNonce)
        let r = try Self.run(client: &client, server: &server)
        #expect(r.wire.map(\.type) == ["hello", "challenge", "auth", "error"])
        guard case .error(let error) = r.wire.last else { Issue.record("no error"); return }
        #expect(error.code == .authFailed)
        #expect(error.reason.contains("wrong cluster token"))
        #expect(r.server.closed)
        #expect(r.server.failures.count == 1)
        #expect(!server.isEstablished)
        #expect(r.server.established == nil)
        // The client gives up on the error and closes too.
        #expect(!client.isEstablished)
        #expect(r.client.closed)
        #expect(r.client.failures == [error.reason])
    }

    @Test func clientWithoutTokenAgainstServerWithToken() throws {
        var client = ClientHandshake(role: .client, name: "cli", token: nil, nonce: "cn")
        var server = ServerHandshake(token: ClusterToken(Self.secret), serverName: "sched", makeNonce: Self.fixedNonce)
        let r = try Self.run(client: &client, server: &server)
        #expect(r.wire.map(\.type) == ["hello", "challenge"])
        #expect(!client.isEstablished)
        #expect(!server.isEstablished)
        #expect(r.client.closed)
        let reason = try #require(r.client.failures.first)
        #expect(reason.contains("token"))
        #expect(r.client.established == nil)
    }

    @Test func clientWithTokenRejectsServerWithoutToken() throws {
        var client = ClientHandshake(role: .worker, name: "w1", token: ClusterToken(Self.secret), nonce: "cn")
        var server = ServerHandshake(token: nil, serverName: "sched", makeNonce: Self.fixedNonce)
        let r = try Self.run(client: &client, server: &server)
        #expect(r.wire.map(\.type) == ["hello", "welcome"])
        #expect(r.wire.last == .welcome(.init(server: "sched", mac: nil)))
        #expect(server.isEstablished)
        #expect(!client.isEstablished)
        #expect(r.client.closed)
        #expect(r.client.established == nil)
        #expect(try #require(r.client.failures.first).contains("did not prove the cluster token"))
    }

    @Test func clientRejectsAForgedServerProof() {
        var client = ClientHandshake(role: .worker, name: "w1", token: ClusterToken(Self.secret), nonce: "cn")
        _ = client.start()
        // A proof made with another token, or replaying the peer-purpose proof, is refused.
        let forged = ClusterToken("other").proof(purpose: "server", nonce: "cn", role: .worker, name: "w1")
        let o = Self.split(client.receive(.welcome(.init(server: "evil", mac: forged))))
        #expect(o.closed)
        #expect(o.established == nil)
        #expect(!client.isEstablished)

        var client2 = ClientHandshake(role: .worker, name: "w1", token: ClusterToken(Self.secret), nonce: "cn")
        _ = client2.start()
        let replay = ClusterToken(Self.secret).proof(purpose: "peer", nonce: "cn", role: .worker, name: "w1")
        let o2 = Self.split(client2.receive(.welcome(.init(server: "evil", mac: replay))))
        #expect(o2.closed)
        #expect(!client2.isEstablished)
    }

    @Test func versionMismatchIsRefused() {
        var server = ServerHandshake(token: nil, serverName: "sched", makeNonce: Self.fixedNonce)
        let o = Self.split(server.receive(.hello(.init(version: protocolVersion + 1, role: .worker, name: "w1"))))
        #expect(o.sent.count == 1)
        guard case .error(let error) = o.sent.first else { Issue.record("no error sent"); return }
        #expect(error.code == .versionMismatch)
        #expect(error.reason.contains("\(protocolVersion + 1)"))
        #expect(o.closed)
        #expect(o.established == nil)
        #expect(!server.isEstablished)
        // And the server stays failed.
        let again = Self.split(server.receive(.hello(.init(role: .worker, name: "w1"))))
        #expect(again.sent.isEmpty)
        #expect(again.established == nil)
        #expect(!server.isEstablished)
    }

    @Test func clientRefusesWelcomeOfAnotherVersion() {
        var client = ClientHandshake(role: .client, name: "cli", token: nil, nonce: "cn")
        _ = client.start()
        let o = Self.split(client.receive(.welcome(.init(version: protocolVersion + 1, server: "s"))))
        #expect(o.closed)
        #expect(!client.isEstablished)
        #expect(o.failures.first?.contains("protocol \(protocolVersion + 1)") == true)
    }

    @Test func messageBeforeHelloIsHandshakeRequired() {
        var server = ServerHandshake(token: ClusterToken(Self.secret), serverName: "sched", makeNonce: Self.fixedNonce)
        let o = Self.split(server.receive(.listTasks(.init(requestId: 1))))
        guard case .error(let error) = o.sent.first else { Issue.record("no error sent"); return }
        #expect(o.sent.count == 1)
        #expect(error.code == .handshakeRequired)
        #expect(error.reason.contains("listTasks"))
        #expect(o.closed)
        #expect(!server.isEstablished)
    }

    @Test func messageOtherThanAuthAfterChallengeFails() {
        var server = ServerHandshake(token: ClusterToken(Self.secret), serverName: "sched", makeNonce: Self.fixedNonce)
        let first = Self.split(server.receive(.hello(.init(role: .worker, name: "w1", nonce: "cn"))))
        #expect(first.sent == [.challenge(.init(nonce: "server-nonce-0001"))])
        let o = Self.split(server.receive(.register(.init(slots: 1, labels: [:], running: [], finished: []))))
        guard case .error(let error) = o.sent.first else { Issue.record("no error sent"); return }
        #expect(error.code == .authFailed)
        #expect(o.closed)
        #expect(!server.isEstablished)
    }

    @Test func emptyNameIsBadMessage() {
        var server = ServerHandshake(token: nil, serverName: "sched")
        let o = Self.split(server.receive(.hello(.init(role: .worker, name: ""))))
        guard case .error(let error) = o.sent.first else { Issue.record("no error sent"); return }
        #expect(error.code == .badMessage)
        #expect(o.closed)
    }

    @Test func authProofIsBoundToNonceRoleAndName() {
        let token = ClusterToken(Self.secret)
        let proof = token.proof(purpose: "peer", nonce: "n", role: .worker, name: "w1")
        #expect(token.verify(proof, purpose: "peer", nonce: "n", role: .worker, name: "w1"))
        #expect(!token.verify(proof, purpose: "server", nonce: "n", role: .worker, name: "w1"))
        #expect(!token.verify(proof, purpose: "peer", nonce: "m", role: .worker, name: "w1"))
        #expect(!token.verify(proof, purpose: "peer", nonce: "n", role: .client, name: "w1"))
        #expect(!token.verify(proof, purpose: "peer", nonce: "n", role: .worker, name: "w2"))
        #expect(!ClusterToken("x").verify(proof, purpose: "peer", nonce: "n", role: .worker, name: "w1"))
        #expect(!token.verify(String(proof.dropLast()), purpose: "peer", nonce: "n", role: .worker, name: "w1"))
    }

    @Test func noncesAreFreshHex() throws {
        let a = ClusterToken.makeNonce(), b = ClusterToken.makeNonce()
        #expect(a.count == 64)
        #expect(a != b)
        #expect(a.wholeMatch(of: try Regex("[0-9a-f]{64}")) != nil)
    }

    /// Proofs, credentials and PSK identities are HMAC-SHA256 / SHA-256 in lowercase hex: the
    /// same text as before `Hex` replaced `String(format: "%02x")` (values from Python's hmac and
    /// hashlib), so peers of both versions still agree.
    @Test func credentialsAndFingerprintsKeepTheirHex() {
        let token = ClusterToken("correct horse battery staple")
        #expect(token.taskCredential(for: "task-42") == "eb764b1ae1a01e3c6d2de563206470dd1dd5326712585aa48046d902fe5df0ca")
        #expect(token.pskFingerprint == "tok:4833bf1467f39a4140199312")
        #expect(token.proof(purpose: "peer", nonce: "n0", role: .worker, name: "w1")
            == "1cc6212fecbbc11b1e56b4211186cf95581b6a33ebb13572606f2d3d030df06f")
        // A key longer than SHA-256's block is hashed first (RFC 2104), as before.
        #expect(ClusterToken(String(repeating: "k", count: 100)).taskCredential(for: "x")
            == "9823072204f10c5deb09ed49a262a057382f868353b12108f760b4426a587ed7")
        #expect(Hex.lower([0x00, 0x09, 0x0a, 0x7f, 0x80, 0xf0, 0xff]) == "00090a7f80f0ff")
        #expect(Hex.lower([UInt8]()) == "")
        for byte in UInt8.min...UInt8.max {
            #expect(Hex.lower([byte]) == String(byte, radix: 16).leftPadded(to: 2))
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite struct HandshakePermanenceTests {
    @Test func tokenAndVersionFailuresArePermanentOthersAreNot() {
        var wrong = ClientHandshake(role: .worker, name: "w", token: ClusterToken("x"))
        _ = wrong.start()
        _ = wrong.receive(.error(.init(code: .authFailed, reason: "authentication failed: wrong cluster token")))
        #expect(wrong.failureIsPermanent)

        var noToken = ClientHandshake(role: .worker, name: "w", token: nil)
        _ = noToken.start()
        _ = noToken.receive(.challenge(.init(nonce: "n")))
        #expect(noToken.failureIsPermanent)

        var busy = ClientHandshake(role: .worker, name: "w", token: nil)
        _ = busy.start()
        _ = busy.receive(.error(.init(code: .unexpected, reason: "too many connections in their handshake")))
        #expect(!busy.failureIsPermanent)

        var odd = ClientHandshake(role: .worker, name: "w", token: nil)
        _ = odd.start()
        _ = odd.receive(.listTasks(.init(requestId: 1)))
        #expect(!odd.failureIsPermanent)
    }

    /// Optional requests come with the welcome: a scheduler older than the field announces
    /// none (a client then never sends them), and a hostile list is cut to 64 short names.
    @Test func welcomeFeaturesAreReadAndBounded() throws {
        var client = ClientHandshake(role: .client, name: "cli", token: nil, nonce: "cn")
        var server = ServerHandshake(token: nil, serverName: "sched", makeNonce: HandshakeTests.fixedNonce)
        _ = try HandshakeTests.run(client: &client, server: &server)
        #expect(client.serverFeatures == ["states"])

        var old = ClientHandshake(role: .client, name: "cli", token: nil, nonce: "cn")
        _ = old.start()
        let olderJSON = #"{"type":"welcome","version":\#(protocolVersion),"server":"s"}"#
        let decoded = try MessageCodec.decode(Array(olderJSON.utf8))
        _ = old.receive(decoded)
        #expect(old.isEstablished && old.serverFeatures.isEmpty)

        var flooded = ClientHandshake(role: .client, name: "cli", token: nil, nonce: "cn")
        _ = flooded.start()
        let names = (0..<1_000).map { "f\($0)" } + [String(repeating: "x", count: 65)]
        _ = flooded.receive(.welcome(.init(server: "s", features: names)))
        #expect(flooded.isEstablished && flooded.serverFeatures.count == 64)
    }
}
