import Foundation
import SwarmProtocol

/// A task as a user describes it, to `swarm submit` (flags) or on a `--file` line (fields):
/// the spec's fields plus the files its prompt and context come from. `spec(...)` reads those
/// files and checks the result with `TaskSpec.problem()`, so both ways of submitting accept
/// and refuse exactly the same tasks.
@dynamicMemberLookup
public struct TaskOptions: Sendable, Equatable {
    /// Every field the spec has, as given (`options.timeout` reads and writes `task.timeout`).
    public var task = TaskSpec()
    /// Read as UTF-8 text into `prompt`; exclusive with `prompt`.
    public var promptFile: String?
    /// Read and parsed as JSON (any value) into `context`; exclusive with `context`.
    public var contextFile: String?
    /// Secret variables: name -> file holding the value (`--secret-env K=FILE`, a `--file`
    /// line's `secretEnv`). Each file is read here, less one trailing newline, into the
    /// spec's `secretEnv`.
    public var secretEnvFiles: [String: String]?

    public subscript<T>(dynamicMember field: WritableKeyPath<TaskSpec, T>) -> T {
        get { task[keyPath: field] }
        set { task[keyPath: field] = newValue }
    }

    public init() {}

    /// How errors name the options: as `swarm submit` flags (`--prompt-file`) or as task file
    /// fields (`promptFile`).
    public enum Naming: Sendable {
        case flags
        case fields

        func name(_ field: String) -> String {
            switch self {
            case .fields: return field
            case .flags:
                var flag = "--"
                for character in field {
                    if character.isUppercase { flag += "-" + character.lowercased() } else { flag.append(character) }
                }
                return flag
            }
        }
    }

    /// The spec these options describe. Relative `promptFile` and `contextFile` paths resolve
    /// against `baseDirectory` (nil: the current directory); `readFile` reads a file's text,
    /// refusing more than the bytes given (`maxPromptFileBytes`, ...).
    /// Throws one clear sentence when a file cannot be read, the context is not JSON, options
    /// exclude each other, or the spec is invalid (`TaskSpec.problem()`).
    public func spec(baseDirectory: String? = nil, naming: Naming = .flags,
                     readFile: (String, Int) throws -> String = TaskOptions.readTextFile) throws(TaskOptionsError) -> TaskSpec {
        if naming == .flags {
            // The flags' own words for the two ways a task's kind can be wrong.
            if task.runtime != nil && !task.command.isEmpty { throw TaskOptionsError("a --runtime task takes no command after --") }
            if task.runtime == nil && task.command.isEmpty {
                throw TaskOptionsError("missing command: swarm submit [options] -- COMMAND [ARGS...] (or --runtime NAME --prompt TEXT)")
            }
        }
        var spec = task
        if let promptFile {
            guard task.prompt == nil else {
                throw TaskOptionsError("\(naming.name("prompt")) and \(naming.name("promptFile")) are mutually exclusive")
            }
            spec.prompt = try read(promptFile, option: naming.name("promptFile"), limit: Self.maxPromptFileBytes,
                                   baseDirectory: baseDirectory, readFile: readFile)
        }
        if let contextFile {
            guard task.context == nil else {
                throw TaskOptionsError("\(naming.name("context")) and \(naming.name("contextFile")) are mutually exclusive")
            }
            let text = try read(contextFile, option: naming.name("contextFile"), limit: Self.maxContextFileBytes,
                                baseDirectory: baseDirectory, readFile: readFile)
            do { spec.context = try JSONValue.parse(text) } catch {
                throw TaskOptionsError("context file '\(contextFile)' is not JSON")
            }
        }
        if let secretEnvFiles, !secretEnvFiles.isEmpty {
            var secrets: [String: String] = [:]
            for (name, path) in secretEnvFiles.sorted(by: { $0.key < $1.key }) {
                var value = try read(path, option: naming.name("secretEnv") + " " + name, limit: Self.maxSecretFileBytes,
                                     baseDirectory: baseDirectory, readFile: readFile)
                if value.hasSuffix("\r\n") { value.removeLast(1) } else if value.hasSuffix("\n") { value.removeLast() }
                secrets[name] = value
            }
            spec.secretEnv = secrets
        }
        spec.requirements = spec.requirements.flatMap { $0.isEmpty ? nil : $0 }
        // Empty lists are no lists (an empty `inputs` uploads nothing, `artifacts` matches nothing).
        spec.inputs = spec.inputs.flatMap { $0.isEmpty ? nil : $0 }
        spec.artifacts = spec.artifacts.flatMap { $0.isEmpty ? nil : $0 }
        // Inputs are uploaded after this check (`InputUploads`), which then checks again.
        if let problem = spec.problem(inputsUploaded: false) { throw TaskOptionsError(problem) }
        return spec
    }

    private func read(_ path: String, option: String, limit: Int, baseDirectory: String?,
                      readFile: (String, Int) throws -> String) throws(TaskOptionsError) -> String {
        let resolved = path.hasPrefix("/") || baseDirectory == nil ? path : baseDirectory! + "/" + path
        do { return try readFile(resolved, limit) } catch {
            throw TaskOptionsError("cannot read \(option) '\(path)': \(error)")
        }
    }

    /// `--after a,b --after c` (or a `--file` line's `after`): the ids split at commas, blanks
    /// around them dropped, empty ones kept (so `a,,b` is refused as an empty id); nil when
    /// there are none at all.
    public static func dependencyList(_ values: [String]) -> [String]? {
        let ids = values.flatMap(RetryPolicy.parseList)
        return ids.isEmpty ? nil : ids
    }

    /// `K=V` strings (repeated options) as a dictionary; a later key wins. `option` names the
    /// flag in the error (`--env wants KEY=VALUE, got 'x'`).
    public static func pairs(_ list: [String], option: String) throws(TaskOptionsError) -> [String: String] {
        var result: [String: String] = [:]
        for pair in list {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw TaskOptionsError("\(option) wants KEY=VALUE, got '\(pair)'")
            }
            result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        return result
    }

    /// The most bytes read of each kind of file a task names (`BoundedFile`: a read stops one
    /// byte past it, so `/dev/zero` or a huge file is refused in a moment, not read until the
    /// client is killed). A prompt: the spec's own limit. A context: what one task's frame
    /// holds. A secret: its value's limit plus a trailing CR LF (dropped). A `--file`: four
    /// times the frame its batch travels in (room for blank space and escapes).
    public static let maxPromptFileBytes = TaskSpec.maxPromptBytes
    public static let maxContextFileBytes = FrameBudget.maxSpecBytes
    public static let maxSecretFileBytes = Bounds.secretValueBytes + 2
    public static let maxTaskFileBytes = 4 * Frame.defaultMaxPayload

    /// Reads a file as UTF-8 text, at most `limit` bytes (a pipe or FIFO too: `<(cmd)`); the
    /// error says why not in a few words. A named FIFO nothing writes to yet is waited for,
    /// saying so on stderr in one line.
    public static func readTextFile(_ path: String, limit: Int) throws -> String {
        let bytes: [UInt8]
        do {
            bytes = try BoundedFile.read(path, limit: limit) {
                var line = "swarm: waiting for a writer on FIFO \(path) (Ctrl-C to stop)\n"
                _ = line.withUTF8 { write(2, $0.baseAddress, $0.count) }
            }
        } catch { throw FileReadError(error.description) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FileReadError("not UTF-8 text") }
        return text
    }
}

/// Why options do not make a task: one sentence for the user.
public struct TaskOptionsError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Why a file could not be read, in a few words (`no such file`).
public struct FileReadError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
