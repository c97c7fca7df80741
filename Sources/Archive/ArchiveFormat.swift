import SwarmProtocol

/// Why an archive cannot be made or unpacked: one line for the person, naming the path.
public struct ArchiveError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The byte layout of a swarm archive (an input blob). Deterministic: the same tree always
/// gives the same bytes, so the same input is the same blob however often it is submitted.
///
///     magic   "SWARMPK1"                         8 bytes
///     entry*  kind (1 byte: d, f, l)
///             mode (4 bytes, big-endian; permission bits 0o777 only)
///             path length (4 bytes BE), path (UTF-8, relative, "/"-separated; "" = the root)
///             size (8 bytes BE): file bytes or link target bytes, 0 for a directory
///             data (size bytes)
///     end     kind "e"                           1 byte
///
/// Entries are sorted by path bytes, so a directory comes before what it holds. No times,
/// owners or other metadata: they would change the hash without changing the work.
public enum ArchiveFormat {
    public static let magic: [UInt8] = Array("SWARMPK1".utf8)
    public static let headerFixedBytes = 1 + 4 + 4 + 8
    /// Entries one archive may hold: a bound on the work a hostile archive can ask for.
    public static let maxEntries = 1_000_000

    public enum Kind: UInt8, Sendable {
        case directory = 0x64  // d
        case file = 0x66       // f
        case link = 0x6C       // l
        case end = 0x65        // e
    }

    /// One entry's header (its data follows it in the stream).
    public struct Header: Equatable, Sendable {
        public var kind: Kind
        public var mode: UInt32
        public var path: String
        public var size: Int64
        public init(kind: Kind, mode: UInt32, path: String, size: Int64) {
            self.kind = kind; self.mode = mode; self.path = path; self.size = size
        }

        /// The header's bytes.
        public func encoded() -> [UInt8] {
            let pathBytes = Array(path.utf8)
            var out: [UInt8] = [kind.rawValue]
            out.reserveCapacity(ArchiveFormat.headerFixedBytes + pathBytes.count)
            appendBE(UInt64(mode & 0o777), bytes: 4, to: &out)
            appendBE(UInt64(pathBytes.count), bytes: 4, to: &out)
            out += pathBytes
            appendBE(UInt64(size), bytes: 8, to: &out)
            return out
        }
    }

    static func appendBE(_ value: UInt64, bytes: Int, to out: inout [UInt8]) {
        for shift in stride(from: (bytes - 1) * 8, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// Nil when `path` may name an entry inside an archive's root ("" is the root itself),
    /// else why not. Checked when packing and again, on the peer's bytes, when unpacking.
    public static func entryPathProblem(_ path: String) -> String? {
        // One rule for every relative path of work in and out (`TaskSpec.relativePathProblem`:
        // input DESTs at submit, entries here, unpacking on the worker).
        path.isEmpty ? nil : TaskSpec.relativePathProblem(path)
    }

    /// Nil when a link at `path` (inside the root) pointing at `target` stays inside the
    /// root, else why not. Absolute targets are refused: they mean another machine's tree.
    public static func linkTargetProblem(path: String, target: String) -> String? {
        if target.isEmpty { return "link \(PeerText.safe(path, limit: 200)) has an empty target" }
        if target.utf8.count > BlobLimits.maxPathBytes || target.utf8.contains(0) {
            return "link \(PeerText.safe(path, limit: 200)) has an invalid target"
        }
        if target.hasPrefix("/") { return "link \(PeerText.safe(path, limit: 200)) points to an absolute path" }
        // Depth below the root of the link's directory, then walk the target.
        var depth = path.split(separator: "/").count - 1
        if path.isEmpty { return "the root of an archive cannot be a link" }
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                depth -= 1
                if depth < 0 { return "link \(PeerText.safe(path, limit: 200)) points out of the input (\(PeerText.safe(target, limit: 200)))" }
            } else {
                depth += 1
            }
        }
        return nil
    }
}
