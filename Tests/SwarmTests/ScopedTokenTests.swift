import Foundation
import Testing
@testable import SwarmProtocol
@testable import SwarmScheduler
@testable import SwarmCluster
@testable import SwarmHTTP
import SwarmUV

/// Issue 16 item 2: the worker, submit and read tokens, and which one a peer proved.
@Suite struct ScopedTokenTests {
    static let cluster = ClusterToken("cluster-secret-0")
    static let worker = ClusterToken("worker-secret-1")
    static let submit = ClusterToken("submit-secret-2")
    static let read = ClusterToken("read-secret-3")
    static let ring = TokenRing(cluster: cluster, worker: worker, submit: submit, read: read)

    /// One handshake of a peer holding `token` as `role`: the scope the server settled on (nil:
    /// refused), the error code it sent, and whether the peer saw the server prove its token.
    static func handshake(_ token: ClusterToken?, role: PeerRole, name: String = "peer",
                          ring: TokenRing = ring) throws -> (scope: TokenScope?, code: ErrorCode?, clientEstablished: Bool) {
        var client = ClientHandshake(role: role, name: name, token: token, nonce: "client-nonce")
        var server = ServerHandshake(ring: ring, serverName: "sched", makeNonce: { "server-nonce" })
        let run = try HandshakeTests.run(client: &client, server: &server)
        let code = run.wire.compactMap { if case .error(let e) = $0 { e.code } else { nil } }.first
        return (server.isEstablished ? server.scope : nil, code, client.isEstablished)
    }

    /// Each token as each role: the scope proved, or the refusal's code. The peer checks the
    /// server's proof with its own token, so no side learns or sends another token.
    @Test func theHandshakeTellsWhichTokenThePeerProvedAndRefusesTheWrongRole() throws {
        let table: [(ClusterToken?, PeerRole, TokenScope?, ErrorCode?)] = [
            (Self.cluster, .worker, .cluster, nil), (Self.cluster, .client, .cluster, nil),
            (Self.worker, .worker, .worker, nil), (Self.worker, .client, nil, .forbidden),
            (Self.submit, .client, .submit, nil), (Self.submit, .worker, nil, .forbidden),
            (Self.read, .client, .read, nil), (Self.read, .worker, nil, .forbidden),
            (ClusterToken("stranger"), .client, nil, .authFailed), (ClusterToken("stranger"), .worker, nil, .authFailed),
        ]
        for (token, role, scope, code) in table {
            let result = try Self.handshake(token, role: role)
            #expect(result.scope == scope, "\(token?.text ?? "-") as \(role)")
            #expect(result.code == code, "\(token?.text ?? "-") as \(role)")
            #expect(result.clientEstablished == (scope != nil), "\(token?.text ?? "-") as \(role)")
        }
        // A task's credential proves only itself, as a client named after its task.
        let credential = ClusterToken(Self.cluster.taskCredential(for: "t1"))
        #expect(try Self.handshake(credential, role: .client, name: "task:t1").scope == .task)
        #expect(try Self.handshake(credential, role: .client, name: "task:t2").code == .authFailed)
        #expect(try Self.handshake(Self.submit, role: .client, name: "task:t1").code == .authFailed)
        // A ring of the cluster token alone: as before.
        let plain = TokenRing(cluster: Self.cluster)
        #expect(try Self.handshake(Self.cluster, role: .worker, ring: plain).scope == .cluster)
        #expect(try Self.handshake(Self.submit, role: .client, ring: plain).code == .authFailed)
        #expect(try Self.handshake(nil, role: .client, ring: TokenRing(cluster: nil)).scope == .cluster)
    }

    @Test func aForbiddenRoleSaysWhichTokenMayAndIsPermanentForAWorker() throws {
        var client = ClientHandshake(role: .worker, name: "fake", token: Self.submit, nonce: "n")
        var server = ServerHandshake(ring: Self.ring, serverName: "sched", makeNonce: { "s" })
        let run = try HandshakeTests.run(client: &client, server: &server)
        #expect(run.client.failures == ["a submit token may not register a worker (only the cluster token or the worker token may)"])
        #expect(client.failureIsPermanent)
    }

    @Test func aRingNeedsTheClusterTokenAndDistinctTokens() {
        #expect(Self.ring.problem == nil)
        #expect(TokenRing(cluster: nil).problem == nil)
        #expect(TokenRing(cluster: nil, read: Self.read).problem?.hasPrefix("--read-token-file needs the cluster token") == true)
        #expect(TokenRing(cluster: Self.cluster, worker: Self.cluster).problem == "the cluster and worker tokens are the same: each role needs its own token")
        #expect(TokenRing(cluster: Self.cluster, submit: Self.read, read: Self.read).problem == "the submit and read tokens are the same: each role needs its own token")
        #expect(Self.ring.readerTexts == [Self.submit.text, Self.read.text])
    }

    /// Every client request type against the cluster, submit and read tokens.
    @Test func eachRoleAgainstEachRequestType() throws {
        let state = try ClientPolicyTests.state()
        let spec = TaskSpec(id: "new", command: ["true"])
        let requests: [(Message, RolePolicy.Kind)] = [
            (.status(.init(requestId: 1, id: "r")), .read),
            (.listTasks(.init(requestId: 1)), .read),
            (.listTree(.init(requestId: 1, id: "r")), .read),
            (.listNodes(.init(requestId: 1)), .read),
            (.stats(.init(requestId: 1)), .read),
            (.logs(.init(requestId: 1, id: "r", follow: false)), .read),
            (.wait(.init(requestId: 1, ids: ["r"])), .read),
            (.states(.init(requestId: 1, ids: ["r"])), .read),
            (.submit(.init(requestId: 1, task: spec)), .change),
            (.submitBatch(.init(requestId: 1, tasks: [spec])), .change),
            (.rerun(.init(requestId: 1, id: "r", newId: "r2")), .change),
            (.cancel(.init(requestId: 1, id: "r")), .change),
            (.cancelTree(.init(requestId: 1, id: "r")), .change),
            (.drain(.init(requestId: 1, name: "w1")), .operate),
            (.undrain(.init(requestId: 1, name: "w1")), .operate),
            (.gc(.init(requestId: 1)), .operate),
        ]
        #expect(Set(requests.map(\.0.type)).count == requests.count)
        for (message, kind) in requests {
            #expect(RolePolicy.kind(message) == kind, "\(message.type)")
            let allowed: [(ClientIdentity, Bool)] = [(.cluster, true), (.submit, kind != .operate), (.read, kind == .read)]
            for (identity, may) in allowed {
                do {
                    let admitted = try ClientPolicy.admit(message, identity: identity, state: state)
                    #expect(may, "\(identity) sent \(message.type)")
                    #expect(admitted == message)
                } catch {
                    #expect(!may, "\(identity) sent \(message.type): \(error.reason)")
                    #expect(error.code == .forbidden)
                    #expect(!error.closes)
                    #expect(error.reason.hasPrefix("\(identity.tokenName) may not send '\(message.type)'"))
                }
            }
        }
        // Blobs: uploads of inputs and fetches of artifacts, for all but the read token.
        for identity: ClientIdentity? in [nil, .cluster, .submit, .task("r")] {
            #expect(throws: Never.self) { try ClientPolicy.mayUseBlobs(identity: identity, type: "blobGet") }
        }
        #expect(throws: ClientRefusal(code: .forbidden, reason: "the read token may not send 'blobGet': it may only read (status, tasks, nodes, logs, stats, wait)")) {
            try ClientPolicy.mayUseBlobs(identity: .read, type: "blobGet")
        }
    }

    /// The HTTP listener takes the cluster token and the reader tokens it is given, and no other.
    @Test func theHTTPListenerTakesTheReaderTokensToo() throws {
        let loop = EventLoop()
        let (server, address) = try HTTPListen.start(loop: loop, host: "127.0.0.1", port: 0, token: "cluster-t",
                                                     router: HTTPServerTests.router(), moreTokens: ["submit-t", "read-t"])
        let client = try HTTPServerTests.Client(loop: loop, to: address)
        runLoop(loop) { client.connected }
        for token in ["cluster-t", "submit-t", "read-t", "worker-t", "read-", "read-tt", ""] {
            client.send("GET /metrics HTTP/1.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
        }
        client.send("GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        #expect(runLoop(loop) { client.ended })
        #expect(client.statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"] + Array(repeating: "HTTP/1.1 401 Unauthorized", count: 5))
        client.tcp.close()
        server.stop()
        try closeLoopCheckingLeaks(loop)
        // Without a cluster token there is no check to add tokens to: loopback only, open.
        let open = EventLoop()
        let (plain, _) = try HTTPListen.start(loop: open, host: "127.0.0.1", port: 0, token: nil, router: HTTPServerTests.router(), moreTokens: ["read-t"])
        plain.stop()
        try closeLoopCheckingLeaks(open)
    }

    @Test func theIdentityFollowsTheScopeAndATaskNameWins() {
        #expect(ClientIdentity(name: "client", scope: .submit) == .submit)
        #expect(ClientIdentity(name: "client", scope: .read) == .read)
        #expect(ClientIdentity(name: "client", scope: .cluster) == .cluster)
        #expect(ClientIdentity(name: "client", scope: nil) == .cluster)
        #expect(ClientIdentity(name: "task:t1", scope: .task) == .task("t1"))
    }

    @Test func clusterFileTakesTheScopedTokenFiles() throws {
        let dir = NSTemporaryDirectory() + "scoped-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/cluster.json"
        try #"{"scheduler": {"tokenFile": "/t/c", "tokens": {"worker": "/t/w", "submit": "/t/s", "read": "/t/r"}}}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let file = try ClusterFile.load(path: path)
        #expect(file.scheduler.workerTokenFile == "/t/w")
        #expect(file.scheduler.submitTokenFile == "/t/s")
        #expect(file.scheduler.readTokenFile == "/t/r")
        try #"{"scheduler": {"tokens": {"admin": "/t/a"}}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try ClusterFile.load(path: path) }
        try #"{"scheduler": {"tokens": "/t/a"}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try ClusterFile.load(path: path) }
    }
}
