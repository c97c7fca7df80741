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

    /// `result` with only artifacts whose blob is held (with the size named) in
    /// `artifacts`; the others move to `skippedArtifacts` as "not uploaded".
    static func keepingHeld(_ result: TaskResult, held: (String) -> Int64?) -> TaskResult {
        guard let artifacts = result.artifacts, !artifacts.isEmpty else { return result }
        var result = result
        var kept: [ArtifactRef] = []
        var skipped = result.skippedArtifacts ?? []
        for artifact in artifacts {
            if BlobHash.problem(with: artifact.sha256) == nil, let size = held(artifact.sha256), size == artifact.size {
                kept.append(artifact)
            } else {
                skipped.append(SkippedArtifact(path: artifact.path, size: artifact.size, reason: "not uploaded"))
            }
        }
        result.artifacts = kept
        result.skippedArtifacts = skipped.isEmpty ? nil : skipped
        return result
    }
}
