import SwarmArchive
import SwarmProtocol

/// What the scheduler requires of blobs named by a submit and by a result. Pure: what is
/// held comes from `held` (the blob's size, nil when not held).
enum TaskBlobRules {
    /// Why `spec`'s `inputBlobs` cannot be accepted, or nil: every blob held with the size
    /// named, every `dest` a safe relative path (no two the same), at most
    /// `BlobLimits.maxInputsPerTask` inputs whose sizes sum to at most `maxBytes`.
    static func inputProblem(_ spec: TaskSpec, maxBytes: Int64, held: (String) -> Int64?) -> String? {
        guard let inputs = spec.inputBlobs, !inputs.isEmpty else { return nil }
        guard inputs.count <= BlobLimits.maxInputsPerTask else {
            return "the task names \(inputs.count) inputs; at most \(BlobLimits.maxInputsPerTask)"
        }
        var total: Int64 = 0
        var dests = Set<String>()
        for input in inputs {
            if let problem = destProblem(input.dest) { return "input dest \(PeerText.safe(input.dest, limit: 200)): \(problem)" }
            guard dests.insert(input.dest).inserted else { return "two inputs have the dest \(PeerText.safe(input.dest, limit: 200))" }
            if let problem = BlobHash.problem(with: input.sha256) { return "input \(PeerText.safe(input.dest, limit: 200)): \(problem)" }
            guard input.size >= 0, input.size <= maxBytes else {
                return "input \(PeerText.safe(input.dest, limit: 200)) is \(input.size) bytes; the scheduler takes at most \(maxBytes) bytes of input per task"
            }
            total += input.size
            guard total <= maxBytes else {
                return "the task's inputs are over \(maxBytes) bytes together (the scheduler's maxInputBytesPerTask)"
            }
            guard let size = held(input.sha256) else {
                return "input \(PeerText.safe(input.dest, limit: 200)) (blob \(input.sha256)) was not uploaded to the scheduler"
            }
            guard size == input.size else {
                return "input \(PeerText.safe(input.dest, limit: 200)) names \(input.size) bytes; blob \(input.sha256) has \(size)"
            }
        }
        return nil
    }

    /// Nil when `dest` is a safe relative path inside a task's directory, else why not: the
    /// rule the worker applies again when unpacking (`Archive.destProblem`).
    static func destProblem(_ dest: String) -> String? { Archive.destProblem(dest) }

    /// Skipped artifacts a result keeps one by one (the worker lists at most as many); the
    /// rest are counted in one last entry.
    static let maxSkippedListed = 1_000

    /// `result` with only artifacts a user may fetch in `artifacts`: at most
    /// `BlobLimits.maxArtifactsPerTask`, each at a safe relative path (`TaskSpec.relativePathProblem`:
    /// `swarm fetch` writes it under its directory), no path twice, a well-formed hash, and its
    /// blob held with the size named ("not uploaded" otherwise). Every other ref moves to
    /// `skippedArtifacts` with the reason, which keeps at most `maxSkippedListed` entries plus
    /// one counting the rest. A worker does all this itself; a hostile or broken one cannot
    /// make the scheduler name more.
    static func keepingHeld(_ result: TaskResult, held: (String) -> Int64?) -> TaskResult {
        let artifacts = result.artifacts ?? []
        let listed = result.skippedArtifacts ?? []
        guard !artifacts.isEmpty || listed.count > maxSkippedListed else { return result }
        var result = result
        var kept: [ArtifactRef] = []
        var skipped: [SkippedArtifact] = []
        var unlisted = 0
        func skip(_ entry: SkippedArtifact) {
            if skipped.count < maxSkippedListed { skipped.append(entry) } else { unlisted += 1 }
        }
        listed.forEach(skip)
        var paths = Set<String>()
        for artifact in artifacts {
            let reason: String?
            var shownPath = artifact.path
            if kept.count >= BlobLimits.maxArtifactsPerTask {
                reason = "over \(BlobLimits.maxArtifactsPerTask) artifacts (the scheduler's limit)"
            } else if let problem = TaskSpec.relativePathProblem(artifact.path) {
                reason = "not a safe relative path (\(problem))"
                shownPath = PeerText.safe(artifact.path, limit: 200)
            } else if paths.contains(artifact.path) {
                reason = "another artifact has this path"
            } else if BlobHash.problem(with: artifact.sha256) == nil, let size = held(artifact.sha256), size == artifact.size {
                reason = nil
            } else {
                reason = "not uploaded"
            }
            guard let reason else {
                paths.insert(artifact.path)
                kept.append(artifact)
                continue
            }
            skip(SkippedArtifact(path: shownPath, size: artifact.size, reason: reason))
        }
        if unlisted > 0 {
            skipped.append(SkippedArtifact(path: "*", size: nil, reason: "\(unlisted) more skipped artifacts (not listed one by one)"))
        }
        result.artifacts = result.artifacts == nil && kept.isEmpty ? nil : kept
        result.skippedArtifacts = skipped.isEmpty ? nil : skipped
        return result
    }
}
