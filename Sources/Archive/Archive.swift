import Foundation
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Packs a file or directory into a swarm archive (`ArchiveFormat`) and unpacks one into a
/// task's directory. Both sides check every path: nothing is written outside the destination,
/// nothing is written through a link, and a link pointing out of the input is refused.
public enum Archive {
    /// Packs `source` (a regular file or a directory, recursively) into a new file at
    /// `archivePath`; deterministic (sorted, no times or owners: the same tree gives the same
    /// hash). Symlinks are stored as links (their target text), never followed; a link whose
    /// target is absolute or climbs out of `source` is refused. Only files, directories and
    /// links are packed: a socket, fifo or device is refused with its path. `maxBytes` bounds
    /// the archive's size. Returns its hash and size.
    public static func pack(source: String, to archivePath: String, maxBytes: Int64) throws(ArchiveError) -> (sha256: String, size: Int64) {
        var st = stat()
        guard lstat(source, &st) == 0 else { throw ArchiveError("cannot read \(source): \(errnoText())") }
        let writer = try ArchiveSink(path: archivePath, maxBytes: maxBytes)
        do throws(ArchiveError) {
            switch st.st_mode & S_IFMT {
            case S_IFREG: try writer.file(path: "", fullPath: source, mode: UInt32(st.st_mode), size: Int64(st.st_size))
            case S_IFDIR: try packDirectory(source, writer: writer)
            case S_IFLNK: throw ArchiveError("\(source) is a symbolic link: give the file or directory it points to")
            default: throw ArchiveError("\(source) is not a regular file or directory")
            }
            return try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Unpacks the archive at `archivePath` into `root/dest`, which must not exist yet. Stages
    /// in a hidden directory of `root` and renames at the end, so a partial unpack is never at
    /// `dest`. Every entry is checked again here: no absolute path, no `.` or `..`, nothing
    /// through a link, no link out of the input; `maxBytes` bounds the bytes written and
    /// `ArchiveFormat.maxEntries` the entries. Existing parents of `dest` inside `root` must be
    /// real directories (not links), so a repository's link cannot redirect the unpack.
    public static func unpack(_ archivePath: String, into root: String, dest: String, maxBytes: Int64) throws(ArchiveError) {
        if let problem = destProblem(dest) { throw ArchiveError("input destination: \(problem)") }
        let target = "\(root)/\(dest)"
        var st = stat()
        if lstat(target, &st) == 0 { throw ArchiveError("input destination \(dest) already exists in the task's directory") }
        try makeParents(of: dest, in: root)
        let staging = "\(root)/.swarm-unpack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let source = try ArchiveSource(path: archivePath)
        defer { source.close() }
        do throws(ArchiveError) {
            try ArchiveUnpacker(source: source, staging: staging, maxBytes: maxBytes).run()
            guard rename(staging, target) == 0 else { throw ArchiveError("cannot place input at \(dest): \(errnoText())") }
        } catch {
            removeTree(staging)
            throw error
        }
    }

    /// Nil when `dest` is a safe relative path inside a task's directory (not empty, not
    /// absolute, no `.` or `..` component, no NUL, at most `BlobLimits.maxPathBytes` bytes),
    /// else why not.
    public static func destProblem(_ dest: String) -> String? {
        if dest.isEmpty { return "empty path" }
        return ArchiveFormat.entryPathProblem(dest)
    }

    /// Walks `root` depth first in sorted order, packing every entry under its relative path.
    private static func packDirectory(_ root: String, writer: ArchiveSink) throws(ArchiveError) {
        var st = stat()
        _ = lstat(root, &st)
        try writer.directory(path: "", mode: UInt32(st.st_mode))
        var links: [String: String] = [:]
        var pending: [String] = [""]
        while let relative = pending.popLast() {
            let full = relative.isEmpty ? root : "\(root)/\(relative)"
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: full) } catch {
                throw ArchiveError("cannot list \(full): \(error.localizedDescription)")
            }
            // Sorted by bytes so the archive does not depend on the file system's order;
            // children pushed in reverse so they pop in order.
            var children: [String] = []
            for name in names.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                let childRelative = relative.isEmpty ? name : "\(relative)/\(name)"
                let childFull = "\(root)/\(childRelative)"
                if let problem = ArchiveFormat.entryPathProblem(childRelative) { throw ArchiveError("\(root): \(problem)") }
                guard lstat(childFull, &st) == 0 else { throw ArchiveError("cannot read \(childFull): \(errnoText())") }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    try writer.directory(path: childRelative, mode: UInt32(st.st_mode))
                    children.append(childRelative)
                case S_IFREG:
                    try writer.file(path: childRelative, fullPath: childFull, mode: UInt32(st.st_mode), size: Int64(st.st_size))
                case S_IFLNK:
                    let target = try readLink(childFull)
                    if let problem = ArchiveFormat.linkTargetProblem(path: childRelative, target: target) {
                        throw ArchiveError("\(root): \(problem)")
                    }
                    links[childRelative] = target
                    try writer.link(path: childRelative, target: target)
                default:
                    throw ArchiveError("\(childFull) is not a regular file, directory or link")
                }
            }
            // Depth first, siblings in byte order: every directory comes before what it holds,
            // and the order depends only on the names (what `ArchiveFormat` promises).
            pending.append(contentsOf: children.reversed())
        }
        if let problem = ArchiveLinks.problem(links) { throw ArchiveError("\(root): \(problem)") }
    }

    static func readLink(_ path: String) throws(ArchiveError) -> String {
        var buffer = [CChar](repeating: 0, count: BlobLimits.maxPathBytes + 1)
        let n = readlink(path, &buffer, buffer.count)
        guard n >= 0, n <= BlobLimits.maxPathBytes else { throw ArchiveError("cannot read link \(path)") }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates the directories leading to `dest` inside `root`, refusing a component that
    /// exists and is not a real directory.
    static func makeParents(of dest: String, in root: String) throws(ArchiveError) {
        let components = dest.split(separator: "/").dropLast()
        var path = root
        var st = stat()
        for component in components {
            path += "/\(component)"
            if lstat(path, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFDIR else {
                    throw ArchiveError("input destination \(dest): \(path) exists and is not a directory (links are not followed)")
                }
            } else if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw ArchiveError("cannot create \(path): \(errnoText())")
            }
        }
    }

    /// Removes a tree this process created (staging), without following links.
    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// The rule for links as a set: besides each pointing inside the input (checked one by one),
/// no link's target may pass through another link of the input, where a lexical check could
/// be fooled (`a -> d/up/..` with `d/up -> ..` climbs out).
enum ArchiveLinks {
    static func problem(_ links: [String: String]) -> String? {
        for (path, target) in links.sorted(by: { $0.key < $1.key }) {
            var stack = path.split(separator: "/").dropLast().map(String.init)
            let components = target.split(separator: "/", omittingEmptySubsequences: true)
            for (index, component) in components.enumerated() where component != "." {
                if component == ".." { _ = stack.popLast(); continue }
                stack.append(String(component))
                // The last component may be a link (each link was checked from its own place);
                // an intermediate one may not.
                if index < components.count - 1, links[stack.joined(separator: "/")] != nil {
                    return "link \(PeerText.safe(path, limit: 200)) points through another link (\(PeerText.safe(stack.joined(separator: "/"), limit: 200)))"
                }
            }
        }
        return nil
    }
}
