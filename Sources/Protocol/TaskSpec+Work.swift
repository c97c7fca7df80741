/// Checks of a spec's work in and out (issue 11): `workdir`, `inputs`/`inputBlobs`,
/// `artifacts`, `repo` and `ref`. Part of `TaskSpec.problem()`, so the scheduler refuses at
/// submit exactly what the CLI refuses before uploading anything.
extension TaskSpec {
    /// Longest `workdir` and `repo`: Linux's PATH_MAX (a URL is no longer in practice).
    public static let maxWorkPathBytes = 4096
    /// Longest `ref` (git has no limit; a branch, tag or commit name is far shorter).
    public static let maxRefBytes = 1024
    /// Longest `inputs` entry: a SRC path and a DEST path with the colon between them.
    public static let maxInputTextBytes = 2 * maxWorkPathBytes + 1
    /// Longest component of a path inside a task's directory (Linux file systems' NAME_MAX).
    public static let maxComponentBytes = 255

    /// Why the work-in/out fields cannot be accepted, or nil. `inputsUploaded: false` is the
    /// submitting client's check before it uploads: `inputs` without `inputBlobs` is then
    /// expected. The scheduler checks with `true`: an `inputs` list whose uploads are missing
    /// would run the task without them.
    public func workProblem(inputsUploaded: Bool = true) -> String? {
        let inputCount = max(inputs?.count ?? 0, inputBlobs?.count ?? 0)
        if let workdir {
            if let problem = Self.absolutePathProblem(workdir, what: "workdir") { return problem }
            if inputCount > 0 {
                return "workdir and inputs do not go together: inputs are unpacked into the task's own directory; --workdir runs in a shared one"
            }
            if repo != nil {
                return "workdir and repo do not go together: a repo task runs in its own git worktree, --workdir in an existing directory"
            }
        }
        if let problem = inputsProblem(inputsUploaded: inputsUploaded) { return problem }
        if let problem = artifactsProblem() { return problem }
        if let repo, let problem = Self.repoProblem(repo) { return problem }
        if let ref {
            if repo == nil { return "ref goes with repo: it names the commit of the repository to check out" }
            if let problem = Self.refProblem(ref) { return problem }
        }
        return nil
    }

    func inputsProblem(inputsUploaded: Bool) -> String? {
        let given = inputs ?? [], blobs = inputBlobs ?? []
        for (name, count) in [("inputs", given.count), ("inputBlobs", blobs.count)] where count > BlobLimits.maxInputsPerTask {
            return "\(count) \(name); a task may have at most \(BlobLimits.maxInputsPerTask)"
        }
        for (index, text) in given.enumerated() {
            if text.isEmpty { return "input \(index + 1) is empty (want SRC[:DEST])" }
            if text.utf8.contains(0) { return "input \(index + 1) contains a NUL byte" }
            if text.utf8.count > Self.maxInputTextBytes {
                return "input \(index + 1) is \(text.utf8.count) bytes; the limit is \(Self.maxInputTextBytes)"
            }
        }
        if inputsUploaded && !given.isEmpty && blobs.count != given.count {
            return "\(given.count) inputs but \(blobs.count) uploaded (inputBlobs): submit inputs through a client that uploads them (swarm submit --input)"
        }
        for blob in blobs {
            if let problem = BlobHash.problem(with: blob.sha256) { return "input \(Self.shown(blob.dest)): \(problem)" }
            if let problem = Self.relativePathProblem(blob.dest) { return "input destination: \(problem)" }
            if blob.size < 0 { return "input \(Self.shown(blob.dest)) has a negative size" }
        }
        return Self.overlapProblem(blobs.map(\.dest))
    }

    /// Two inputs at one DEST, or one inside another, would unpack into each other. With `/`
    /// read as the lowest byte (dests hold no NUL), sorting puts a path's descendants right
    /// after it: comparing neighbours finds every overlap in O(n log n).
    static func overlapProblem(_ dests: [String]) -> String? {
        let keys = dests.map { Array($0.utf8).map { $0 == UInt8(ascii: "/") ? 0 : $0 } }.sorted { $0.lexicographicallyPrecedes($1) }
        for (a, b) in zip(keys, keys.dropFirst()) where b.starts(with: a) && (b.count == a.count || b[a.count] == 0) {
            let shownA = Self.shown(String(decoding: a.map { $0 == 0 ? UInt8(ascii: "/") : $0 }, as: UTF8.self))
            if a == b { return "two inputs have the destination \(shownA)" }
            let shownB = Self.shown(String(decoding: b.map { $0 == 0 ? UInt8(ascii: "/") : $0 }, as: UTF8.self))
            return "input destinations \(shownA) and \(shownB) overlap (one is inside the other)"
        }
        return nil
    }

    func artifactsProblem() -> String? {
        let patterns = artifacts ?? []
        if patterns.count > BlobLimits.maxArtifactPatterns {
            return "\(patterns.count) artifact patterns; a task may have at most \(BlobLimits.maxArtifactPatterns)"
        }
        for pattern in patterns {
            if pattern.isEmpty { return "an artifact pattern is empty" }
            if pattern.utf8.contains(0) { return "an artifact pattern contains a NUL byte" }
            if pattern.utf8.count > BlobLimits.maxPathBytes {
                return "an artifact pattern is \(pattern.utf8.count) bytes; the limit is \(BlobLimits.maxPathBytes)"
            }
            if pattern.hasPrefix("/") {
                return "artifact pattern \(Self.shown(pattern)) is absolute; patterns are relative to the task's directory"
            }
            if pattern.split(separator: "/").contains("..") {
                return "artifact pattern \(Self.shown(pattern)) has a '..' component: artifacts come from inside the task's directory"
            }
        }
        return nil
    }

    /// Nil when `path` is absolute, has no NUL and is at most `maxWorkPathBytes` bytes.
    static func absolutePathProblem(_ path: String, what: String) -> String? {
        if path.utf8.contains(0) { return "\(what) contains a NUL byte" }
        if path.utf8.count > maxWorkPathBytes { return "\(what) is \(path.utf8.count) bytes; the limit is \(maxWorkPathBytes)" }
        if !path.hasPrefix("/") { return "\(what) must be an absolute path, got \(Self.shown(path))" }
        return nil
    }

    /// Nil when `path` is a safe path inside a task's directory: not empty, not absolute, no
    /// empty, `.` or `..` component, no NUL, at most `BlobLimits.maxPathBytes` bytes, no
    /// component over `maxComponentBytes` (the rule `Archive.destProblem` applies).
    public static func relativePathProblem(_ path: String) -> String? {
        if path.isEmpty { return "empty path" }
        if path.utf8.count > BlobLimits.maxPathBytes { return "path is over \(BlobLimits.maxPathBytes) bytes" }
        if path.utf8.contains(0) { return "path contains a NUL byte" }
        if path.hasPrefix("/") { return "absolute path \(Self.shown(path))" }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "empty component in \(Self.shown(path))" }
            if component == "." || component == ".." { return "'\(component)' component in \(Self.shown(path))" }
            if component.utf8.count > Self.maxComponentBytes {
                return "a component of \(Self.shown(path)) is over \(Self.maxComponentBytes) bytes"
            }
        }
        return nil
    }

    /// A repository: a URL or a path on the workers. A leading `-` would read as an option of
    /// `git clone`; control characters have no place in either.
    static func repoProblem(_ repo: String) -> String? {
        if repo.isEmpty { return "repo is empty" }
        if repo.utf8.contains(0) { return "repo contains a NUL byte" }
        if repo.utf8.count > maxWorkPathBytes { return "repo is \(repo.utf8.count) bytes; the limit is \(maxWorkPathBytes)" }
        if repo.hasPrefix("-") { return "repo \(Self.shown(repo)) starts with '-'" }
        if repo.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return "repo contains a control character" }
        return nil
    }

    /// A sane git ref (a branch, tag, commit, or a revision like `main~2`): 1 to
    /// `maxRefBytes` bytes, no whitespace or control character, no `..`, no leading `-`, none
    /// of `: ? * [ \` and no `@{` (git refuses them in ref names; `:` would make a refspec).
    static func refProblem(_ ref: String) -> String? {
        let quoted = Self.shown(ref)
        if ref.isEmpty { return "ref is empty" }
        if ref.utf8.count > maxRefBytes { return "ref is \(ref.utf8.count) bytes; the limit is \(maxRefBytes)" }
        if ref.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) || ref.contains(where: \.isWhitespace) {
            return "ref \(quoted) contains whitespace or a control character"
        }
        if ref.hasPrefix("-") { return "ref \(quoted) starts with '-'" }
        if ref.contains("..") { return "ref \(quoted) contains '..'" }
        if ref.contains(where: { ":?*[\\".contains($0) }) || ref.contains("@{") {
            return "ref \(quoted) contains a character git refuses in refs (: ? * [ \\ or @{)"
        }
        return nil
    }

    /// `text` in quotes, control characters escaped and cut (it may come from a peer).
    static func shown(_ text: String) -> String { "'\(PeerText.safe(text, limit: 200))'" }
}
