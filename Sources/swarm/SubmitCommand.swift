import ArgumentParser
import Foundation
import SwarmClient
import SwarmProtocol

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Submit a task (a command, or an agent run through a runtime); prints its id.",
        usage: """
            swarm submit [options] -- COMMAND [ARGS...]
            swarm submit --runtime NAME [--model M] (--prompt TEXT | --prompt-file F) [options]
            swarm submit --file tasks.jsonl [--wait] [--json]
            """)

    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("Task id ([A-Za-z0-9._-], 1-128 characters); generated when absent.", valueName: "ID"))
    var id: String?
    @Option(help: ArgumentHelp("Run through this runtime of the workers' config (an agent CLI); takes no command.", valueName: "NAME"))
    var runtime: String?
    @Option(help: ArgumentHelp("Model the runtime should use.", valueName: "MODEL"))
    var model: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("The agent's prompt.", valueName: "TEXT"))
    var prompt: String?
    @Option(help: ArgumentHelp("File holding the prompt (instead of --prompt).", valueName: "FILE"))
    var promptFile: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("What the task should achieve.", valueName: "TEXT"))
    var objective: String?
    @Option(help: ArgumentHelp("File holding JSON context for the agent (any JSON value).", valueName: "FILE"))
    var contextFile: String?
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("A requirement the result must meet; repeatable.", valueName: "TEXT"))
    var requirement: [String] = []
    @Option(help: ArgumentHelp("simple, moderate, complex or a score (a whole number >= 0); computed when absent.", valueName: "simple|moderate|complex|SCORE"))
    var complexity: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("The first deadline in seconds (overrides the complexity's). Output near it extends it, up to --max-timeout.", valueName: "SECONDS"))
    var timeout: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("The furthest extensions may move the deadline, in seconds from the start (default 240).", valueName: "SECONDS"))
    var maxTimeout: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds one deadline extension adds.", valueName: "SECONDS"))
    var extendBy: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Extend only when the deadline is this many seconds away (0: never extend).", valueName: "SECONDS"))
    var extendWithin: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds of recent output an extension looks at.", valueName: "SECONDS"))
    var activityWindow: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Output bursts needed in that window to extend.", valueName: "N"))
    var minBursts: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds of quiet that separate two output bursts (default 1); output closer together is one burst, however many reads it takes.", valueName: "SECONDS"))
    var burstGap: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds without output before a silence warning.", valueName: "SECONDS"))
    var silenceWarn: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds without output before the task is killed.", valueName: "SECONDS"))
    var silenceKill: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds between SIGTERM and SIGKILL when the task is killed.", valueName: "SECONDS"))
    var killGrace: Double?
    @Option(help: ArgumentHelp("A KEY=VALUE environment variable for the task; repeatable.", valueName: "KEY=VALUE"))
    var env: [String] = []
    @Option(help: ArgumentHelp("A secret environment variable: KEY=FILE, the value read from FILE (less one trailing newline); repeatable. Never shown, stored encrypted, given only to the task (needs a cluster token).", valueName: "KEY=FILE"))
    var secretEnv: [String] = []
    @Option(help: ArgumentHelp("A KEY=VALUE label of the task (shown, not interpreted); repeatable.", valueName: "KEY=VALUE"))
    var label: [String] = []
    @Option(help: ArgumentHelp("Id of the task that submits this one.", valueName: "ID"))
    var parent: String?
    @Option(help: ArgumentHelp("A KEY=VALUE node label a worker must have; repeatable.", valueName: "KEY=VALUE"))
    var constraint: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Higher runs first (default 0).", valueName: "N"))
    var priority: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Run in this existing directory on the worker (absolute: a shared file system, or a path every worker has) instead of the task's own. Not with --input or --repo.", valueName: "DIR"))
    var workdir: String?
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("A file or directory on this machine, placed at DEST (default: its base name) in the task's directory before the task starts; repeatable. A relative SRC is relative to the current directory. SRC:DEST is split at the last colon only when what follows is a valid DEST and the whole text is not an existing path.", valueName: "SRC[:DEST]"))
    var input: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Files matching this pattern (relative to the task's directory) are uploaded when the run ends, in any state; repeatable. 'swarm fetch ID' downloads them.", valueName: "GLOB"))
    var artifact: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Run in a git worktree of this repository (a URL or a path the workers can read) on a new branch swarm/ID; its commits come back as a bundle ('swarm fetch ID --git').", valueName: "URL|PATH"))
    var repo: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("The commit, branch or tag of --repo to start from (default HEAD).", valueName: "REF"))
    var ref: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Run the task again up to N times when a run ends in a --retry-on state (default 0, at most 100). Each retry waits its backoff queued, then prefers another worker.", valueName: "N"))
    var retries: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("The end states that are retried, comma-separated (default failed,timed_out,silence_killed,spawn_failed; lost and health_failed too, once the task's 3 runs lost to worker trouble are spent).", valueName: "STATE,..."))
    var retryOn: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds before the first retry (default 10), doubled for each next one, jittered by +-20 %, at most 600.", valueName: "SECONDS"))
    var retryBackoff: Double?
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Run only after these tasks have succeeded (ids, comma-separated; repeatable). Until then it waits queued; if one ends otherwise, this task ends dependency_failed.", valueName: "ID,..."))
    var after: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: ArgumentHelp("Run only after these tasks have ended, in any state (ids, comma-separated; repeatable): for merge and clean-up steps.", valueName: "ID,..."))
    var afterAny: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Most one task's packed inputs may take, in MiB (default 256; the scheduler has its own limit).", valueName: "MIB"))
    var maxInputMb: Int?
    @Option(help: ArgumentHelp("Submit every task of this JSONL file (one spec per line) in one request; no other task options.", valueName: "FILE"))
    var file: String?
    @Flag(help: "Wait for the task(s) to end. One task: print its stdout and stderr as it runs, then exit with its exit code (124 timed out or silence-killed, 125 cancelled/lost/health-failed/dependency-failed, 127 spawn failed, 128+N on signal N). With --quiet or --json, or with --file: exit 0 only if all succeeded, else 1.")
    var wait = false
    @Flag(help: "With --wait: print the task id instead of its output; exit 0 only if it succeeded, else 1.")
    var quiet = false
    @Flag(help: "Print JSON (the task; with --file {\"ids\", \"existing\"}).")
    var json = false
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    /// Whether any option describing a task was given (with `--file`, none may be).
    var hasTaskOptions: Bool {
        let values: [Any?] = [id, runtime, model, prompt, promptFile, objective, contextFile, complexity, timeout, maxTimeout,
                              extendBy, extendWithin, activityWindow, minBursts, burstGap, silenceWarn, silenceKill, killGrace,
                              parent, priority, workdir, repo, ref, retries, retryOn, retryBackoff]
        return values.contains { $0 != nil } || !requirement.isEmpty || !env.isEmpty || !secretEnv.isEmpty || !label.isEmpty || !constraint.isEmpty
            || !input.isEmpty || !artifact.isEmpty || !after.isEmpty || !afterAny.isEmpty
    }

    func validate() throws {
        // The command captures everything after the options, so a help flag lands there.
        if let first = command.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
        if let first = command.first, first.hasPrefix("-"), first != "--" {
            throw ValidationError("unknown option '\(first)' (the command goes after --)")
        }
        if quiet && !wait { throw ValidationError("--quiet goes with --wait") }
        if let maxInputMb, !Self.maxInputMbRange.contains(maxInputMb) {
            throw ValidationError("--max-input-mb must be \(Self.maxInputMbRange.lowerBound) to \(Self.maxInputMbRange.upperBound), got \(maxInputMb)")
        }
        if file != nil {
            if !argv.isEmpty { throw ValidationError("--file takes no command after --") }
            if hasTaskOptions { throw ValidationError("--file takes no task options (put them in the file's lines)") }
            return
        }
        if prompt != nil && promptFile != nil { throw ValidationError("--prompt and --prompt-file are mutually exclusive") }
        if runtime != nil && !argv.isEmpty { throw ValidationError("a --runtime task takes no command after --") }
        if runtime == nil && argv.isEmpty {
            throw ValidationError("missing command: swarm submit [options] -- COMMAND [ARGS...] (or --runtime NAME --prompt TEXT, or --file F)")
        }
        if let id, let problem = TaskID.problem(with: id) { throw ValidationError(problem) }
    }

    /// The flags as task options (files not read yet).
    func taskOptions() throws(TaskOptionsError) -> TaskOptions {
        var o = TaskOptions()
        o.id = id
        o.command = argv
        o.env = env.isEmpty ? nil : try TaskOptions.pairs(env, option: "--env")
        o.secretEnvFiles = secretEnv.isEmpty ? nil : try TaskOptions.pairs(secretEnv, option: "--secret-env")
        o.runtime = runtime
        o.model = model
        o.prompt = prompt
        o.promptFile = promptFile
        o.objective = objective
        o.contextFile = contextFile
        o.requirements = requirement.isEmpty ? nil : requirement
        o.complexity = complexity
        o.timeout = timeout
        o.maxTimeout = maxTimeout
        o.extendBy = extendBy
        o.extendWithin = extendWithin
        o.activityWindow = activityWindow
        o.minBursts = minBursts
        o.burstGap = burstGap
        o.silenceWarn = silenceWarn
        o.silenceKill = silenceKill
        o.killGrace = killGrace
        o.labels = label.isEmpty ? nil : try TaskOptions.pairs(label, option: "--label")
        o.parent = parent
        o.constraints = constraint.isEmpty ? nil : try TaskOptions.pairs(constraint, option: "--constraint")
        o.priority = priority
        o.workdir = workdir
        o.inputs = input.isEmpty ? nil : input
        o.artifacts = artifact.isEmpty ? nil : artifact
        o.repo = repo
        o.ref = ref
        o.retries = retries
        o.retryOn = retryOn.map(RetryPolicy.parseList)
        o.retryBackoff = retryBackoff
        o.after = TaskOptions.dependencyList(after)
        o.afterAny = TaskOptions.dependencyList(afterAny)
        return o
    }

    /// `--max-input-mb`: 1 MiB to 1 TiB (`Bounds.bytes` is far above).
    static let maxInputMbRange = 1...(1 << 20)

    /// The inputs of this submit, packed with `Archive.pack` (relative SRCs: current directory).
    func inputUploads() -> InputUploads {
        InputUploads(maxBytesPerTask: maxInputMb.map { Int64($0) << 20 } ?? BlobLimits.defaultInputBytesPerTask,
                     cwd: InputUploads.currentDirectory(), pack: InputUploads.archivePack)
    }

    /// The spec the flags describe, files read and checked (`TaskSpec.problem()`).
    func taskSpec(readFile: (String, Int) throws -> String = TaskOptions.readTextFile) throws(TaskOptionsError) -> TaskSpec {
        try taskOptions().spec(naming: .flags, readFile: readFile)
    }

    func run() throws {
        if let file { return try submitFile(file) }
        var spec: TaskSpec
        do { spec = try taskSpec() } catch { throw usageError(error.description) }
        // Packed before connecting: a missing or oversized input costs the scheduler nothing.
        let uploads = inputUploads()
        defer { uploads.remove() }
        do { spec = try uploads.prepare([spec])[0] } catch { throw usageError(error.description) }
        if wait && !quiet && !json { return try submitAndStream(spec, uploads) }
        let info: TaskInfo? = try runClient {
            let client = try client.client()
            try uploads.upload(via: client)
            let id = try client.submit(spec)
            uploads.remove()  // the scheduler holds the inputs now
            if !wait {
                if json { printLine(Output.json(try client.status(id))) } else { printLine(id) }
                return nil
            }
            if !json { printLine(id) }
            return try client.waitShowingProgress([id], json: json)[0]
        }
        guard let info else { return }
        if json { printLine(Output.json(info)) }
        if info.state != .succeeded {
            if !json, let message = TaskOutcome.message(info) { printOutcome(message) }
            throw ExitCode(1)
        }
    }

    /// `--wait` (not `--quiet`, not `--json`): like `srun`, the task's stdout and stderr as
    /// it runs, then its exit status (`TaskOutcome`).
    private func submitAndStream(_ spec: TaskSpec, _ uploads: InputUploads) throws {
        let info: TaskInfo = try runClient {
            let client = try client.client()
            try uploads.upload(via: client)
            let id = try client.submit(spec)
            uploads.remove()  // the scheduler holds the inputs now
            var view = LogView(options: .init(splitStreams: true))
            do {
                _ = try client.logChunks(id, follow: true) { chunk in writePieces(view.feed(chunk)) }
                writePieces(view.finish())
            } catch ClientError.server(let code, let reason) {
                // The output is not shown any more (e.g. the scheduler dropped a follower that
                // fell behind); the outcome still counts. That connection may be closed.
                writePieces(view.finish())
                printError("output of task \(id) stopped (\(code.rawValue)): \(reason); waiting for it to end")
                return try self.client.client().wait([id])[0]
            }
            return try client.wait([id])[0]
        }
        if let message = TaskOutcome.message(info) { printOutcome(message) }
        let status = TaskOutcome.exitStatus(info)
        if status != 0 { throw ExitCode(status) }
    }

    /// `--file`: every line in one `submitBatch`; nothing is submitted if any line is bad.
    /// An input named by many lines is packed and uploaded once.
    private func submitFile(_ path: String) throws {
        let specs: [TaskSpec]
        let uploads = inputUploads()
        defer { uploads.remove() }
        do {
            let numbered = try TaskFile.loadNumbered(path: path)
            specs = try uploads.prepare(numbered.map(\.spec), label: { "\(path):\(numbered[$0].line)" })
        } catch let error as TaskFileError {
            throw usageError(error.description)
        } catch {
            throw usageError("\(error)")
        }
        let (submitted, infos): ((ids: [String], existing: [String]), [TaskInfo]?) = try runClient {
            let client = try client.client()
            try uploads.upload(via: client)
            let submitted = try client.submitBatch(specs)
            uploads.remove()  // the scheduler holds the inputs now
            if !json { printLine(Output.batchLines(ids: submitted.ids, existing: submitted.existing)) }
            return (submitted, wait ? try client.waitShowingProgress(submitted.ids, json: json) : nil)
        }
        if json { printLine(Output.json(BatchJSON(ids: submitted.ids, existing: submitted.existing, tasks: infos))) }
        guard let infos else { return }
        if !json { printLine(Output.taskTable(infos)) }
        let failed = infos.filter { $0.state != .succeeded }.count
        if failed > 0 {
            if !json { printOutcome("\(failed) of \(infos.count) tasks did not succeed") }
            throw ExitCode(1)
        }
    }
}

/// `submit --file --json`: the ids, those that existed already, and with `--wait` the tasks.
private struct BatchJSON: Encodable {
    var ids: [String]
    var existing: [String]
    var tasks: [TaskInfo]?

    enum CodingKeys: String, CodingKey { case ids, existing, tasks }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ids, forKey: .ids)
        try c.encode(existing, forKey: .existing)
        // Without --wait there are no tasks to show: null, not a missing key.
        try c.encode(tasks, forKey: .tasks)
    }
}
