import SwarmProtocol

/// One request of the original file-based coordinator (`shared/reference/original-
/// coordinator.md`), read from its JSON and mapped onto a `TaskSpec`. Pure: bytes in, a request
/// or the reason it is refused out.
///
/// Mapping (README, "Coming from the file-based coordinator"):
/// - `requestId` -> the task id (checked like every task id; when absent:
///   `req-{ms}-{6 chars}`, derived from the file so that a restarted spool derives it again);
/// - `agentRole` -> the label `agentRole`; `parentRequestId` -> `parent`;
/// - `task.objective`, `task.context`, `task.requirements` -> the task's own fields, which the
///   worker composes into the agent's prompt;
/// - optional `model`, `runtime` (else the spool's defaults) and `timeout` (seconds, as in
///   `swarm submit --file`). Other keys are ignored: the original took any.
public struct SpoolRequest: Equatable, Sendable {
    public var id: String
    /// Whether `id` was generated (the file had no `requestId`).
    public var generatedId: Bool
    public var spec: TaskSpec
    /// Characters of the context's JSON text (`stats.contextSizeChars`), 0 without context.
    public var contextChars: Int

    /// The largest request file read (bigger ones are rejected, never read).
    public static let maxBytes = 1024 * 1024

    /// The spool's own settings a request falls back to.
    public struct Defaults: Equatable, Sendable {
        public var runtime: String
        public var model: String?
        public init(runtime: String = "claude", model: String? = nil) {
            self.runtime = runtime
            self.model = model
        }
    }

    /// Parses `bytes` (the content of request file `fileName`, modified at `mtimeMs` unix
    /// milliseconds). Throws `SpoolRejection` with the reason written beside a rejected file.
    public static func parse(_ bytes: [UInt8], fileName: String, mtimeMs: Int64,
                             defaults: Defaults) throws(SpoolRejection) -> SpoolRequest {
        if bytes.count > maxBytes { throw .init("the request is \(bytes.count) bytes; the most a request may have is \(maxBytes)") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .init("invalid JSON: the file is not UTF-8 text") }
        let value: JSONValue
        do { value = try JSONValue.parse(text) } catch { throw .init("invalid JSON: \(error)") }
        guard case .object(let root) = value else { throw .init("invalid request: the JSON is not an object") }
        let task = try field(root, "task", object: ())
        var spec = TaskSpec(runtime: try string(root, "runtime") ?? defaults.runtime,
                            model: try string(root, "model") ?? defaults.model)
        spec.objective = try string(task ?? [:], "objective", path: "task.")
        spec.requirements = try strings(task ?? [:], "requirements")
        if let context = task?["context"], context != .null { spec.context = context }
        if let role = try string(root, "agentRole") { spec.labels = ["agentRole": role] }
        if let parent = try string(root, "parentRequestId") {
            if let problem = TaskID.problem(with: parent) { throw .init("invalid parentRequestId: \(problem)") }
            spec.parent = parent
        }
        spec.timeout = try number(root, "timeout")
        if spec.objective == nil { throw .init("invalid request: task.objective is missing (the agent would get no prompt)") }
        var generated = false
        let id: String
        if let given = try string(root, "requestId") {
            if let problem = TaskID.problem(with: given) { throw .init("invalid requestId: \(problem)") }
            id = given
        } else {
            id = generatedId(fileName: fileName, mtimeMs: mtimeMs, bytes: bytes)
            generated = true
        }
        spec.id = id
        if let problem = spec.problem() { throw .init("invalid request: \(problem)") }
        return SpoolRequest(id: id, generatedId: generated, spec: spec,
                            contextChars: spec.context.map { $0.serialized.count } ?? 0)
    }

    /// `req-{ms}-{6 [a-z0-9]}` like the original's, but the same for the same file: `ms` is
    /// the file's modification time and the 6 characters come from a hash (FNV-1a) of its name
    /// and content, so a spool restarted with the file in `processing/` submits the same id.
    public static func generatedId(fileName: String, mtimeMs: Int64, bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array(fileName.utf8) + [0] + bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var suffix = ""
        for _ in 0..<6 {
            suffix.append(alphabet[Int(hash % 36)])
            hash /= 36
        }
        return "req-\(max(0, mtimeMs))-\(suffix)"
    }

    // MARK: Fields

    private static func field(_ object: [String: JSONValue], _ key: String, object _: Void) throws(SpoolRejection) -> [String: JSONValue]? {
        switch object[key] {
        case nil, .null?: return nil
        case .object(let inner)?: return inner
        default: throw .init("invalid request: \(key) must be an object")
        }
    }

    private static func string(_ object: [String: JSONValue], _ key: String, path: String = "") throws(SpoolRejection) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw .init("invalid request: \(path)\(key) must be a string")
        }
    }

    private static func strings(_ object: [String: JSONValue], _ key: String) throws(SpoolRejection) -> [String]? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return [s]
        case .array(let values)?:
            var result: [String] = []
            for value in values {
                guard case .string(let s) = value else { throw .init("invalid request: task.\(key) must be an array of strings") }
                result.append(s)
            }
            return result
        default: throw .init("invalid request: task.\(key) must be an array of strings")
        }
    }

    private static func number(_ object: [String: JSONValue], _ key: String) throws(SpoolRejection) -> Double? {
        switch object[key] {
        case nil, .null?: return nil
        case .number(let n)?: return n.double
        default: throw .init("invalid request: \(key) must be a number of seconds")
        }
    }
}

/// Why a request file goes to `rejected/` (the text of its `.error` file).
public struct SpoolRejection: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
