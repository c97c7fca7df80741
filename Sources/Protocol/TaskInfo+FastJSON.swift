/// `TaskInfo` written straight into `FastJSONEncoder`'s sink: the scheduler writes a task's
/// info as its store row in every turn that changes the task, and through Codable's keyed
/// containers that was a sixth of its CPU under `swarm bench spawn` (perf, issue 17). The
/// bytes are exactly those of the keyed `encode(to:)` (same keys, same order, `null` for
/// absent values); the rarely present nested values (labels, artifacts, runs, ...) still go
/// through `Encodable`.
extension TaskInfo {
    func writeJSON(into sink: JSONSink, depth: Int) throws {
        sink.open(object: true, depth: depth)
        func key(_ name: String) { sink.beginElement(depth, key: name) }
        func text(_ name: String, _ value: String?) { sink.field(depth, name, value) }
        func number(_ name: String, _ value: Int64?) { sink.field(depth, name, value) }
        func value<T: Encodable>(_ name: String, _ value: T?) throws {
            key(name)
            if let value { try sink.encodeValue(value, depth: depth + 1) } else { sink.writeNull() }
        }
        text("id", id)
        text("state", state.rawValue)
        key("command")
        sink.open(object: false, depth: depth + 1)
        for word in command {
            sink.beginElement(depth + 1, key: nil)
            sink.writeString(word)
        }
        sink.close(above: depth + 1)
        number("exitCode", exitCode.map(Int64.init))
        number("signal", signal.map(Int64.init))
        text("reason", reason)
        number("attempts", Int64(attempts))
        number("submittedAt", submittedAt)
        number("placedAt", placedAt)
        number("startedAt", startedAt)
        number("finishedAt", finishedAt)
        text("output", output)
        text("parent", parent)
        number("priority", Int64(priority))
        try value("labels", labels)
        try value("secretEnv", secretEnv)
        try value("after", after)
        try value("afterAny", afterAny)
        text("waitReason", waitReason)
        key("unplaceable")
        sink.writeBool(unplaceable)
        try value("artifacts", artifacts)
        try value("skippedArtifacts", skippedArtifacts)
        try value("git", git)
        try value("runs", runs)
        metrics.writeJSON(into: sink, depth: depth)
    }
}

extension TaskResult {
    /// The same bytes as `encodeKeyed` (a worker encodes every run's result once for its
    /// `taskFinished` frame and journal record: 1.6% of a worker's CPU through keyed
    /// containers under `swarm bench spawn`); the rarely present artifacts and git outcome
    /// still go through `Encodable`.
    func writeJSON(into sink: JSONSink, depth: Int) throws {
        sink.open(object: true, depth: depth)
        func key(_ name: String) { sink.beginElement(depth, key: name) }
        func text(_ name: String, _ value: String?) { sink.field(depth, name, value) }
        func number(_ name: String, _ value: Int64?) { sink.field(depth, name, value) }
        func value<T: Encodable>(_ name: String, _ value: T?) throws {
            key(name)
            if let value { try sink.encodeValue(value, depth: depth + 1) } else { sink.writeNull() }
        }
        text("id", id)
        text("state", state.rawValue)
        number("exitCode", exitCode.map(Int64.init))
        number("signal", signal.map(Int64.init))
        text("reason", reason)
        text("output", output)
        number("pid", pid.map(Int64.init))
        number("attempt", Int64(attempt))
        number("attempts", Int64(attempt))
        number("submittedAt", submittedAt)
        number("placedAt", placedAt)
        number("startedAt", startedAt)
        number("finishedAt", finishedAt)
        try value("artifacts", artifacts)
        try value("skippedArtifacts", skippedArtifacts)
        try value("git", git)
        metrics.writeJSON(into: sink, depth: depth)
    }
}

extension RunMetrics {
    /// Its keys into the object open at `depth` (a task info's or a result's), as `encode(to:)`.
    func writeJSON(into sink: JSONSink, depth: Int) {
        func key(_ name: String) { sink.beginElement(depth, key: name) }
        func text(_ name: String, _ value: String?) { sink.field(depth, name, value) }
        func number(_ name: String, _ value: Int64?) { sink.field(depth, name, value) }
        text("node", node)
        text("runtime", runtime)
        text("model", model)
        text("complexity", complexity)
        number("complexityScore", complexityScore.map(Int64.init))
        number("initialTimeoutMs", initialTimeoutMs)
        number("finalTimeoutMs", finalTimeoutMs)
        number("extensions", Int64(extensions))
        number("silenceWarnings", Int64(silenceWarnings))
        number("outputBytes", Int64(outputBytes))
        number("outputBursts", Int64(outputBursts))
        number("timeToFirstOutputMs", timeToFirstOutputMs)
        number("firstOutputAt", firstOutputAt)
        text("contextMode", contextMode)
        text("contextFile", contextFile)
        text("workDir", workDir)
        text("logFile", logFile)
        number("startedAtUs", startedAtUs)
        number("firstOutputAtUs", firstOutputAtUs)
        number("exitedAtUs", exitedAtUs)
        number("runMs", runMs)
        number("prepareMs", prepareMs)
        number("inputBytesFetched", inputBytesFetched)
        number("collectMs", collectMs)
        number("worktreeMs", worktreeMs)
        key("worktreeReused")
        if let worktreeReused { sink.writeBool(worktreeReused) } else { sink.writeNull() }
    }
}
