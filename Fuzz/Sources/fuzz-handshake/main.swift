import FuzzSupport
import SwarmProtocol

// The handshake state machines on arbitrary message sequences. The first byte picks a mode:
// - server: `ServerHandshake` (with or without a token, an `admit` that may refuse) against up
//   to 16 messages built from the input, among them `auth` with the right proof, a wrong one,
//   or one under another token; checked step by step against a small reference model;
// - client: `ClientHandshake` likewise (welcomes with the right or a wrong server proof);
// - pair: a client and a server talking, each with no token or one of two, while the input
//   drops, repeats or replays (from an earlier session) messages.
// Properties: never a crash; directives exactly as the model says; nothing after the
// handshake ends but "already finished"; every message survives its own encoding; and
// authentication: with a token, a side is established only when the other side holds the
// same token and answered this session's nonce (replays from another session never do).

let tokenA = ClusterToken("fuzz-token-a")
let tokenB = ClusterToken("fuzz-token-b")
let finished: [HandshakeDirective] = [.failed("handshake already finished")]

/// Every message the machines see has been through the wire format, as in real use.
func wire(_ message: Message) -> Message {
    do { return try MessageCodec.decode(MessageCodec.encode(message)) } catch {
        Fuzz.fail("\(message) does not survive its encoding: \(error)")
    }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16) }.joined() }

/// A message of any kind the handshake may meet; `proof` gives the right `auth`/`welcome` MAC
/// for the current state when the model knows it.
func message(_ input: inout FuzzInput, auth rightAuth: String?, welcome rightWelcome: String?) -> Message {
    switch input.byte() % 10 {
    case 0, 1:
        let version = input.byte() % 8 == 0 ? Int(input.byte()) - 1 : protocolVersion
        let role: PeerRole = input.bool() ? .worker : .client
        var name = input.string()
        switch input.byte() % 8 {
        case 0: name = String(repeating: "n", count: 255 + Int(input.byte() % 2))
        case 1: name = "task:" + name
        default: break
        }
        let nonce: String? = input.bool() ? nil : hex(input.take(Int(input.byte() % 4)))
        return .hello(.init(version: version, role: role, name: name, nonce: nonce))
    case 2: return .auth(.init(mac: rightAuth ?? "00"))
    case 3: return .auth(.init(mac: hex(input.take(Int(input.byte() % 40)))))
    case 4: return .challenge(.init(nonce: hex(input.take(Int(input.byte() % 8)))))
    case 5: return .welcome(.init(version: input.byte() % 8 == 0 ? 2 : protocolVersion, server: "s", mac: rightWelcome))
    case 6: return .welcome(.init(server: input.string(), mac: input.bool() ? nil : hex(input.take(32))))
    case 7:
        let codes: [ErrorCode] = [.authFailed, .versionMismatch, .badMessage, .handshakeRequired, .internalError]
        return .error(.init(code: codes[Int(input.byte()) % codes.count], reason: input.string()))
    case 8: return .heartbeat(.init(freeSlots: 1, running: []))
    default: return .listNodes(.init(requestId: Int(input.byte())))
    }
}

func fuzzServer(_ input: inout FuzzInput) {
    let token: ClusterToken? = [nil, tokenA][Int(input.byte() % 2)]
    let nonce = "nonce-" + hex(input.take(4))
    var server = ServerHandshake(token: token, serverName: "sched", makeNonce: { nonce })
    var awaiting: Message.Hello? = nil  // the model: hello taken, auth awaited
    var done = false
    for _ in 0..<16 where !input.isEmpty {
        let key = awaiting.flatMap { h in token?.key(role: h.role, name: h.name) }
        let right = awaiting.flatMap { h in key?.proof(purpose: "peer", nonce: nonce, role: h.role, name: h.name) }
        let m = wire(message(&input, auth: right, welcome: nil))
        let refuse = input.byte() % 8 == 0
        var admitted: Message.Hello?
        let got = server.receive(m, admit: { admitted = $0; return refuse ? "refused by admit" : nil })
        Fuzz.check(admitted == nil || !done, "admit asked after the end")
        if done {
            Fuzz.check(got == finished, "after the end: \(got)")
            continue
        }
        let expected = serverModel(m, token: token, nonce: nonce, awaiting: &awaiting, refuse: refuse)
        switch (expected, got.last) {
        case (.established(let hello, let mac)?, .established(let h)?):
            Fuzz.check(h == hello && got == [.send(.welcome(.init(server: "sched", mac: mac))), .established(hello)],
                       "established as \(got), model \(hello) \(String(describing: mac))")
            Fuzz.check(server.isEstablished && admitted == hello, "established without admit, or not established")
            done = true
        case (.challenge?, _):
            Fuzz.check(got == [.send(.challenge(.init(nonce: nonce)))] && !server.isEstablished, "wanted a challenge, got \(got)")
        case (.refused(let code)?, .failed(let reason)?):
            guard got.count == 3, case .send(.error(let e)) = got[0], got[1] == .close else { Fuzz.fail("refusal shape \(got)") }
            Fuzz.check(e.code == code && e.reason == reason && !server.isEstablished, "refused with \(e), model \(code)")
            done = true
        default:
            Fuzz.fail("server got \(m), gave \(got), model \(String(describing: expected))")
        }
    }
}

enum ServerStep { case challenge, established(Message.Hello, String?), refused(ErrorCode) }

/// What `ServerHandshake` must do with `m`; nil never happens for a machine not yet done.
func serverModel(_ m: Message, token: ClusterToken?, nonce: String, awaiting: inout Message.Hello?,
                 refuse: Bool) -> ServerStep? {
    if let hello = awaiting {
        guard case .auth(let auth) = m else { return .refused(.authFailed) }
        let key = token!.key(role: hello.role, name: hello.name)
        guard key.verify(auth.mac, purpose: "peer", nonce: nonce, role: hello.role, name: hello.name),
              let peerNonce = hello.nonce, !peerNonce.isEmpty, !refuse else { return .refused(.authFailed) }
        return .established(hello, key.proof(purpose: "server", nonce: peerNonce, role: hello.role, name: hello.name))
    }
    guard case .hello(let hello) = m else { return .refused(.handshakeRequired) }
    guard hello.version == protocolVersion else { return .refused(.versionMismatch) }
    guard !hello.name.isEmpty, hello.name.utf8.count <= 255 else { return .refused(.badMessage) }
    if token != nil {
        awaiting = hello
        return .challenge
    }
    return refuse ? .refused(.authFailed) : .established(hello, nil)
}

func fuzzClient(_ input: inout FuzzInput) {
    let token: ClusterToken? = [nil, tokenA][Int(input.byte() % 2)]
    let role: PeerRole = input.bool() ? .worker : .client
    let name = "w" + hex(input.take(2))
    let nonce = "client-" + hex(input.take(4))
    var client = ClientHandshake(role: role, name: name, token: token, nonce: nonce)
    var done = false
    if input.byte() % 16 != 0 {
        let hello = client.start()
        Fuzz.check(hello == [.send(.hello(.init(role: role, name: name, nonce: token == nil ? nil : nonce)))], "start gave \(hello)")
    } else {
        done = true  // not started: every reply is out of place
    }
    for _ in 0..<16 where !input.isEmpty {
        let right = token?.proof(purpose: "server", nonce: nonce, role: role, name: name)
        let m = wire(message(&input, auth: nil, welcome: right))
        let got = client.receive(m)
        if done {
            Fuzz.check(got == finished, "after the end: \(got)")
            continue
        }
        switch m {
        case .challenge(let c) where token != nil:
            Fuzz.check(got == [.send(.auth(.init(mac: token!.proof(purpose: "peer", nonce: c.nonce, role: role, name: name))))],
                       "challenge answered with \(got)")
        case .welcome(let w) where w.version == protocolVersion
            && (token == nil || w.mac.map { token!.verify($0, purpose: "server", nonce: nonce, role: role, name: name) } == true):
            Fuzz.check(got == [.established(.init(role: role, name: name))] && client.isEstablished, "welcome \(w) gave \(got)")
            done = true
        case .error(let e):
            Fuzz.check(got == [.close, .failed(e.reason)], "error gave \(got)")
            Fuzz.check(client.failureIsPermanent == (e.code == .authFailed || e.code == .versionMismatch), "permanence of \(e.code)")
            done = true
        default:
            Fuzz.check(got.count == 2 && got[0] == .close && !client.isEstablished, "\(m) gave \(got)")
            if case .failed = got[1] {} else { Fuzz.fail("\(m) gave \(got)") }
            let permanent: Bool
            switch m {
            case .challenge, .welcome: permanent = true
            default: permanent = false
            }
            Fuzz.check(client.failureIsPermanent == permanent, "\(m): permanent \(client.failureIsPermanent)")
            done = true
        }
    }
}

Fuzz.run { data in
    var input = FuzzInput(data)
    switch input.byte() % 3 {
    case 0: fuzzServer(&input)
    case 1: fuzzClient(&input)
    default: fuzzPair(&input)
    }
}
