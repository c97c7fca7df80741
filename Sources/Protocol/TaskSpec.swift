import Foundation

/// What a client submits: a plain command (`command`), or an agent run through a named
/// `runtime` (with `prompt` and `model`). Every field but the one choosing the kind is
/// optional; field names are a contract (`swarm submit --file` lines use them too).
/// Durations are seconds and take decimals.
public struct TaskSpec: Codable, Sendable, Equatable {
    /// Client-chosen id, or nil for a generated one.
    public var id: String?
    /// argv of a plain command; the first element is looked up in PATH. Empty for runtime tasks.
    public var command: [String]
    /// Extra environment for the task.
    public var env: [String: String]?
    /// Environment whose values are secret (`--secret-env K=FILE`): plain in a `submit` and in
    /// an `assign`, sealed (`SecretSealer`) everywhere in between (the scheduler's memory,
    /// `swarm.db`), never shown. Names may not repeat `env`'s. At most `Bounds.secretsPerTask`,
    /// each value at most `Bounds.secretValueBytes`.
    public var secretEnv: [String: String]?
    /// A runtime named in the workers' config (e.g. `claude`); nil for a plain command.
    public var runtime: String?
    public var model: String?
    /// The agent's prompt (on its stdin for runtimes that take it there).
    public var prompt: String?
    public var objective: String?
    /// Any JSON; large context goes to a file the prompt points at.
    public var context: JSONValue?
    public var requirements: [String]?
    /// `simple`, `moderate`, `complex` or a score (a whole number >= 0); nil: computed.
    public var complexity: String?
    /// Initial timeout (overrides the complexity's), maximum with extensions.
    public var timeout: Double?
    public var maxTimeout: Double?
    /// Extension step, how close to the deadline it applies, the activity window it looks
    /// at and the bursts it needs there; the quiet that separates two bursts.
    public var extendBy: Double?
    public var extendWithin: Double?
    public var activityWindow: Double?
    public var minBursts: Int?
    public var burstGap: Double?
    public var silenceWarn: Double?
    public var silenceKill: Double?
    public var killGrace: Double?
    /// Free-form labels of the task (shown, not interpreted).
    public var labels: [String: String]?
    /// The task that submitted this one.
    public var parent: String?
    /// Node labels a worker must have (`K=V`).
    public var constraints: [String: String]?
    /// Higher runs first; FIFO within a priority. Default 0.
    public var priority: Int?
    /// Work in and out (issue 11). `workdir`: an existing directory on the worker to run in,
    /// instead of the task's own `WORKROOT/ID`.
    public var workdir: String?
    /// `SRC[:DEST]` as the user gave them (shown back; the submitting client resolves them).
    public var inputs: [String]?
    /// The uploaded inputs: what workers unpack into the task's directory before it starts.
    public var inputBlobs: [InputRef]?
    /// Glob patterns, relative to the task's directory, of files uploaded after the run.
    public var artifacts: [String]?
    /// A git repository (URL or path readable on the workers) to run in a worktree of, at
    /// `ref` (nil: `HEAD`), on a new branch `swarm/ID`.
    public var repo: String?
    public var ref: String?
    /// Retries (issue 13): how many more runs a run ending in one of `retryOn` may get (nil:
    /// 0), the states that count (nil: `RetryPolicy.defaultRetryOn`), and the first backoff
    /// in seconds (nil: 10; doubled per retry, jittered, capped: `RetryPolicy`).
    public var retries: Int?
    public var retryOn: [String]?
    public var retryBackoff: Double?
    /// Dependencies (issue 13): ids of tasks that must have `succeeded` before this one may
    /// run (`after`; one ending otherwise ends this one `dependency_failed`), and of tasks
    /// that must have ended in any state (`afterAny`). Each names a task that exists or is in
    /// the same batch; together at most `Bounds.dependencies`.
    public var after: [String]?
    public var afterAny: [String]?

    public init(id: String? = nil, command: [String] = [], env: [String: String]? = nil,
                runtime: String? = nil, model: String? = nil, prompt: String? = nil) {
        self.id = id
        self.command = command
        self.env = env
        self.runtime = runtime
        self.model = model
        self.prompt = prompt
    }

    enum CodingKeys: String, CodingKey {
        case id, command, env, secretEnv, runtime, model, prompt, objective, context, requirements, complexity
        case timeout, maxTimeout, extendBy, extendWithin, activityWindow, minBursts, burstGap
        case silenceWarn, silenceKill, killGrace, labels, parent, constraints, priority
        case workdir, inputs, inputBlobs, artifacts, repo, ref
        case retries, retryOn, retryBackoff
        case after, afterAny
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        command = try c.decodeIfPresent([String].self, forKey: .command) ?? []
        env = try c.decodeIfPresent([String: String].self, forKey: .env)
        secretEnv = try c.decodeIfPresent([String: String].self, forKey: .secretEnv)
        runtime = try c.decodeIfPresent(String.self, forKey: .runtime)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt)
        objective = try c.decodeIfPresent(String.self, forKey: .objective)
        context = try c.decodeIfPresent(JSONValue.self, forKey: .context)
        requirements = try c.decodeIfPresent([String].self, forKey: .requirements)
        complexity = try c.decodeIfPresent(String.self, forKey: .complexity)
        timeout = try c.decodeIfPresent(Double.self, forKey: .timeout)
        maxTimeout = try c.decodeIfPresent(Double.self, forKey: .maxTimeout)
        extendBy = try c.decodeIfPresent(Double.self, forKey: .extendBy)
        extendWithin = try c.decodeIfPresent(Double.self, forKey: .extendWithin)
        activityWindow = try c.decodeIfPresent(Double.self, forKey: .activityWindow)
        minBursts = try c.decodeIfPresent(Int.self, forKey: .minBursts)
        burstGap = try c.decodeIfPresent(Double.self, forKey: .burstGap)
        silenceWarn = try c.decodeIfPresent(Double.self, forKey: .silenceWarn)
        silenceKill = try c.decodeIfPresent(Double.self, forKey: .silenceKill)
        killGrace = try c.decodeIfPresent(Double.self, forKey: .killGrace)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels)
        parent = try c.decodeIfPresent(String.self, forKey: .parent)
        constraints = try c.decodeIfPresent([String: String].self, forKey: .constraints)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority)
        workdir = try c.decodeIfPresent(String.self, forKey: .workdir)
        inputs = try c.decodeIfPresent([String].self, forKey: .inputs)
        inputBlobs = try c.decodeIfPresent([InputRef].self, forKey: .inputBlobs)
        artifacts = try c.decodeIfPresent([String].self, forKey: .artifacts)
        repo = try c.decodeIfPresent(String.self, forKey: .repo)
        ref = try c.decodeIfPresent(String.self, forKey: .ref)
        retries = try c.decodeIfPresent(Int.self, forKey: .retries)
        retryOn = try c.decodeIfPresent([String].self, forKey: .retryOn)
        retryBackoff = try c.decodeIfPresent(Double.self, forKey: .retryBackoff)
        after = try c.decodeIfPresent([String].self, forKey: .after)
        afterAny = try c.decodeIfPresent([String].self, forKey: .afterAny)
    }

    /// Linux refuses to exec a single argument or variable over 128 KiB (MAX_ARG_STRLEN),
    /// and the whole set is bounded too: refuse such a task at submit, not at spawn.
    public static let maxArgumentBytes = ExecLimits.maxStringBytes
    /// The task's command and environment, counted as exec counts them (each string's bytes,
    /// its NUL and an 8-byte pointer): `ExecLimits.taskBudget`, half of the usual limit.
    public static let maxCommandAndEnvBytes = ExecLimits.taskBudget
    /// Prompts and context go through stdin and files, not exec: bounded only by the frame.
    public static let maxPromptBytes = 4 * 1024 * 1024
    /// A duration above this is a typo, not a plan (30 days).
    public static let maxDurationSeconds = 30.0 * 86_400

    /// Nil when the spec can be accepted, else the reason. `inputsUploaded: false`: the
    /// submitting client's check before it uploads the `inputs` (`workProblem`).
    public func problem(inputsUploaded: Bool = true) -> String? {
        if let id, let p = TaskID.problem(with: id) { return p }
        if let parent, let p = TaskID.problem(with: parent) { return "parent: \(p)" }
        if let runtime {
            if runtime.isEmpty || runtime.utf8.count > 64 || runtime.contains(where: { $0.isWhitespace || $0 == "/" }) {
                return "invalid runtime name \(TaskID.quoted(runtime))"
            }
            if !command.isEmpty { return "a task names either a runtime or a command, not both" }
            if prompt == nil && objective == nil { return "a runtime task needs a prompt or an objective" }
        } else {
            if command.isEmpty { return "a task needs a command, or a runtime with a prompt" }
            if command[0].isEmpty { return "the command's program name is empty" }
        }
        if let model, model.isEmpty || model.utf8.count > 128 || model.utf8.contains(0) || model.contains(where: \.isWhitespace) {
            return "invalid model name \(TaskID.quoted(model ?? ""))"
        }
        if (prompt?.utf8.count ?? 0) > Self.maxPromptBytes { return "prompt is over \(Self.maxPromptBytes) bytes" }
        if let problem = promptTextProblem() { return problem }
        if let complexity, ComplexityInput(complexity) == nil {
            return "complexity must be simple, moderate, complex or a whole number >= 0, got \(TaskID.quoted(complexity))"
        }
        let durations: [(String, Double?)] = [("timeout", timeout), ("maxTimeout", maxTimeout), ("extendBy", extendBy),
                                              ("extendWithin", extendWithin), ("activityWindow", activityWindow),
                                              ("burstGap", burstGap), ("silenceWarn", silenceWarn),
                                              ("silenceKill", silenceKill), ("killGrace", killGrace)]
        for case let (name, value?) in durations where !(value.isFinite && value >= 0 && value <= Self.maxDurationSeconds) {
            return "\(name) must be a number of seconds from 0 to \(Int(Self.maxDurationSeconds)), got \(value)"
        }
        for case let (name, value?) in [("timeout", timeout), ("silenceKill", silenceKill)] where value == 0 {
            return "\(name) must be more than 0 seconds"
        }
        if let timeout, let maxTimeout, timeout > maxTimeout { return "timeout (\(timeout) s) is over maxTimeout (\(maxTimeout) s)" }
        if let minBursts, minBursts < 0 || minBursts > 1_000_000 { return "minBursts must be 0 to 1000000, got \(minBursts)" }
        // A range check, not abs(): abs(Int.min) overflows.
        if let priority, !Bounds.priority.contains(priority) { return "priority must be within +-1000000000, got \(priority)" }
        for (key, value) in (constraints ?? [:]).sorted(by: { $0.key < $1.key }) where key.isEmpty || key.contains("=") {
            return "invalid constraint \(TaskID.quoted(key + "=" + value))"
        }
        if let problem = RetryPolicy.problem(retries: retries, retryOn: retryOn, retryBackoff: retryBackoff) { return problem }
        if let problem = dependencyProblem() { return problem }
        if let problem = workProblem(inputsUploaded: inputsUploaded) { return problem }
        if let problem = secretProblem() { return problem }
        return execProblem()
    }

    /// Why exec would refuse this task's command or environment (`ExecLimits`), or nil.
    func execProblem() -> String? {
        var total = 0
        for (index, argument) in command.enumerated() {
            if argument.utf8.contains(0) { return "argument \(index) contains a NUL byte" }
            // The kernel's per-string limit counts the terminating NUL.
            if argument.utf8.count + 1 > Self.maxArgumentBytes {
                return "argument \(index) is \(argument.utf8.count) bytes; the limit is \(Self.maxArgumentBytes - 1)"
            }
            total += ExecLimits.cost(argument)
        }
        for (key, value) in env ?? [:] {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) {
                return "invalid environment variable name \(TaskID.quoted(key))"
            }
            if value.utf8.contains(0) { return "environment variable \(key) contains a NUL byte" }
            if key.utf8.count + value.utf8.count + 2 > Self.maxArgumentBytes {
                return "environment variable \(key) is over \(Self.maxArgumentBytes) bytes"
            }
            total += ExecLimits.cost(key: key, value: value)
        }
        // Sealed at the scheduler: counted as the value the worker will put in the environment.
        for (key, value) in secretEnv ?? [:] { total += key.utf8.count + SecretSealer.plainBytes(value) + 2 + ExecLimits.pointerBytes }
        if total > Self.maxCommandAndEnvBytes {
            return "command and environment take \(total) bytes in exec (\(command.count) arguments, \(env?.count ?? 0) variables, each with its NUL and an 8-byte pointer); the limit at submit is \(Self.maxCommandAndEnvBytes) (half of the usual 2 MiB, the rest is kept for the worker's own environment)"
        }
        return nil
    }

    /// Why `secretEnv` cannot be accepted, or nil. Messages name variables, never values. A
    /// value may be plain (a client's) or sealed (the scheduler's copy); `plain`: every value
    /// is taken as plain (the scheduler's check before it seals what a client sent).
    public func secretProblem(plain: Bool = false) -> String? {
        guard let secretEnv else { return nil }
        if secretEnv.count > Bounds.secretsPerTask {
            return "a task may carry at most \(Bounds.secretsPerTask) secret variables (secretEnv), got \(secretEnv.count)"
        }
        for (key, value) in secretEnv.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) || key.utf8.count > 256 {
                return "invalid secret variable name \(TaskID.quoted(key))"
            }
            if env?[key] != nil { return "\(key) is both in env and in secretEnv" }
            let sealed = !plain && value.hasPrefix(SecretSealer.prefix)
            if sealed ? value.utf8.count > SecretSealer.sealedBytes(Bounds.secretValueBytes) : value.utf8.count > Bounds.secretValueBytes {
                return "secret \(key) is over \(Bounds.secretValueBytes) bytes"
            }
            if !sealed && value.utf8.contains(0) { return "secret \(key) contains a NUL byte" }
        }
        return nil
    }

    /// Why `after` / `afterAny` cannot be accepted (a bad id, too many, the task itself), or
    /// nil. Whether the ids exist is the scheduler's check.
    func dependencyProblem() -> String? {
        let count = (after?.count ?? 0) + (afterAny?.count ?? 0)
        if count > Bounds.dependencies {
            return "a task may name at most \(Bounds.dependencies) dependencies (after and afterAny together), got \(count)"
        }
        for (field, list) in [("after", after ?? []), ("afterAny", afterAny ?? [])] {
            for dependency in list {
                if let p = TaskID.problem(with: dependency) { return "\(field): \(p)" }
                if dependency == id { return "\(field): a task cannot depend on itself ('\(dependency)')" }
            }
        }
        return nil
    }

    /// Whether it names any dependency (cheap: nothing is hashed).
    public var hasDependencies: Bool {
        !(after?.isEmpty ?? true) || !(afterAny?.isEmpty ?? true)
    }

    /// Every task this one waits for, each once, first as named (`after` first): an id in
    /// both lists counts as `after` (the stricter).
    public var dependencies: [(id: String, anyEnd: Bool)] {
        guard after != nil || afterAny != nil else { return [] }
        var seen = Set<String>()
        var result: [(id: String, anyEnd: Bool)] = []
        for id in after ?? [] where seen.insert(id).inserted { result.append((id, false)) }
        for id in afterAny ?? [] where seen.insert(id).inserted { result.append((id, true)) }
        return result
    }

    /// A NUL in the prompt's parts would cut the prompt there (in argv, or for the agent).
    func promptTextProblem() -> String? {
        if prompt?.utf8.contains(0) == true { return "prompt contains a NUL byte" }
        if objective?.utf8.contains(0) == true { return "objective contains a NUL byte" }
        for (index, requirement) in (requirements ?? []).enumerated() where requirement.utf8.contains(0) {
            return "requirement \(index + 1) contains a NUL byte"
        }
        return nil
    }

    /// An upper bound on the bytes of the text an agent gets (`AgentPrompt.text`): prompt,
    /// objective, requirements, and `promptExtraBytes` for the headings and the context's
    /// pointer or a small inline context.
    public var promptTextBytes: Int {
        var bytes = (prompt?.utf8.count ?? 0) + (objective?.utf8.count ?? 0) + Self.promptExtraBytes
        for requirement in requirements ?? [] { bytes += requirement.utf8.count + 3 }
        return bytes
    }

    /// Room in `promptTextBytes` for what the worker adds to the prompt's parts.
    public static let promptExtraBytes = 4096
}

/// A task's `complexity` field, parsed: a named level or a score.
public enum ComplexityInput: Equatable, Sendable {
    case level(ComplexityLevel)
    case score(Int)

    public init?(_ text: String) {
        if let level = ComplexityLevel(rawValue: text) { self = .level(level); return }
        guard let n = Int(text), n >= 0, n <= 1_000 else { return nil }
        self = .score(n)
    }
}

/// Complexity levels and the score ranges that map to them. Raw values are a contract.
public enum ComplexityLevel: String, Codable, Sendable, CaseIterable {
    case simple, moderate, complex

    /// Simple 0-2, moderate 3-5, complex 6 and up (the original coordinator's bands).
    public init(score: Int) {
        self = score >= 6 ? .complex : score >= 3 ? .moderate : .simple
    }
}
