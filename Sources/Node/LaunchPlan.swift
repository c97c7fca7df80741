import Foundation
import SwarmProtocol

/// Everything needed to start one run, worked out from the assignment and the worker's
/// config: argv, environment, directories, stdin, context file and the policy layers.
struct LaunchPlan {
    var context: RunnerContext
    /// Whether the context file must be written before the spawn, and where.
    var contextFile: (path: String, json: String)?
    var workDir: String
    /// The task's `artifacts` patterns and then its runtime's defaults (issue 11): globbed in
    /// the task directory after the run. Empty for most tasks.
    var artifactPatterns: [String] = []

    /// Why a run cannot start here. `refuse`: the scheduler should place it elsewhere (no
    /// attempt used); `fail`: the run ends with this state and reason.
    enum Problem: Error {
        case refuse(String)
        case fail(TaskState, String)
    }

    /// `execLimit`: what exec takes here in argv + environment (`ExecLimits.limit`); `clocks`:
    /// what the run's runner reads.
    static func make(task: TaskAssignment, config: WorkerConfig, baseEnvironment: [String: String],
                     health: HealthMonitor, logsDir: String, execLimit: Int = ExecLimits.typicalLimit,
                     clocks: Clocks) -> Result<LaunchPlan, Problem> {
        let spec = task.spec
        // A task's own `workdir` (an existing directory, checked before the spawn) comes first.
        let workDir = spec.workdir ?? config.workDir ?? "\(config.workRoot)/\(task.id)"
        var metrics = RunMetrics()
        metrics.node = config.name
        metrics.workDir = workDir
        metrics.logFile = TaskLog.path(logsDir: logsDir, id: task.id)
        var settings = config.supervisor
        var env = baseEnvironment
        var argv = spec.command
        var stdin: String?
        var contextFile: (path: String, json: String)?
        var contextPath: String?
        var artifactPatterns = spec.artifacts ?? []
        switch AgentPrompt.placement(of: spec, inlineLimit: config.contextInlineMax) {
        case .none: break
        case .inline: metrics.contextMode = "inline"
        case .file(let json):
            let path = "\(workDir)/.swarm/context/\(task.id).json"
            contextFile = (path, json)
            contextPath = path
            metrics.contextMode = "file"
            metrics.contextFile = path
        }
        if let name = spec.runtime {
            guard let runtime = config.runtimes.first(where: { $0.name == name }) else {
                return .failure(.refuse(RuntimeError.unknown(name).description))
            }
            if let status = health.status(name), !status.healthy {
                return .failure(.fail(.healthFailed, "runtime \(name) is unhealthy on \(config.name)\(status.detail.map { ": \($0)" } ?? " (not checked yet)")"))
            }
            let model = spec.model ?? runtime.defaultModel
            metrics.runtime = name
            metrics.model = model
            let prompt = AgentPrompt.text(for: spec, contextFile: contextPath, workDir: workDir)
            for pattern in runtime.artifacts where !artifactPatterns.contains(pattern) { artifactPatterns.append(pattern) }
            switch runtime.argv(model: model, prompt: prompt, id: task.id, contextFile: contextPath, workDir: workDir) {
            case .success(let resolved): argv = resolved
            case .failure(let error): return .failure(.fail(.spawnFailed, error.description))
            }
            stdin = runtime.promptOnStdin ? prompt : nil
            for (key, value) in runtime.env { env[key] = value }
            settings.policy = settings.policy.applying(runtime.timeouts)
            if let model { env["SWARM_MODEL"] = model }
        } else {
            guard config.allowsCommands else {
                return .failure(.refuse("worker \(config.name) does not run plain commands (only runtimes: \(config.runtimes.map(\.name).joined(separator: ", ")))"))
            }
            metrics.model = spec.model
            if spec.prompt != nil || spec.objective != nil || spec.context != nil {
                stdin = AgentPrompt.text(for: spec, contextFile: contextPath)
            }
            if let model = spec.model { env["SWARM_MODEL"] = model }
        }
        for (key, value) in spec.env ?? [:] { env[key] = value }
        // Opened by the scheduler for this assignment only; never logged or written here.
        for (key, value) in spec.secretEnv ?? [:] { env[key] = value }
        // Set last: a task's own env cannot fake what swarm tells it.
        env["SWARM_TASK_ID"] = task.id
        env["SWARM_NODE"] = config.name
        env["SWARM_ATTEMPT"] = String(task.attempt)
        env["SWARM_SCHEDULER"] = "\(config.schedulerHost):\(config.schedulerPort)"
        env["SWARM_WORK_DIR"] = workDir
        env["SWARM_PARENT_ID"] = spec.parent ?? ""
        env["SWARM_CONTEXT_FILE"] = contextPath ?? ""
        // The task's own credential (not the cluster token): enough to submit child tasks.
        env["SWARM_TASK_TOKEN"] = task.taskToken ?? config.token?.taskCredential(for: task.id)
        if spec.runtime != nil || spec.model != nil { env["SWARM_MODEL"] = metrics.model ?? "" }
        let environment = env.map { "\($0.key)=\($0.value)" }
        // What exec will see, checked against what it takes: a clear reason, not a bare E2BIG
        // (nor a prompt silently cut at a NUL).
        if let problem = ExecLimits.problem(argv: argv, environment: environment, limit: execLimit) {
            return .failure(.fail(.spawnFailed, "exec would refuse this task: \(problem)"))
        }
        let context = RunnerContext(
            argv: argv, environment: environment, workingDirectory: workDir,
            stdin: stdin, logPath: metrics.logFile!, supervisorSettings: settings, metrics: metrics, clocks: clocks)
        return .success(LaunchPlan(context: context, contextFile: contextFile, workDir: workDir, artifactPatterns: artifactPatterns))
    }

    /// Creates the run's working directory and context file.
    func prepare() throws(FileError) {
        try Files.makeDirectories(workDir)
        if let contextFile {
            try Files.makeDirectories((contextFile.path as NSString).deletingLastPathComponent)
            try Files.writeAtomically(Array(contextFile.json.utf8) + [0x0A], to: contextFile.path)
        }
    }
}
