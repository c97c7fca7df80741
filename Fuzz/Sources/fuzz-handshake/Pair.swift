import FuzzSupport
import SwarmProtocol

/// One connection's handshake, both sides, with messages in flight each way.
struct Session {
    var client: ClientHandshake
    var server: ServerHandshake
    var toServer: [Message] = []
    var toClient: [Message] = []
    /// Every message sent, each way (what a later session's attacker may replay).
    var sentToServer: [Message] = []
    var sentToClient: [Message] = []
    var serverEstablished = false, clientEstablished = false
    var serverDone = false, clientDone = false

    init(serverToken: ClusterToken?, clientToken: ClusterToken?, role: PeerRole, name: String, nonce: String) {
        client = ClientHandshake(role: role, name: name, token: clientToken, nonce: "client-" + nonce)
        server = ServerHandshake(token: serverToken, serverName: "sched", makeNonce: { "server-" + nonce })
        for directive in client.start() { if case .send(let m) = directive { send(toServer: m) } }
    }

    mutating func send(toServer m: Message) { toServer.append(m); sentToServer.append(m) }
    mutating func send(toClient m: Message) { toClient.append(m); sentToClient.append(m) }

    /// Hands `m` to the server, as its connection would until the handshake ends.
    mutating func deliverToServer(_ m: Message) {
        guard !serverDone else { return }
        for directive in server.receive(wire(m)) {
            switch directive {
            case .send(let reply): send(toClient: reply)
            case .established: serverEstablished = true; serverDone = true
            case .close, .failed: serverDone = true
            }
        }
    }

    mutating func deliverToClient(_ m: Message) {
        guard !clientDone else { return }
        for directive in client.receive(wire(m)) {
            switch directive {
            case .send(let reply): send(toServer: reply)
            case .established: clientEstablished = true; clientDone = true
            case .close, .failed: clientDone = true
            }
        }
    }

    var idle: Bool { toServer.isEmpty && toClient.isEmpty }

    /// Runs until nothing is in flight (at most 32 steps). With `input`, each step may drop,
    /// repeat, reorder or replay (from `replay`, an earlier session's traffic); returns
    /// whether anything but plain delivery happened.
    mutating func run(_ input: inout FuzzInput?, replay: Session?) -> Bool {
        var interfered = false
        for _ in 0..<32 {
            var op: UInt8 = 0
            if input != nil { op = input!.byte() % 8 }
            if idle && op < 6 { break }
            switch op {
            case 0, 1, 2, 3:
                if !toServer.isEmpty { deliverToServer(toServer.removeFirst()) } else if !toClient.isEmpty { deliverToClient(toClient.removeFirst()) }
            case 4:
                interfered = true
                if !toClient.isEmpty { deliverToClient(toClient.removeFirst()) } else if !toServer.isEmpty { deliverToServer(toServer.removeFirst()) }
            case 5:
                interfered = true
                if !toServer.isEmpty { toServer.removeFirst() } else if !toClient.isEmpty { toClient.removeFirst() }
            case 6:
                interfered = true
                if let m = toServer.first ?? toClient.first { toServer.first != nil ? deliverToServer(m) : deliverToClient(m) }
            default:
                interfered = true
                guard let old = replay else { break }
                let pick = Int(input!.byte())
                if pick % 2 == 0, !old.sentToServer.isEmpty {
                    deliverToServer(old.sentToServer[pick / 2 % old.sentToServer.count])
                } else if !old.sentToClient.isEmpty {
                    deliverToClient(old.sentToClient[pick / 2 % old.sentToClient.count])
                }
            }
        }
        return interfered
    }
}

func fuzzPair(_ input: inout FuzzInput) {
    let tokens: [ClusterToken?] = [nil, tokenA, tokenB]
    let serverToken = tokens[Int(input.byte() % 3)]
    var clientToken = tokens[Int(input.byte() % 3)]
    let role: PeerRole = input.bool() ? .worker : .client
    let name = input.bool() ? ClusterToken.taskNamePrefix + "t" + hex(input.take(2)) : "w" + hex(input.take(2))
    // A task's client proves the task's credential (what a worker gives it), not the cluster
    // token; sometimes it holds that, sometimes (wrongly) the token itself.
    if input.bool() { clientToken = clientToken?.key(role: role, name: name) }
    // The key the server checks, and so the one the client must hold to get through.
    let match = serverToken?.key(role: role, name: name) == clientToken

    var noInput: FuzzInput? = nil
    var first = Session(serverToken: serverToken, clientToken: clientToken, role: role, name: name, nonce: "0")
    _ = first.run(&noInput, replay: nil)
    // A server without a token takes any client; a client with one needs the server's proof.
    let serverGetsThrough = serverToken == nil || match
    Fuzz.check(first.serverEstablished == serverGetsThrough && first.clientEstablished == match,
               "clean session, keys match \(match), \(role) \(name): server \(first.serverEstablished), client \(first.clientEstablished)")

    var steered: FuzzInput? = input
    var second = Session(serverToken: serverToken, clientToken: clientToken, role: role, name: name, nonce: "1")
    let interfered = second.run(&steered, replay: first)
    if !interfered && second.idle {
        Fuzz.check(second.serverEstablished == serverGetsThrough && second.clientEstablished == match, "undisturbed session differs")
    }
    // Authentication: whatever was dropped, repeated or replayed from the first session.
    if second.serverEstablished && serverToken != nil {
        Fuzz.check(match, "a server with a token established with a client that does not hold its key")
    }
    if second.clientEstablished && clientToken != nil {
        Fuzz.check(match, "a client with a token established with a server that does not hold its key")
    }
}
