import Foundation
import SwarmProtocol

/// How a worker checks that a runtime works (e.g. `claude --version`).
public struct HealthCheckSpec: Sendable, Equatable {
    public var command: [String]
    /// Text the probe's output must contain; nil: exit 0 is enough.
    public var expect: String?
    public var timeoutMs: Int64 = 10_000
    /// Between passing probes, and after a failed one.
    public var intervalMs: Int64 = 300_000
    public var retryMs: Int64 = 10_000

    public init(command: [String], expect: String? = nil, timeoutMs: Int64 = 10_000,
                intervalMs: Int64 = 300_000, retryMs: Int64 = 10_000) {
        self.command = command
        self.expect = expect
        self.timeoutMs = timeoutMs
        self.intervalMs = intervalMs
        self.retryMs = retryMs
    }
}

/// A named way to run an agent: a command template such as
/// `claude -p --output-format stream-json --verbose --model {model}` with the prompt on stdin.
/// Placeholders: `{model}`, `{prompt}`, `{id}`, `{contextFile}`, `{workDir}`.
public struct RuntimeDefinition: Sendable, Equatable {
    public var name: String
    public var command: [String]
    public var promptOnStdin = true
    /// Used when a task names no model.
    public var defaultModel: String?
    public var env: [String: String] = [:]
    public var health: HealthCheckSpec?
    /// This runtime's layer of timeouts (over the cluster's, under the task's).
    public var timeouts = TimeoutPolicy.Overrides()
    /// Artifact patterns every task of this runtime gets besides its own (`artifacts`).
    public var artifacts: [String] = []

    public init(name: String, command: [String], promptOnStdin: Bool = true, defaultModel: String? = nil,
                env: [String: String] = [:], health: HealthCheckSpec? = nil) {
        self.name = name
        self.command = command
        self.promptOnStdin = promptOnStdin
        self.defaultModel = defaultModel
        self.env = env
        self.health = health
    }

    /// What the scheduler needs of this definition (sent with the runtime's health): its
    /// default model, and whether and how the prompt goes into argv (`ExecLimits`).
    public func reportedFacts(into status: inout RuntimeStatus) {
        status.defaultModel = defaultModel
        let promptParts = command.filter { $0.contains("{prompt}") }
        status.promptInArgv = !promptParts.isEmpty
        // Placeholders count as their own text: a little over what they become, never under
        // (but `{prompt}` itself, which the prompt replaces).
        status.argvTemplateBytes = command.reduce(0) { $0 + ExecLimits.cost($1) }
        // (A part naming `{prompt}` twice is judged on one copy here; the worker checks the real argv.)
        status.promptArgumentBytes = promptParts.map { $0.utf8.count - "{prompt}".utf8.count }.max()
    }

    /// The argv for one task, or why there is none.
    public func argv(model: String?, prompt: String, id: String, contextFile: String?, workDir: String) -> Result<[String], RuntimeError> {
        let chosen = model ?? defaultModel
        var argv: [String] = []
        for part in command {
            if part.contains("{model}") && chosen == nil {
                return .failure(.needsModel(name))
            }
            argv.append(part
                .replacingOccurrences(of: "{model}", with: chosen ?? "")
                .replacingOccurrences(of: "{prompt}", with: prompt)
                .replacingOccurrences(of: "{id}", with: id)
                .replacingOccurrences(of: "{contextFile}", with: contextFile ?? "")
                .replacingOccurrences(of: "{workDir}", with: workDir))
        }
        guard let first = argv.first, !first.isEmpty else { return .failure(.emptyCommand(name)) }
        return .success(argv)
    }

    /// The placeholders `argv` fills in.
    public static let placeholders: Set<String> = ["model", "prompt", "id", "contextFile", "workDir"]

    /// The first `{name}` in the command template that is not a placeholder (a typo such as
    /// `{modle}` would otherwise reach the agent verbatim), or nil.
    public var unknownPlaceholder: String? {
        command.lazy.flatMap { Self.placeholderNames(in: $0) }.first { !Self.placeholders.contains($0) }
    }

    /// The `{name}`s in `text`, in order. Braces around anything but a name (`{"a": 1}`, `{}`)
    /// are literal text, and so is the shell's `${name}`.
    public static func placeholderNames(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "}") else { break }
            let name = after[..<close]
            let shell = open > text.startIndex && text[text.index(before: open)] == "$"
            if !shell, let first = name.first, first.isLetter || first == "_",
               name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                names.append(String(name))
            }
            rest = after
        }
        return names
    }
}

public enum RuntimeError: Error, Equatable, CustomStringConvertible, Sendable {
    case needsModel(String)
    case emptyCommand(String)
    case unknown(String)

    public var description: String {
        switch self {
        case .needsModel(let r): "runtime \(r) needs a model (the task names none and the runtime has no defaultModel)"
        case .emptyCommand(let r): "runtime \(r) has an empty command"
        case .unknown(let r): "this worker has no runtime \(r)"
        }
    }
}

/// The text an agent gets: its prompt (or objective), requirements, and its context, inline
/// when small and otherwise as a pointer to the file it was written to.
public enum AgentPrompt {
    public enum ContextPlacement: Equatable, Sendable {
        case none
        case inline
        /// Write `json` to the task's context file; the prompt points there.
        case file(json: String)
    }

    /// Whether the context goes inline or to a file (over `inlineLimit` characters).
    public static func placement(of spec: TaskSpec, inlineLimit: Int) -> ContextPlacement {
        guard let context = spec.context else { return .none }
        let text = context.serialized
        return text.count > inlineLimit ? .file(json: context.pretty) : .inline
    }

    /// The prompt text; `contextFile` is the path the context was written to (file mode);
    /// `workDir`, the task's directory, is named in a last line so the agent knows where it works.
    public static func text(for spec: TaskSpec, contextFile: String?, workDir: String? = nil) -> String {
        var parts: [String] = []
        if let prompt = spec.prompt { parts.append(prompt) }
        if let objective = spec.objective, objective != spec.prompt {
            parts.append(spec.prompt == nil ? objective : "Objective: \(objective)")
        }
        if let requirements = spec.requirements, !requirements.isEmpty {
            parts.append("Requirements:\n" + requirements.map { "- \($0)" }.joined(separator: "\n"))
        }
        if let context = spec.context {
            if let contextFile {
                let size = context.serialized.count
                parts.append("""
                Context: \(size) characters of JSON are in the file \(contextFile) (also in $SWARM_CONTEXT_FILE). \
                Load it when you need it, e.g. `cat \(contextFile)`.
                """)
            } else {
                parts.append("Context (JSON):\n" + context.serialized)
            }
        }
        if let workDir { parts.append("You are working in the directory \(workDir).") }
        return parts.joined(separator: "\n\n") + "\n"
    }
}
