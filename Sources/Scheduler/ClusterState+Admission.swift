import SwarmProtocol

/// What the scheduler knows of each runtime's definition, from what workers report with their
/// health (`RuntimeStatus`): enough to resolve a task's model at submit and to check a prompt
/// that goes into argv. Pure value, kept by `ClusterState`.
struct RuntimeCatalog: Sendable {
    /// runtime -> node -> what that node reported.
    private var reports: [String: [String: RuntimeStatus]] = [:]
    /// Runtime tasks submitted without a model while no worker had told that runtime's
    /// `defaultModel`: runtime -> task ids. Resolved before any of them can be placed.
    var unresolved: [String: Set<String>] = [:]

    /// Records what `node` reports; returns the runtimes whose reports changed.
    mutating func update(node: String, runtimes: [RuntimeStatus]) -> [String] {
        var changed: [String] = []
        for status in runtimes {
            let old = reports[status.name]?[node]
            if old?.defaultModel != status.defaultModel || old?.promptInArgv != status.promptInArgv
                || old?.argvTemplateBytes != status.argvTemplateBytes || old?.promptArgumentBytes != status.promptArgumentBytes || old == nil {
                changed.append(status.name)
            }
            reports[status.name, default: [:]][node] = status
        }
        return changed
    }

    /// The model a task of `runtime` naming none runs with: the `defaultModel` reported by the
    /// first worker (by name) that reports one. Nil when none does (yet).
    /// Workers that disagree: the task is given this model explicitly, wherever it runs.
    func defaultModel(runtime: String) -> String? {
        guard let byNode = reports[runtime] else { return nil }
        return byNode.keys.sorted().lazy.compactMap { byNode[$0]?.defaultModel.flatMap { Self.isModelName($0) ? $0 : nil } }.first
    }

    /// A worker's word is checked like a task's own `model` (TaskSpec): it lands in specs,
    /// listings and limits.
    static func isModelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && !name.utf8.contains(0) && !name.contains(where: \.isWhitespace)
    }

    /// For a runtime whose prompt goes into argv on some worker: the largest template and the
    /// most bytes around `{prompt}` any such worker reported (the strictest). Nil otherwise.
    func promptInArgv(runtime: String) -> (templateBytes: Int, aroundPromptBytes: Int)? {
        let inArgv = (reports[runtime] ?? [:]).values.filter { $0.promptInArgv == true }
        guard !inArgv.isEmpty else { return nil }
        // Bounded here: a worker's numbers are not trusted to be sane.
        let clamp = { (n: Int?) in min(max(n ?? 0, 0), ExecLimits.typicalLimit) }
        return (inArgv.map { clamp($0.argvTemplateBytes) }.max() ?? 0, inArgv.map { clamp($0.promptArgumentBytes) }.max() ?? 0)
    }
}

extension ClusterState {
    /// Why a spec (its id set, already valid by `TaskSpec.problem`) is refused here, or its
    /// size as JSON: every frame it causes must fit (`FrameBudget`) and, when a worker has told
    /// that its runtime puts the prompt into argv, exec must take that argv (`ExecLimits`).
    func admission(_ spec: TaskSpec) throws(SchedulerError) -> Int {
        let bytes = FrameBudget.admissionSize(of: spec)
        if let problem = FrameBudget.problem(with: spec, encodedBytes: bytes) { throw .invalidTask(problem) }
        if let runtime = spec.runtime, let argv = runtimeCatalog.promptInArgv(runtime: runtime) {
            let prompt = spec.promptTextBytes
            let argument = argv.aroundPromptBytes + prompt + 1
            if argument > ExecLimits.maxStringBytes {
                throw .invalidTask("runtime \(runtime) puts the prompt into argv ({prompt}), where it would be an argument of up to \(argument) bytes (prompt, objective and requirements, with \(TaskSpec.promptExtraBytes) kept for what swarm adds); exec takes at most \(ExecLimits.maxStringBytes) per argument: shorten it, or use a runtime that reads the prompt on stdin")
            }
            var total = argv.templateBytes + prompt
            for (key, value) in spec.env ?? [:] { total += ExecLimits.cost(key: key, value: value) }
            for (key, value) in spec.secretEnv ?? [:] { total += key.utf8.count + SecretSealer.plainBytes(value) + 2 + ExecLimits.pointerBytes }
            if total > ExecLimits.taskBudget {
                throw .invalidTask("runtime \(runtime)'s argv with the prompt and the task's environment take \(total) bytes in exec; the limit at submit is \(ExecLimits.taskBudget)")
            }
        }
        return bytes
    }

    /// The model a new task runs with: its own, or its runtime's default as workers report it.
    func resolvedModel(for spec: TaskSpec) -> String? {
        if let model = spec.model { return model }
        guard let runtime = spec.runtime else { return nil }
        return runtimeCatalog.defaultModel(runtime: runtime)
    }

    /// A worker reported its runtimes: queued tasks of a runtime whose model was not known yet
    /// get it now, before the next placement round (so a model limit always applies).
    mutating func resolvePendingModels(after runtimeReport: [RuntimeStatus], node: String) {
        let changed = runtimeCatalog.update(node: node, runtimes: runtimeReport)
        for runtime in changed {
            guard let ids = runtimeCatalog.unresolved[runtime], let model = runtimeCatalog.defaultModel(runtime: runtime) else { continue }
            var still: Set<String> = []
            for id in ids {
                guard let record = tasks[id], !record.info.state.isTerminal else { continue }
                // A run going now keeps its model; if it comes back to the queue it is resolved then.
                guard record.info.state == .queued else { still.insert(id); continue }
                // A held task (dependencies, backoff) is not in the placement queue and stays
                // out of it: its release puts it there.
                let placeable = !record.isHeld && !treeCancelPending.contains(id)
                if placeable { queue.remove(id: id, request: record.request) }
                tasks[id]!.request.model = model
                tasks[id]!.info.metrics.model = model
                if placeable { queue.push(id: id, request: tasks[id]!.request, sequence: record.sequence) }
            }
            runtimeCatalog.unresolved[runtime] = still.isEmpty ? nil : still
        }
    }

    /// The spec a worker is sent: the task's own, with the model it was resolved to.
    static func assignedSpec(_ record: TaskRecord) -> TaskSpec {
        var spec = record.spec
        if spec.model == nil, let model = record.request.model { spec.model = model }
        // The scheduler's business only (up to 1,000 ids each): the worker is not sent them.
        spec.after = nil
        spec.afterAny = nil
        return spec
    }
}
