import SwarmProtocol

/// One `--input SRC[:DEST]` (an `inputs` entry of a `--file` line), resolved on the
/// submitting machine: the file or directory `source` is placed at `dest` inside the task's
/// directory.
///
/// Where SRC ends: paths may hold colons, so the text is split at its LAST colon only when
/// the part after it is a valid DEST (a relative path inside the task's directory:
/// `TaskSpec.relativePathProblem`) and the whole text, colon included, is not an existing
/// path. Otherwise the whole text is SRC. DEST defaults to SRC's base name (of its absolute
/// form, so `.` is the current directory's name). A relative SRC is relative to the current
/// directory, in a `--file` too.
public struct InputSource: Equatable, Sendable {
    /// SRC as given.
    public var source: String
    /// SRC made absolute and normalized (no `.`, `..` or repeated `/`): the key one source is
    /// packed under, once for every task naming it.
    public var absolute: String
    public var dest: String

    public init(source: String, absolute: String, dest: String) {
        self.source = source; self.absolute = absolute; self.dest = dest
    }

    /// Resolves `text`. `exists` tells whether a path exists (without following a last link);
    /// `cwd` is the directory relative paths start from. Throws one sentence naming the input
    /// when SRC does not exist or no valid DEST can be had.
    public static func parse(_ text: String, cwd: String, exists: (String) -> Bool) throws(TaskOptionsError) -> InputSource {
        if text.isEmpty { throw TaskOptionsError("an input is empty (want SRC[:DEST])") }
        if text.utf8.contains(0) { throw TaskOptionsError("input \(shown(text)) contains a NUL byte") }
        if exists(absolutePath(text, cwd: cwd)) { return try whole(text, cwd: cwd) }
        if let colon = text.lastIndex(of: ":") {
            let source = String(text[..<colon]), dest = String(text[text.index(after: colon)...])
            if !source.isEmpty {
                let sourceExists = exists(absolutePath(source, cwd: cwd))
                if let problem = TaskSpec.relativePathProblem(dest) {
                    // The text meant SRC:DEST (its SRC exists), with a DEST that cannot be.
                    if sourceExists {
                        throw TaskOptionsError("input \(shown(text)): DEST must be a relative path inside the task's directory (\(problem))")
                    }
                } else {
                    guard sourceExists else { throw TaskOptionsError("input \(shown(source)) does not exist") }
                    return InputSource(source: source, absolute: absolutePath(source, cwd: cwd), dest: dest)
                }
            }
        }
        throw TaskOptionsError("input \(shown(text)) does not exist")
    }

    /// The whole text is SRC; DEST is its base name.
    private static func whole(_ text: String, cwd: String) throws(TaskOptionsError) -> InputSource {
        let absolute = absolutePath(text, cwd: cwd)
        guard let base = absolute.split(separator: "/").last.map(String.init) else {
            throw TaskOptionsError("input \(shown(text)) has no base name to place it at: give SRC:DEST")
        }
        if let problem = TaskSpec.relativePathProblem(base) {
            throw TaskOptionsError("input \(shown(text)): its base name cannot be a DEST (\(problem)): give SRC:DEST")
        }
        return InputSource(source: text, absolute: absolute, dest: base)
    }

    /// `path` made absolute against `cwd`, with `.`, `..` and repeated or trailing `/` taken
    /// out by text (no links resolved: `..` after a link climbs the text, like a shell's `cd`).
    public static func absolutePath(_ path: String, cwd: String) -> String {
        let full = path.hasPrefix("/") ? path : cwd + "/" + path
        var parts: [Substring] = []
        for component in full.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { _ = parts.popLast(); continue }
            parts.append(component)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func shown(_ text: String) -> String { "'\(PeerText.safe(text, limit: 200))'" }
}
