import SwarmProtocol

/// `swarm logs` of a task whose log file is on a worker: the file is read from the worker one
/// chunk at a time and relayed to the client. The pure core: the server sends what the
/// directives say. Bounded everywhere:
/// - one `readLog` in flight per relay, at most `chunkBytes` each;
/// - the next chunk is asked for only once the client has room for it (`clientReady`, which
///   the server calls when the client's connection has less than `clientLowWater` queued):
///   a client that stops reading stops the reads, nothing piles up here;
/// - at most `perWorker` relays read from one worker and `perClient` serve one connection;
/// - a read the worker leaves unanswered for `readTimeoutMs` ends the relay (`expire`), so a
///   worker that stays connected but never answers cannot hold a `swarm logs` forever.
public struct LogRelays<Client: Hashable> {
    public struct Limits: Sendable {
        public var chunkBytes = LogRead.maxChunkBytes
        public var perWorker = 8
        public var perClient = 4
        /// The client gets the next chunk once fewer bytes than this wait to be sent to it.
        public var clientLowWater = 1 << 20
        /// A `readLog` unanswered this long (monotonic ms) ends its relay.
        public var readTimeoutMs: UInt64 = 10_000
        public init() {}
    }

    public struct Relay: Equatable {
        public let client: Client
        public let requestId: Int
        public let taskId: String
        public let node: String
        /// Bytes of the file relayed so far: where the next chunk starts.
        public var offset: Int
        /// A `readLog` is out and not answered yet.
        public var reading: Bool
        /// When the `readLog` out was sent (monotonic ms).
        public var askedAtMs: UInt64
    }

    public enum Directive: Equatable {
        case read(node: String, Message.ReadLog)
        /// `data` (whole lines of the log file) for the client's request.
        case chunk(client: Client, requestId: Int, taskId: String, data: String)
        /// The relay is over.
        case finish(client: Client, requestId: Int, taskId: String, end: End)
    }

    public enum End: Equatable {
        /// The whole file was relayed.
        case complete
        /// Nothing came from the worker, for this reason: answer from the scheduler's copy.
        case unavailable(String)
        /// Part of the file was relayed; the rest cannot be, for this reason.
        case cutShort(String)
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case clientBusy(limit: Int)
        case workerBusy(node: String, limit: Int)

        public var description: String {
            switch self {
            case .clientBusy(let limit): "this connection already reads \(limit) logs at once; wait for one to end"
            case let .workerBusy(node, limit): "worker \(node) is already sending \(limit) logs; try again shortly"
            }
        }
    }

    public let limits: Limits
    public private(set) var relays: [Int: Relay] = [:]
    private var nextReadId = 1

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Starts relaying task `taskId`'s log file from `node` to `client`'s request.
    public mutating func start(client: Client, requestId: Int, taskId: String, node: String, nowMs: UInt64) throws(Refusal) -> [Directive] {
        if relays.values.count(where: { $0.client == client }) >= limits.perClient { throw .clientBusy(limit: limits.perClient) }
        if relays.values.count(where: { $0.node == node }) >= limits.perWorker {
            throw .workerBusy(node: node, limit: limits.perWorker)
        }
        let readId = nextReadId
        nextReadId = nextReadId >= LogRead.maxReadId ? 1 : nextReadId + 1
        relays[readId] = Relay(client: client, requestId: requestId, taskId: taskId, node: node, offset: 0, reading: true,
                                 askedAtMs: nowMs)
        return [.read(node: node, readRequest(readId))]
    }

    /// A worker's answer. One for a relay that is gone (its client left) or that came from
    /// another worker is ignored; one that is not the chunk asked for ends the relay.
    public mutating func received(_ data: Message.LogData, from node: String) -> [Directive] {
        guard var relay = relays[data.readId], relay.node == node, relay.reading else { return [] }
        if let problem = data.validationProblem() ?? mismatch(data, relay) {
            return end(data.readId, why: "worker \(node) sent an invalid log chunk: \(problem)")
        }
        if let problem = data.problem { return end(data.readId, why: "worker \(node): \(problem)") }
        let progressed = data.nextOffset > relay.offset
        relay.offset = data.nextOffset
        relay.reading = false
        relays[data.readId] = relay
        var directives: [Directive] = []
        if !data.data.isEmpty {
            directives.append(.chunk(client: relay.client, requestId: relay.requestId, taskId: relay.taskId, data: data.data))
        }
        if data.eof {
            relays[data.readId] = nil
            directives.append(.finish(client: relay.client, requestId: relay.requestId, taskId: relay.taskId, end: .complete))
        } else if !progressed {
            directives += end(data.readId, why: "worker \(node) sent no bytes before the end of the file")
        }
        return directives
    }

    /// `client` can take more: the next chunk of each of its relays that waits for that.
    public mutating func clientReady(_ client: Client, nowMs: UInt64) -> [Directive] {
        var directives: [Directive] = []
        for (readId, relay) in relays where relay.client == client && !relay.reading {
            relays[readId]!.reading = true
            relays[readId]!.askedAtMs = nowMs
            directives.append(.read(node: relay.node, readRequest(readId)))
        }
        return directives
    }

    /// The worker disconnected: its relays end (what it sent stays sent).
    public mutating func workerGone(_ node: String) -> [Directive] {
        relays.filter { $0.value.node == node }.keys.sorted().flatMap { end($0, why: "worker \(node) disconnected") }
    }

    /// Called on the scheduler's tick: each read unanswered for `readTimeoutMs` ends its relay
    /// (the scheduler's copy if nothing came yet), saying which worker did not answer. Its
    /// answer, if it comes later, is ignored.
    public mutating func expire(nowMs: UInt64) -> [Directive] {
        let late = relays.filter { $0.value.reading && nowMs >= $0.value.askedAtMs + limits.readTimeoutMs }
        let ms = limits.readTimeoutMs
        let within = ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms"
        return late.keys.sorted().flatMap { readId in
            end(readId, why: "worker \(late[readId]!.node) did not answer a log read within \(within)")
        }
    }

    /// The client disconnected: its relays stop (a chunk still in flight is ignored on arrival).
    public mutating func clientGone(_ client: Client) {
        relays = relays.filter { $0.value.client != client }
    }

    public func relayCount(client: Client) -> Int { relays.values.count(where: { $0.client == client }) }

    private func readRequest(_ readId: Int) -> Message.ReadLog {
        let relay = relays[readId]!
        return Message.ReadLog(readId: readId, id: relay.taskId, offset: relay.offset, maxBytes: limits.chunkBytes)
    }

    private func mismatch(_ data: Message.LogData, _ relay: Relay) -> String? {
        if data.id != relay.taskId { return "it is for task \(data.id), not \(relay.taskId)" }
        if data.offset != relay.offset { return "it starts at \(data.offset), not \(relay.offset)" }
        if data.nextOffset - data.offset > limits.chunkBytes { return "it is longer than the \(limits.chunkBytes) bytes asked for" }
        return nil
    }

    private mutating func end(_ readId: Int, why: String) -> [Directive] {
        guard let relay = relays.removeValue(forKey: readId) else { return [] }
        let end: End = relay.offset == 0 ? .unavailable(why) : .cutShort(why)
        return [.finish(client: relay.client, requestId: relay.requestId, taskId: relay.taskId, end: end)]
    }
}
