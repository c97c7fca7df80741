import SwarmHTTP
import SwarmProtocol

/// Every bound the dashboard enforces, as numbers (README, "Dashboard"). Tests shrink them.
public struct DashboardLimits: Sendable, Equatable {
    /// Bytes of a request's query string (after `?`). Past it: 414.
    public var maxQueryBytes = 1_024
    /// Parameters in one query string. Past it: 400.
    public var maxQueryParameters = 16
    /// Tasks on one `/api/tasks` page when `limit` is not given.
    public var defaultPageSize = 100
    /// Tasks on one page at most: a larger `limit` is cut to it (the scheduler's own page
    /// bounds, bytes included, apply beneath).
    public var maxPageSize = 500
    /// Log streams (`/api/tasks/ID/log`) open at once on one listener. One more: 503. Room for
    /// one per running task of a 100-task batch; half the listener's connections
    /// (`HTTPLimits.maxConnections`, 256), so pages, `/api/` and `/metrics` still get through
    /// while the streams are all taken. Memory: at most 128 x `maxStreamQueuedBytes` queued.
    public var maxStreams = 128
    /// Bytes written to one log stream and not yet taken by the kernel. A reader this far
    /// behind is dropped: it gets a last `dropped` event and its stream ends (the page then
    /// reloads the log from the scheduler's copy). Its memory is bounded by this plus one chunk.
    public var maxStreamQueuedBytes = 256 * 1_024
    /// Ended tasks `/api/summary` lists under `recent`, newest first.
    public var recentOutcomes = 50
    /// Minutes of throughput `/api/summary` reports (ended tasks per minute).
    public var throughputMinutes = 15

    public init() {}
}

/// What a dashboard request asks for, parsed and checked: the path's task id by `TaskID`'s
/// rule, every query parameter known and within `DashboardLimits`. Pure.
public enum DashboardRoute: Equatable, Sendable {
    /// `/api/nodes`: what `swarm nodes --json` prints.
    case nodes
    /// `/api/summary`: queue depth, running, slots, throughput, recent outcomes.
    case summary
    /// `/api/stats`: what `swarm stats --json` prints.
    case stats
    /// `/api/tasks?state=&node=&model=&limit=&cursor=`: one page of `swarm tasks --json`.
    case tasks(filter: TaskFilter?, limit: Int, cursor: String?)
    /// `/api/tasks/ID`: what `swarm status --json ID` prints.
    case task(id: String)
    /// `/api/tasks/ID/log`: the task's log as Server-Sent Events, followed until it ends.
    case log(id: String)

    /// Why a request was not taken: its status and a one-line reason.
    public struct Refusal: Error, Equatable, Sendable {
        public var status: HTTPStatus
        public var reason: String
        public init(_ status: HTTPStatus, _ reason: String) {
            self.status = status
            self.reason = reason
        }
    }

    /// The route for `target` (path and query, as sent), or why it is refused.
    public static func parse(_ target: String, limits: DashboardLimits = DashboardLimits()) -> Result<DashboardRoute, Refusal> {
        // Split on bytes, not Characters: this runs for every request and log stream.
        let mark = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = target[..<(mark ?? target.endIndex)]
        let query = mark.map { target[target.utf8.index(after: $0)...] } ?? ""
        guard query.utf8.count <= limits.maxQueryBytes else {
            return .failure(Refusal(.uriTooLong, "query string of \(query.utf8.count) bytes; at most \(limits.maxQueryBytes)"))
        }
        let parameters: [(String, String)]
        if query.isEmpty {
            parameters = []
        } else {
            switch DashboardQuery.parse(query, maxParameters: limits.maxQueryParameters) {
            case .failure(let refusal): return .failure(refusal)
            case .success(let list): parameters = list
            }
        }
        // The segments after the first "/", split by hand on a copy of the bytes (a generic
        // split, or a walk of the String's UTF-8 view, cost ~4-7k instructions per log stream).
        let bytes = Array(path.utf8)
        var segments: [ArraySlice<UInt8>] = []
        segments.reserveCapacity(6)
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "/") {
            segments.append(bytes[start..<index])
            start = index + 1
        }
        segments.append(bytes[start...])
        segments.removeFirst()
        func word(_ index: Int, _ text: StaticString) -> Bool {
            index < segments.count
                && segments[index].elementsEqual(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
        guard word(0, "api") else { return .failure(Refusal(.notFound, "no such path: \(path.prefix(200))")) }
        let rest = segments.dropFirst()
        let id = rest.count > 1 ? String(decoding: segments[2], as: UTF8.self) : ""
        switch rest.count {
        case 1 where word(1, "nodes"): return noQuery(.nodes, parameters)
        case 1 where word(1, "summary"): return noQuery(.summary, parameters)
        case 1 where word(1, "stats"): return noQuery(.stats, parameters)
        case 1 where word(1, "tasks"): return tasks(parameters, limits: limits)
        case 2 where word(1, "tasks"): return taskId(id).flatMap { noQuery(.task(id: $0), parameters) }
        case 3 where word(1, "tasks") && word(3, "log"): return taskId(id).flatMap { noQuery(.log(id: $0), parameters) }
        default: return .failure(Refusal(.notFound, "no such path: \(path.prefix(200))"))
        }
    }

    /// Whether `request` names a local host (`isLocalHost`) in exactly one Host field. One
    /// with two (RFC 9112 3.2: a server must refuse it) would pass on its first while a proxy
    /// in front, or the page that sent it, goes by another.
    public static func isLocalRequest(_ request: HTTPRequest) -> Bool {
        var host: String?, count = 0
        for header in request.headers where HTTPRequest.sameName(header.name, "host") {
            host = header.value
            count += 1
        }
        return count == 1 && isLocalHost(host)
    }

    /// Whether `host` (a request's `Host` header) names the listener by a numeric address or
    /// as `localhost`. A listener without a token answers `/api/` only to such requests: a web
    /// page whose own DNS name was rebound to 127.0.0.1 sends that name, and gets 403, so it
    /// cannot read the cluster through the visitor's browser.
    public static func isLocalHost(_ host: String?) -> Bool {
        // On bytes: this runs for every `/api/` request (each log stream) of a tokenless listener.
        guard let host, !host.isEmpty, host.utf8.count <= 300 else { return false }
        var name = host.utf8[...]
        if name.first == UInt8(ascii: "[") {
            guard let close = name.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let inside = name[name.index(after: name.startIndex)..<close]
            return !inside.isEmpty && inside.allSatisfy { isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
        }
        if let colon = name.lastIndex(of: UInt8(ascii: ":")) {
            guard name[name.index(after: colon)...].allSatisfy(isDigit) else { return false }
            name = name[..<colon]
        }
        if name.elementsEqual("localhost".utf8, by: { $0 | 0x20 == $1 }) { return true }
        // A dotted quad: four parts of one to three digits, each at most 255.
        var dots = 0, digits = 0, value = 0
        for byte in name {
            if byte == UInt8(ascii: ".") {
                guard digits > 0 else { return false }
                dots += 1
                digits = 0
                value = 0
                continue
            }
            guard isDigit(byte), digits < 3 else { return false }
            digits += 1
            value = value * 10 + Int(byte - 0x30)
            guard value <= 255 else { return false }
        }
        return dots == 3 && digits > 0
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    private static func noQuery(_ route: DashboardRoute, _ parameters: [(String, String)]) -> Result<DashboardRoute, Refusal> {
        guard let (name, _) = parameters.first else { return .success(route) }
        return .failure(Refusal(.badRequest, "unknown query parameter '\(name.prefix(64))' (this path takes none)"))
    }

    private static func taskId(_ id: String) -> Result<String, Refusal> {
        if let problem = TaskID.problem(with: id) { return .failure(Refusal(.badRequest, problem)) }
        return .success(id)
    }

    /// `state` (repeatable or comma-separated), `node`, `model`, `limit`, `cursor`.
    private static func tasks(_ parameters: [(String, String)], limits: DashboardLimits) -> Result<DashboardRoute, Refusal> {
        var filter = TaskFilter()
        var limit = limits.defaultPageSize
        var cursor: String?
        for (name, value) in parameters {
            switch name {
            case "state":
                for word in value.split(separator: ",") where !word.isEmpty {
                    guard let state = TaskState(rawValue: String(word)) else {
                        return .failure(Refusal(.badRequest, "unknown state '\(word.prefix(64))' (known: \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")))"))
                    }
                    if filter.states?.contains(state) != true { filter.states = (filter.states ?? []) + [state] }
                }
            case "node": filter.node = value.isEmpty ? nil : value
            case "model": filter.model = value.isEmpty ? nil : value
            case "limit":
                guard let n = Int(value), n >= 1 else { return .failure(Refusal(.badRequest, "limit must be a whole number from 1, got '\(value.prefix(32))'")) }
                limit = min(n, limits.maxPageSize)
            case "cursor":
                guard !value.isEmpty else { continue }
                if let problem = TaskID.problem(with: value) { return .failure(Refusal(.badRequest, "cursor: \(problem)")) }
                cursor = value
            default:
                return .failure(Refusal(.badRequest, "unknown query parameter '\(name.prefix(64))' (known: state, node, model, limit, cursor)"))
            }
        }
        if let problem = filter.problem { return .failure(Refusal(.badRequest, problem)) }
        return .success(.tasks(filter: filter.isEmpty ? nil : filter, limit: limit, cursor: cursor))
    }
}

/// `application/x-www-form-urlencoded` query strings: `name=value` pairs joined by `&`,
/// `+` for a space and `%XX` escapes. Pure; a bad escape or text that is not UTF-8 is refused.
public enum DashboardQuery {
    public static func parse(_ query: Substring, maxParameters: Int) -> Result<[(String, String)], DashboardRoute.Refusal> {
        var out: [(String, String)] = []
        for pair in query.split(separator: "&") where !pair.isEmpty {
            guard out.count < maxParameters else {
                return .failure(.init(.badRequest, "more than \(maxParameters) query parameters"))
            }
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(halves[0]), let value = decode(halves.count > 1 ? halves[1] : "") else {
                return .failure(.init(.badRequest, "bad escape in query parameter '\(pair.prefix(64))'"))
            }
            out.append((name, value))
        }
        return .success(out)
    }

    /// `text` with `+` and `%XX` decoded; nil on a bad escape or bytes that are not UTF-8.
    public static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard iterator.count >= 2, let high = hex(iterator.popFirst()!), let low = hex(iterator.popFirst()!) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
