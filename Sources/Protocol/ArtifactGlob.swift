/// One `--artifact` pattern, relative to the task's directory, matched path segment by path
/// segment (pure: no file system here; the worker's `ArtifactCollector` walks the directory;
/// submit checks patterns with `problem`).
///
/// - `*` any run of characters within one segment, `?` one character, `[abc]` `[a-z]` one of
///   a set (`[!...]` or `[^...]`: not of it), `\x` the character `x` itself.
/// - `**` as a whole segment: any number of segments (zero included); `a/**` matches
///   everything under `a`.
/// - Wildcards do not match a name starting with `.` unless the pattern's segment starts
///   with `.` itself (as in shells): `**/*.o` leaves `.git` and `.swarm` alone.
/// - Refused (`problem`): empty, absolute, a `.` or `..` segment, NUL, an unclosed `[`,
///   over `BlobLimits.maxPathBytes`.
public struct ArtifactGlob: Sendable, Equatable {
    public enum Segment: Sendable, Equatable {
        case anyDepth
        case name([Unicode.Scalar])
    }

    public let pattern: String
    public let segments: [Segment]

    /// Why `pattern` cannot be an artifact pattern, or nil.
    public static func problem(_ pattern: String) -> String? {
        let quoted = PeerText.safe(pattern, limit: 200)
        if pattern.isEmpty { return "artifact pattern is empty" }
        if pattern.utf8.count > BlobLimits.maxPathBytes { return "artifact pattern is over \(BlobLimits.maxPathBytes) bytes" }
        if pattern.utf8.contains(0) { return "artifact pattern \(quoted) contains a NUL byte" }
        if pattern.hasPrefix("/") { return "artifact pattern \(quoted) is absolute; patterns are relative to the task's directory" }
        for part in pattern.split(separator: "/", omittingEmptySubsequences: false) {
            if part == ".." { return "artifact pattern \(quoted) climbs out of the task's directory (..)" }
            if part == "." || part.isEmpty { return "artifact pattern \(quoted) has an empty or '.' segment" }
            if !bracketsClosed(Array(part.unicodeScalars)) { return "artifact pattern \(quoted) has an unclosed [" }
        }
        return nil
    }

    /// Nil when `problem(pattern)` is not nil.
    public init?(_ pattern: String) {
        guard Self.problem(pattern) == nil else { return nil }
        self.pattern = pattern
        var segments: [Segment] = []
        for part in pattern.split(separator: "/") {
            let segment: Segment = part == "**" ? .anyDepth : .name(Array(part.unicodeScalars))
            // `a/**/**/b` is `a/**/b`.
            if segment == .anyDepth, segments.last == .anyDepth { continue }
            segments.append(segment)
        }
        self.segments = segments
    }

    /// Whether the file at `path` (segments relative to the task directory) matches.
    public func matches(_ path: [Substring]) -> Bool {
        Self.match(segments[...], path[...], prefix: false)
    }

    /// Whether something below the directory at `path` could match: the walk descends only
    /// where this is true.
    public func mayMatchBelow(_ path: [Substring]) -> Bool {
        Self.match(segments[...], path[...], prefix: true)
    }

    /// `prefix`: `path` is a directory; true when the pattern's first segments match it all
    /// and at least one segment remains for what is below it.
    private static func match(_ pattern: ArraySlice<Segment>, _ path: ArraySlice<Substring>, prefix: Bool) -> Bool {
        guard let first = pattern.first else { return path.isEmpty && !prefix }
        switch first {
        case .anyDepth:
            // Zero segments, or one more (not a dot name) and still `**`.
            if prefix && path.isEmpty { return true }
            if match(pattern.dropFirst(), path, prefix: prefix) { return true }
            guard let head = path.first, !head.hasPrefix(".") else { return false }
            return match(pattern, path.dropFirst(), prefix: prefix)
        case .name(let scalars):
            guard let head = path.first else { return prefix }
            guard segmentMatches(scalars[...], Array(head.unicodeScalars)[...], atStart: true) else { return false }
            return match(pattern.dropFirst(), path.dropFirst(), prefix: prefix)
        }
    }

    /// One segment against one name. Backtracking on `*` only: linear in practice, and
    /// bounded by the 4 KiB pattern and name limits.
    private static func segmentMatches(_ pattern: ArraySlice<Unicode.Scalar>, _ name: ArraySlice<Unicode.Scalar>, atStart: Bool) -> Bool {
        var p = pattern, n = name
        // A leading dot is matched only by a literal dot.
        if atStart, n.first == ".", p.first != "." { return false }
        while let c = p.first {
            switch c {
            case "*":
                let rest = p.drop { $0 == "*" }
                if rest.isEmpty { return true }
                var tail = n
                while true {
                    if segmentMatches(rest, tail, atStart: false) { return true }
                    guard !tail.isEmpty else { return false }
                    tail = tail.dropFirst()
                }
            case "?":
                guard !n.isEmpty else { return false }
                p = p.dropFirst(); n = n.dropFirst()
            case "[":
                guard let ch = n.first, let (matched, rest) = bracket(p, ch), matched else { return false }
                p = rest; n = n.dropFirst()
            case "\\" where p.count > 1:
                let literal = p[p.index(after: p.startIndex)]
                guard n.first == literal else { return false }
                p = p.dropFirst(2); n = n.dropFirst()
            default:
                guard n.first == c else { return false }
                p = p.dropFirst(); n = n.dropFirst()
            }
        }
        return n.isEmpty
    }

    /// `[...]` at the start of `p` against `ch`: whether it matched, and the pattern after it.
    private static func bracket(_ p: ArraySlice<Unicode.Scalar>, _ ch: Unicode.Scalar) -> (Bool, ArraySlice<Unicode.Scalar>)? {
        var i = p.index(after: p.startIndex)
        var negate = false
        if i < p.endIndex, p[i] == "!" || p[i] == "^" { negate = true; i += 1 }
        var matched = false
        var first = true
        while i < p.endIndex {
            let c = p[i]
            if c == "]" && !first { return (matched != negate, p[(i + 1)...]) }
            first = false
            if i + 2 < p.endIndex, p[i + 1] == "-", p[i + 2] != "]" {
                if c.value <= ch.value && ch.value <= p[i + 2].value { matched = true }
                i += 3
            } else {
                if c == ch { matched = true }
                i += 1
            }
        }
        return nil
    }

    private static func bracketsClosed(_ s: [Unicode.Scalar]) -> Bool {
        var i = 0
        while i < s.count {
            if s[i] == "\\" { i += 2; continue }
            if s[i] == "[" {
                guard bracket(s[i...], "\0") != nil else { return false }
                // Skip to after the closing bracket.
                var j = i + 1
                if j < s.count, s[j] == "!" || s[j] == "^" { j += 1 }
                j += 1
                while j < s.count, s[j] != "]" { j += 1 }
                i = j + 1
                continue
            }
            i += 1
        }
        return true
    }
}
