/// `TaskInfo` written straight into `FastJSONEncoder`'s sink: the scheduler writes a task's
/// info as its store row in every turn that changes the task, and through Codable's keyed
/// containers that was a sixth of its CPU under `swarm bench spawn` (perf, issue 17). The
/// bytes are exactly those of the keyed `encode(to:)` (same keys, same order, `null` for
/// absent values); the rarely present nested values (labels, artifacts, runs, ...) still go
/// through `Encodable`.
extension TaskInfo {
    func writeJSON(into sink: JSONSink, depth: Int) throws {
        let object = JSONObjectWriter.open(sink, depth: depth)
        object.text("id", id)
        object.text("state", state.rawValue)
        object.strings("command", command)
        object.number("exitCode", exitCode.map(Int64.init))
        object.number("signal", signal.map(Int64.init))
        object.text("reason", reason)
        object.number("attempts", Int64(attempts))
        object.number("submittedAt", submittedAt)
        object.number("placedAt", placedAt)
        object.number("startedAt", startedAt)
        object.number("finishedAt", finishedAt)
        object.text("output", output)
        object.text("parent", parent)
        object.number("priority", Int64(priority))
        try object.value("labels", labels)
        try object.value("secretEnv", secretEnv)
        try object.value("after", after)
        try object.value("afterAny", afterAny)
        object.text("waitReason", waitReason)
        object.bool("unplaceable", unplaceable)
        try object.value("artifacts", artifacts)
        try object.value("skippedArtifacts", skippedArtifacts)
        try object.value("git", git)
        try object.value("runs", runs)
        metrics.writeJSON(into: sink, depth: depth)
    }
}

extension TaskResult {
    /// The same bytes as `encodeKeyed` (a worker encodes every run's result once for its
    /// `taskFinished` frame and journal record: 1.6% of a worker's CPU through keyed
    /// containers under `swarm bench spawn`); the rarely present artifacts and git outcome
    /// still go through `Encodable`.
    func writeJSON(into sink: JSONSink, depth: Int) throws {
        let object = JSONObjectWriter.open(sink, depth: depth)
        object.text("id", id)
        object.text("state", state.rawValue)
        object.number("exitCode", exitCode.map(Int64.init))
        object.number("signal", signal.map(Int64.init))
        object.text("reason", reason)
        object.text("output", output)
        object.number("pid", pid.map(Int64.init))
        object.number("attempt", Int64(attempt))
        object.number("attempts", Int64(attempt))
        object.number("submittedAt", submittedAt)
        object.number("placedAt", placedAt)
        object.number("startedAt", startedAt)
        object.number("finishedAt", finishedAt)
        try object.value("artifacts", artifacts)
        try object.value("skippedArtifacts", skippedArtifacts)
        try object.value("git", git)
        metrics.writeJSON(into: sink, depth: depth)
    }
}

extension RunMetrics {
    /// Its keys into the object open at `depth` (a task info's or a result's), as `encode(to:)`.
    func writeJSON(into sink: JSONSink, depth: Int) {
        let object = JSONObjectWriter(sink, depth: depth)
        object.text("node", node)
        object.text("runtime", runtime)
        object.text("model", model)
        object.text("complexity", complexity)
        object.number("complexityScore", complexityScore.map(Int64.init))
        object.number("initialTimeoutMs", initialTimeoutMs)
        object.number("finalTimeoutMs", finalTimeoutMs)
        object.number("extensions", Int64(extensions))
        object.number("silenceWarnings", Int64(silenceWarnings))
        object.number("outputBytes", Int64(outputBytes))
        object.number("outputBursts", Int64(outputBursts))
        object.number("timeToFirstOutputMs", timeToFirstOutputMs)
        object.number("firstOutputAt", firstOutputAt)
        object.text("contextMode", contextMode)
        object.text("contextFile", contextFile)
        object.text("workDir", workDir)
        object.text("logFile", logFile)
        object.number("startedAtUs", startedAtUs)
        object.number("firstOutputAtUs", firstOutputAtUs)
        object.number("exitedAtUs", exitedAtUs)
        object.number("runMs", runMs)
        object.number("prepareMs", prepareMs)
        object.number("inputBytesFetched", inputBytesFetched)
        object.number("collectMs", collectMs)
        object.number("worktreeMs", worktreeMs)
        object.bool("worktreeReused", worktreeReused)
    }
}
