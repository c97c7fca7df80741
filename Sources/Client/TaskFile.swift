import Foundation
import SwarmProtocol

/// `swarm submit --file tasks.jsonl`: one task per line, a JSON object whose fields are the
/// submit options in camelCase plus `command` (an array), e.g. `{"id": "a1", "command": ["true"]}`
/// or `{"runtime": "claude", "model": "sonnet", "prompt": "..."}`; `inputs` and `artifacts` are
/// arrays of strings (the repeated `--input` and `--artifact`). Relative `promptFile` and
/// `contextFile` paths are relative to the file's directory, relative input SRCs to the current
/// directory (they are resolved at upload, `InputUploads`). Blank lines and lines
/// starting with `#` are skipped. The whole file is accepted or refused: the first problem
/// (bad JSON, unknown key, wrong type, invalid spec, duplicate id, unreadable prompt or context
/// file) comes back with its line number.
public enum TaskFile {
    /// Every key a line may have. `requirement`/`requirements`, `label`/`labels` and
    /// `constraint`/`constraints` are synonyms (one of each pair per line).
    public static let keys: Set<String> = [
        "id", "command", "env", "secretEnv", "runtime", "model", "prompt", "promptFile", "objective", "context", "contextFile",
        "requirement", "requirements", "complexity", "timeout", "maxTimeout", "extendBy", "extendWithin",
        "activityWindow", "minBursts", "burstGap", "silenceWarn", "silenceKill", "killGrace", "label", "labels", "parent",
        "constraint", "constraints", "priority", "workdir", "inputs", "artifacts", "repo", "ref",
        "retries", "retryOn", "retryBackoff", "after", "afterAny",
    ]

    /// The specs of `text`, in file order. `fileName` only names the file in errors; relative
    /// `promptFile`/`contextFile` paths resolve against `baseDirectory` (the file's directory)
    /// and are read with `readFile`. A pure function of its arguments.
    public static func parse(_ text: String, fileName: String, baseDirectory: String,
                             readFile: (String, Int) throws -> String = TaskOptions.readTextFile) throws(TaskFileError) -> [TaskSpec] {
        try parseNumbered(text, fileName: fileName, baseDirectory: baseDirectory, readFile: readFile).map(\.spec)
    }

    /// `parse`, each spec with its line number (for errors found later, such as an input that
    /// cannot be packed: `tasks.jsonl:LINE: ...`).
    public static func parseNumbered(_ text: String, fileName: String, baseDirectory: String,
                                     readFile: (String, Int) throws -> String = TaskOptions.readTextFile) throws(TaskFileError) -> [(line: Int, spec: TaskSpec)] {
        var specs: [(line: Int, spec: TaskSpec)] = []
        var idLines: [String: Int] = [:]
        // Split on LF bytes: "\r\n" is one Character, so a Character split would miss it.
        for (index, rawLine) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = String(decoding: rawLine, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let spec: TaskSpec
            do {
                let options = try options(fromLine: line)
                spec = try options.spec(baseDirectory: baseDirectory, naming: .fields, readFile: readFile)
            } catch {
                throw TaskFileError(file: fileName, line: lineNumber, reason: error.description)
            }
            if let id = spec.id {
                if let first = idLines[id] {
                    throw TaskFileError(file: fileName, line: lineNumber, reason: "duplicate id '\(id)' (first on line \(first))")
                }
                idLines[id] = lineNumber
            }
            specs.append((lineNumber, spec))
        }
        if specs.isEmpty { throw TaskFileError(file: fileName, line: nil, reason: "no tasks in the file") }
        return specs
    }

    /// Reads and parses the file at `path` (relative files resolve against its directory);
    /// errors name the file as given.
    public static func load(path: String) throws(TaskFileError) -> [TaskSpec] {
        try loadNumbered(path: path).map(\.spec)
    }

    /// `load`, each spec with its line number.
    public static func loadNumbered(path: String) throws(TaskFileError) -> [(line: Int, spec: TaskSpec)] {
        let text: String
        do { text = try TaskOptions.readTextFile(path, limit: TaskOptions.maxTaskFileBytes) } catch {
            throw TaskFileError(file: path, line: nil, reason: "cannot read it: \(error)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parseNumbered(text, fileName: path, baseDirectory: directory.isEmpty ? "." : directory)
    }

    /// One line's fields as options (no files read yet).
    static func options(fromLine line: String) throws(TaskOptionsError) -> TaskOptions {
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch { throw TaskOptionsError("not valid JSON") }
        guard case .object(let fields) = value else { throw TaskOptionsError("a task is a JSON object, got \(kind(of: value))") }
        for key in fields.keys.sorted() where !keys.contains(key) {
            throw TaskOptionsError("unknown field '\(key)'")
        }
        for (a, b) in [("requirement", "requirements"), ("label", "labels"), ("constraint", "constraints")]
        where fields[a] != nil && fields[b] != nil {
            throw TaskOptionsError("give '\(a)' or '\(b)', not both")
        }
        let f = Fields(fields: fields)
        var o = TaskOptions()
        o.id = try f.string("id")
        o.command = try f.strings("command") ?? []
        o.env = try f.map("env")
        o.secretEnvFiles = try f.map("secretEnv")
        o.runtime = try f.string("runtime")
        o.model = try f.string("model")
        o.prompt = try f.string("prompt")
        o.promptFile = try f.string("promptFile")
        o.objective = try f.string("objective")
        o.context = f.value("context")
        o.contextFile = try f.string("contextFile")
        o.requirements = try f.stringOrStrings(fields["requirement"] != nil ? "requirement" : "requirements")
        o.complexity = try f.complexity("complexity")
        o.timeout = try f.number("timeout")
        o.maxTimeout = try f.number("maxTimeout")
        o.extendBy = try f.number("extendBy")
        o.extendWithin = try f.number("extendWithin")
        o.activityWindow = try f.number("activityWindow")
        o.minBursts = try f.integer("minBursts")
        o.burstGap = try f.number("burstGap")
        o.silenceWarn = try f.number("silenceWarn")
        o.silenceKill = try f.number("silenceKill")
        o.killGrace = try f.number("killGrace")
        o.labels = try f.map(fields["label"] != nil ? "label" : "labels")
        o.parent = try f.string("parent")
        o.constraints = try f.constraints(fields["constraint"] != nil ? "constraint" : "constraints")
        o.priority = try f.integer("priority")
        o.workdir = try f.string("workdir")
        o.inputs = try f.strings("inputs")
        o.artifacts = try f.strings("artifacts")
        o.repo = try f.string("repo")
        o.ref = try f.string("ref")
        o.retries = try f.integer("retries")
        // `"failed,timed_out"` as on the command line, or `["failed", "timed_out"]`.
        if case .string(let list)? = f.value("retryOn") { o.retryOn = RetryPolicy.parseList(list) } else {
            o.retryOn = try f.strings("retryOn")
        }
        o.retryBackoff = try f.number("retryBackoff")
        // `"a,b"` as on the command line, or `["a", "b"]`; ids may name tasks anywhere in the file.
        for (key, path) in [("after", \TaskOptions.task.after), ("afterAny", \TaskOptions.task.afterAny)] {
            o[keyPath: path] = try f.stringOrStrings(key).flatMap(TaskOptions.dependencyList)
        }
        return o
    }

    /// A number's value when it is a whole number in Int's range: exact for integer literals
    /// (`9007199254740993`), and `2.0` or `1e3` read through their double (within 2^53).
    static func whole(_ n: JSONNumber) -> Int? {
        if let exact = n.int64 { return Int(exactly: exact) }
        let d = n.double
        guard d.rounded() == d, d.magnitude <= 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }

    static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Typed access to a line's fields; a `null` value counts as absent.
    private struct Fields {
        let fields: [String: JSONValue]

        func value(_ key: String) -> JSONValue? {
            if case .null? = fields[key] { return nil }
            return fields[key]
        }

        func wrongType(_ key: String, _ wanted: String, _ got: JSONValue) -> TaskOptionsError {
            TaskOptionsError("'\(key)' must be \(wanted), got \(TaskFile.kind(of: got))")
        }

        func string(_ key: String) throws(TaskOptionsError) -> String? {
            guard let v = value(key) else { return nil }
            guard case .string(let s) = v else { throw wrongType(key, "a string", v) }
            return s
        }

        func strings(_ key: String) throws(TaskOptionsError) -> [String]? {
            guard let v = value(key) else { return nil }
            guard case .array(let items) = v else { throw wrongType(key, "an array of strings", v) }
            var result: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw wrongType(key, "an array of strings", item) }
                result.append(s)
            }
            return result
        }

        func stringOrStrings(_ key: String) throws(TaskOptionsError) -> [String]? {
            if case .string(let s)? = value(key) { return [s] }
            guard let v = value(key) else { return nil }
            guard case .array = v else { throw wrongType(key, "a string or an array of strings", v) }
            return try strings(key)
        }

        func map(_ key: String) throws(TaskOptionsError) -> [String: String]? {
            guard let v = value(key) else { return nil }
            guard case .object(let object) = v else { throw wrongType(key, "an object of strings", v) }
            var result: [String: String] = [:]
            for (k, item) in object {
                guard case .string(let s) = item else {
                    throw TaskOptionsError("'\(key).\(k)' must be a string, got \(TaskFile.kind(of: item))")
                }
                result[k] = s
            }
            return result
        }

        func constraints(_ key: String) throws(TaskOptionsError) -> [String: String]? {
            guard let v = value(key) else { return nil }
            switch v {
            case .object: return try map(key)
            case .array: return try TaskOptions.pairs(strings(key) ?? [], option: "'\(key)'")
            default: throw wrongType(key, "an object or an array of \"K=V\" strings", v)
            }
        }

        func number(_ key: String) throws(TaskOptionsError) -> Double? {
            guard let v = value(key) else { return nil }
            guard case .number(let n) = v else { throw wrongType(key, "a number of seconds", v) }
            // Past Double's range (1e400) reads as infinite, which the spec's check refuses.
            return n.double
        }

        func integer(_ key: String) throws(TaskOptionsError) -> Int? {
            guard let v = value(key) else { return nil }
            guard case .number(let n) = v else { throw wrongType(key, "a whole number", v) }
            guard let whole = TaskFile.whole(n) else { throw TaskOptionsError("'\(key)' must be a whole number, got \(n)") }
            return whole
        }

        func complexity(_ key: String) throws(TaskOptionsError) -> String? {
            guard let v = value(key) else { return nil }
            switch v {
            case .string(let s): return s
            case .number(let n) where TaskFile.whole(n) != nil: return String(TaskFile.whole(n)!)
            default: throw wrongType(key, "simple, moderate, complex or a whole number", v)
            }
        }
    }
}

/// A task file's first problem: `tasks.jsonl:LINE: reason` (no line for the file as a whole).
public struct TaskFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int?
    public var reason: String

    public init(file: String, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }
}
