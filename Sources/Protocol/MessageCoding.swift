import Foundation

/// Why a frame's payload is not a message we understand.
public enum MessageError: Error, Equatable, CustomStringConvertible, Sendable {
    case malformedJSON(String)
    case missingType
    case unknownType(String)
    case invalidFields(type: String, detail: String)

    public var description: String {
        switch self {
        // The type and details are the peer's text: escaped and cut (see `PeerText`).
        case .malformedJSON(let detail): return "payload is not a JSON object: \(PeerText.safe(detail))"
        case .missingType: return "message has no string field 'type'"
        case .unknownType(let type): return "unknown message type '\(PeerText.safe(type))'"
        case let .invalidFields(type, detail): return "message '\(PeerText.safe(type))' has invalid fields: \(PeerText.safe(detail))"
        }
    }
}

extension Message {
    /// The wire name in the `type` field.
    public var type: String {
        switch self {
        case .hello: "hello"
        case .challenge: "challenge"
        case .auth: "auth"
        case .welcome: "welcome"
        case .error: "error"
        case .register: "register"
        case .registered: "registered"
        case .heartbeat: "heartbeat"
        case .assign: "assign"
        case .taskStarted: "taskStarted"
        case .taskFinished: "taskFinished"
        case .resultAck: "resultAck"
        case .reject: "reject"
        case .kill: "kill"
        case .readLog: "readLog"
        case .logData: "logData"
        case .leave: "leave"
        case .submit: "submit"
        case .status: "status"
        case .wait: "wait"
        case .listTasks: "listTasks"
        case .listNodes: "listNodes"
        case .submitted: "submitted"
        case .taskInfo: "taskInfo"
        case .waitResult: "waitResult"
        case .taskList: "taskList"
        case .nodeList: "nodeList"
        case .health: "health"
        case .taskEvent: "taskEvent"
        case .taskOutput: "taskOutput"
        case .cancel: "cancel"
        case .stats: "stats"
        case .logs: "logs"
        case .drain: "drain"
        case .undrain: "undrain"
        case .submitBatch: "submitBatch"
        case .statsReply: "statsReply"
        case .logChunk: "logChunk"
        case .batchSubmitted: "batchSubmitted"
        case .blobOffer: "blobOffer"
        case .blobAccept: "blobAccept"
        case .blobChunk: "blobChunk"
        case .blobStored: "blobStored"
        case .blobGet: "blobGet"
        case .rerun: "rerun"
        case .gc: "gc"
        case .gcResult: "gcResult"
        case .cancelTree: "cancelTree"
        case .listTree: "listTree"
        case .taskTree: "taskTree"
        case .states: "states"
        case .taskStates: "taskStates"
        case .treeCancelled: "treeCancelled"
        }
    }

    private var payload: any Encodable {
        switch self {
        case .hello(let p): p
        case .challenge(let p): p
        case .auth(let p): p
        case .welcome(let p): p
        case .error(let p): p
        case .register(let p): p
        case .registered(let p): p
        case .heartbeat(let p): p
        case .assign(let p): p
        case .taskStarted(let p): p
        case .taskFinished(let p): p
        case .resultAck(let p): p
        case .reject(let p): p
        case .kill(let p): p
        case .readLog(let p): p
        case .logData(let p): p
        case .leave(let p): p
        case .submit(let p): p
        case .status(let p): p
        case .wait(let p): p
        case .listTasks(let p): p
        case .listNodes(let p): p
        case .submitted(let p): p
        case .taskInfo(let p): p
        case .waitResult(let p): p
        case .taskList(let p): p
        case .nodeList(let p): p
        case .health(let p): p
        case .taskEvent(let p): p
        case .taskOutput(let p): p
        case .cancel(let p): p
        case .stats(let p): p
        case .logs(let p): p
        case .drain(let p): p
        case .undrain(let p): p
        case .submitBatch(let p): p
        case .statsReply(let p): p
        case .logChunk(let p): p
        case .batchSubmitted(let p): p
        case .blobOffer(let p): p
        case .blobAccept(let p): p
        case .blobChunk(let p): p
        case .blobStored(let p): p
        case .blobGet(let p): p
        case .rerun(let p): p
        case .gc(let p): p
        case .gcResult(let p): p
        case .cancelTree(let p): p
        case .listTree(let p): p
        case .taskTree(let p): p
        case .states(let p): p
        case .taskStates(let p): p
        case .treeCancelled(let p): p
        }
    }

    private static func decodePayload(type: String, from d: Decoder) throws -> Message? {
        switch type {
        case "hello": .hello(try .init(from: d))
        case "challenge": .challenge(try .init(from: d))
        case "auth": .auth(try .init(from: d))
        case "welcome": .welcome(try .init(from: d))
        case "error": .error(try .init(from: d))
        case "register": .register(try .init(from: d))
        case "registered": .registered(try .init(from: d))
        case "heartbeat": .heartbeat(try .init(from: d))
        case "assign": .assign(try .init(from: d))
        case "taskStarted": .taskStarted(try .init(from: d))
        case "taskFinished": .taskFinished(try .init(from: d))
        case "resultAck": .resultAck(try .init(from: d))
        case "reject": .reject(try .init(from: d))
        case "kill": .kill(try .init(from: d))
        case "readLog": .readLog(try .init(from: d))
        case "logData": .logData(try .init(from: d))
        case "leave": .leave(try .init(from: d))
        case "submit": .submit(try .init(from: d))
        case "status": .status(try .init(from: d))
        case "wait": .wait(try .init(from: d))
        case "listTasks": .listTasks(try .init(from: d))
        case "listNodes": .listNodes(try .init(from: d))
        case "submitted": .submitted(try .init(from: d))
        case "taskInfo": .taskInfo(try .init(from: d))
        case "waitResult": .waitResult(try .init(from: d))
        case "taskList": .taskList(try .init(from: d))
        case "nodeList": .nodeList(try .init(from: d))
        case "health": .health(try .init(from: d))
        case "taskEvent": .taskEvent(try .init(from: d))
        case "taskOutput": .taskOutput(try .init(from: d))
        case "cancel": .cancel(try .init(from: d))
        case "stats": .stats(try .init(from: d))
        case "logs": .logs(try .init(from: d))
        case "drain": .drain(try .init(from: d))
        case "undrain": .undrain(try .init(from: d))
        case "submitBatch": .submitBatch(try .init(from: d))
        case "statsReply": .statsReply(try .init(from: d))
        case "logChunk": .logChunk(try .init(from: d))
        case "batchSubmitted": .batchSubmitted(try .init(from: d))
        case "blobOffer": .blobOffer(try .init(from: d))
        case "blobAccept": .blobAccept(try .init(from: d))
        case "blobChunk": .blobChunk(try .init(from: d))
        case "blobStored": .blobStored(try .init(from: d))
        case "blobGet": .blobGet(try .init(from: d))
        case "rerun": .rerun(try .init(from: d))
        case "gc": .gc(try .init(from: d))
        case "gcResult": .gcResult(try .init(from: d))
        case "cancelTree": .cancelTree(try .init(from: d))
        case "listTree": .listTree(try .init(from: d))
        case "taskTree": .taskTree(try .init(from: d))
        case "states": .states(try .init(from: d))
        case "taskStates": .taskStates(try .init(from: d))
        case "treeCancelled": .treeCancelled(try .init(from: d))
        default: nil
        }
    }

    /// The `requestId` of a client request or reply, if it has one.
    public var requestId: Int? {
        switch self {
        case .submit(let p): p.requestId
        case .status(let p): p.requestId
        case .wait(let p): p.requestId
        case .listTasks(let p): p.requestId
        case .listNodes(let p): p.requestId
        case .submitted(let p): p.requestId
        case .taskInfo(let p): p.requestId
        case .waitResult(let p), .taskList(let p): p.requestId
        case .nodeList(let p): p.requestId
        case .cancel(let p): p.requestId
        case .stats(let p): p.requestId
        case .logs(let p): p.requestId
        case .drain(let p): p.requestId
        case .undrain(let p): p.requestId
        case .submitBatch(let p): p.requestId
        case .statsReply(let p): p.requestId
        case .logChunk(let p): p.requestId
        case .batchSubmitted(let p): p.requestId
        case .blobOffer(let p): p.requestId
        case .blobAccept(let p): p.requestId
        case .blobChunk(let p): p.requestId
        case .blobStored(let p): p.requestId
        case .blobGet(let p): p.requestId
        case .rerun(let p): p.requestId
        case .gc(let p): p.requestId
        case .gcResult(let p): p.requestId
        case .cancelTree(let p): p.requestId
        case .listTree(let p): p.requestId
        case .taskTree(let p): p.requestId
        case .states(let p): p.requestId
        case .taskStates(let p): p.requestId
        case .treeCancelled(let p): p.requestId
        case .error(let p): p.requestId
        default: nil
        }
    }
}

/// Encodes and decodes messages to and from frame payloads.
public enum MessageCodec {
    struct Envelope: Encodable {
        let message: Message
        enum Keys: String, CodingKey { case type }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(message.type, forKey: .type)
            // The payload's fields go into the same object as `type`.
            try message.payloadEncode(to: encoder)
        }
    }

    struct Probe: Decodable {
        let message: Message
        enum Keys: String, CodingKey { case type }
        init(from decoder: Decoder) throws {
            let c: KeyedDecodingContainer<Keys>
            do { c = try decoder.container(keyedBy: Keys.self) } catch {
                throw MessageError.malformedJSON("top level is not an object")
            }
            guard let type = try? c.decode(String.self, forKey: .type) else { throw MessageError.missingType }
            let decoded: Message?
            do { decoded = try Message.decodePayloadPublic(type: type, from: decoder) } catch {
                throw MessageError.invalidFields(type: type, detail: MessageCodec.describe(error))
            }
            guard let decoded else { throw MessageError.unknownType(type) }
            message = decoded
        }
    }

    /// JSON payload bytes for `message` (without the frame header).
    public static func encode(_ message: Message) -> [UInt8] {
        // Every payload type is plain data: encoding cannot fail.
        try! FastJSONEncoder().encode(Envelope(message: message))
    }

    /// The whole `taskFinished` frame of a result already encoded (`resultJSON`: one JSON
    /// object, as `FastJSONEncoder` writes a `TaskResult`), without encoding it again.
    public static func taskFinishedFrame(resultJSON: some Collection<UInt8>) -> [UInt8] {
        let head = Array(#"{"type":"taskFinished","result":"#.utf8)
        var payload: [UInt8] = []
        payload.reserveCapacity(head.count + resultJSON.count + 1)
        payload += head
        payload += resultJSON
        payload.append(UInt8(ascii: "}"))
        return Frame.encode(payload)
    }

    /// A whole frame (header + payload) for `message`.
    public static func frame(_ message: Message) -> [UInt8] {
        Frame.encode(encode(message))
    }

    /// The message in `payload`. Read by `FastJSONDecoder`; anything it refuses is read again
    /// by Foundation's `JSONDecoder`, whose errors are the ones reported.
    public static func decode(_ payload: [UInt8]) throws(MessageError) -> Message {
        if let probe = try? FastJSONDecoder().decode(Probe.self, from: payload) { return probe.message }
        do {
            return try JSONDecoder().decode(Probe.self, from: Data(payload)).message
        } catch let error as MessageError {
            throw error
        } catch {
            throw MessageError.malformedJSON(describe(error))
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing field '\(path(ctx.codingPath + [key]))'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at '\(path(ctx.codingPath))'"
        case DecodingError.dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? ctx.debugDescription : "invalid value at '\(path(ctx.codingPath))'"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

extension Message {
    fileprivate func payloadEncode(to encoder: Encoder) throws { try payload.encode(to: encoder) }
    fileprivate static func decodePayloadPublic(type: String, from d: Decoder) throws -> Message? {
        try decodePayload(type: type, from: d)
    }
}
