import Foundation
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Writes an archive file, hashing as it goes; 1 MiB buffered writes.
final class ArchiveSink {
    private let path: String
    private let fd: Int32
    private let maxBytes: Int64
    private var hasher = BlobHash.Hasher()
    private var buffer: [UInt8] = []
    private var written: Int64 = 0
    private var entries = 0
    private static let bufferBytes = 1 << 20

    init(path: String, maxBytes: Int64) throws(ArchiveError) {
        self.path = path
        self.maxBytes = maxBytes
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveError("cannot create \(path): \(errnoText())") }
        buffer.reserveCapacity(Self.bufferBytes)
        try append(ArchiveFormat.magic)
    }

    func directory(path: String, mode: UInt32) throws(ArchiveError) {
        try entry(.init(kind: .directory, mode: mode, path: path, size: 0))
    }

    func link(path: String, target: String) throws(ArchiveError) {
        let bytes = Array(target.utf8)
        try entry(.init(kind: .link, mode: 0o777, path: path, size: Int64(bytes.count)))
        try append(bytes)
    }

    /// Copies the file at `fullPath`, which must still be `size` bytes when read (a file
    /// growing or shrinking while packed would give an archive that lies about it).
    func file(path: String, fullPath: String, mode: UInt32, size: Int64) throws(ArchiveError) {
        try entry(.init(kind: .file, mode: mode, path: path, size: size))
        let input = open(fullPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw ArchiveError("cannot read \(fullPath): \(errnoText())") }
        defer { close(input) }
        var remaining = size
        var chunk = [UInt8](repeating: 0, count: Self.bufferBytes)
        while remaining > 0 {
            let want = Int(min(Int64(chunk.count), remaining))
            let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress!, want) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError("\(fullPath) changed while it was packed (shorter than \(size) bytes)") }
            try append(chunk[0..<n])
            remaining -= Int64(n)
        }
        let extra = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress!, 1) }
        if extra > 0 { throw ArchiveError("\(fullPath) changed while it was packed (longer than \(size) bytes)") }
    }

    private func entry(_ header: ArchiveFormat.Header) throws(ArchiveError) {
        entries += 1
        if entries > ArchiveFormat.maxEntries { throw ArchiveError("input has more than \(ArchiveFormat.maxEntries) entries") }
        try append(header.encoded())
    }

    private func append(_ bytes: some Collection<UInt8>) throws(ArchiveError) {
        written += Int64(bytes.count)
        if written > maxBytes { throw ArchiveError("input is over the limit of \(maxBytes) bytes") }
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferBytes { try flush() }
    }

    private func flush() throws(ArchiveError) {
        hasher.update(buffer)
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + offset, buffer.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError("cannot write \(path): \(errnoText())") }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws(ArchiveError) -> (sha256: String, size: Int64) {
        try append([ArchiveFormat.Kind.end.rawValue])
        try flush()
        close(fd)
        return (hasher.finalize(), written)
    }

    /// Closes and removes a half-written archive.
    func abandon() {
        close(fd)
        unlink(path)
    }
}

/// Reads an archive file in 1 MiB blocks.
final class ArchiveSource {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var index = 0
    private var atEnd = false

    init(path: String) throws(ArchiveError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError("cannot read the input archive \(path): \(errnoText())") }
    }

    func close() { Glibc.close(fd) }

    /// Exactly `count` bytes, or an error naming a truncated archive.
    func bytes(_ count: Int) throws(ArchiveError) -> ArraySlice<UInt8> {
        while buffer.count - index < count {
            guard !atEnd else { throw ArchiveError("input archive is truncated") }
            if index > 0 { buffer.removeFirst(index); index = 0 }
            var chunk = [UInt8](repeating: 0, count: max(1 << 20, count))
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { atEnd = true; continue }
            buffer.append(contentsOf: chunk[0..<n])
        }
        defer { index += count }
        return buffer[index..<(index + count)]
    }

    /// Writes the next `count` bytes to `out`: what is buffered first, then the rest by
    /// `sendfile` (the kernel copies from the page cache: no trip through our memory; it reads
    /// from and advances our file offset), falling back to read/write where it cannot.
    /// Errors name `path`.
    func copy(_ count: Int64, to out: Int32, path: String) throws(ArchiveError) {
        var remaining = count
        let buffered = Int64(buffer.count - index)
        if buffered > 0 {
            let take = Int(min(buffered, remaining))
            try Self.writeAll(buffer[index..<(index + take)], to: out, path: path)
            index += take
            remaining -= Int64(take)
        }
        while remaining > 0 {
            let n = sendfile(out, fd, nil, Int(min(remaining, 1 << 30)))
            if n > 0 { remaining -= Int64(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n == 0 { throw ArchiveError("input archive is truncated") }
            guard errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP else {
                throw ArchiveError("cannot write \(path): \(errnoText())")
            }
            // Not supported between these files: through memory, 1 MiB at a time.
            while remaining > 0 {
                let piece = try bytes(Int(min(remaining, 1 << 20)))
                try Self.writeAll(piece, to: out, path: path)
                remaining -= Int64(piece.count)
            }
        }
    }

    private static func writeAll(_ piece: ArraySlice<UInt8>, to out: Int32, path: String) throws(ArchiveError) {
        var offset = piece.startIndex
        while offset < piece.endIndex {
            let n = piece[offset...].withUnsafeBytes { write(out, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError("cannot write \(path): \(errnoText())") }
            offset += n
        }
    }

    /// True when nothing follows what was read.
    func isExhausted() -> Bool {
        if index < buffer.count { return false }
        var one: UInt8 = 0
        return read(fd, &one, 1) <= 0
    }

    func integer(_ count: Int) throws(ArchiveError) -> UInt64 {
        var value: UInt64 = 0
        for byte in try bytes(count) { value = value << 8 | UInt64(byte) }
        return value
    }
}

/// Unpacks an archive's entries into a fresh staging directory, refusing anything unsafe.
struct ArchiveUnpacker {
    let source: ArchiveSource
    let staging: String
    let maxBytes: Int64

    func run() throws(ArchiveError) {
        guard Array(try source.bytes(ArchiveFormat.magic.count)) == ArchiveFormat.magic else {
            throw ArchiveError("input is not a swarm archive")
        }
        var total: Int64 = 0
        var entries = 0
        var kinds: [String: ArchiveFormat.Kind] = [:]
        var links: [String: String] = [:]
        while true {
            guard let kind = ArchiveFormat.Kind(rawValue: try source.bytes(1).first!) else {
                throw ArchiveError("input archive has an unknown entry kind")
            }
            if kind == .end { break }
            entries += 1
            if entries > ArchiveFormat.maxEntries { throw ArchiveError("input archive has over \(ArchiveFormat.maxEntries) entries") }
            let mode = UInt32(try source.integer(4)) & 0o777
            let pathLength = Int(try source.integer(4))
            guard pathLength <= BlobLimits.maxPathBytes else { throw ArchiveError("input archive has a path over \(BlobLimits.maxPathBytes) bytes") }
            let path = String(decoding: try source.bytes(pathLength), as: UTF8.self)
            let size = try source.integer(8)
            guard size <= UInt64(maxBytes), total + Int64(size) <= maxBytes else {
                throw ArchiveError("input unpacks to more than \(maxBytes) bytes")
            }
            total += Int64(size)
            try check(path: path, kind: kind, entries: entries, kinds: kinds)
            kinds[path] = kind
            let full = path.isEmpty ? staging : "\(staging)/\(path)"
            switch kind {
            case .directory:
                guard mkdir(full, mode | 0o700) == 0 else { throw ArchiveError("cannot create \(path): \(errnoText())") }
            case .file:
                try writeFile(full, mode: mode, size: Int64(size))
            case .link:
                let target = String(decoding: try source.bytes(Int(size)), as: UTF8.self)
                if let problem = ArchiveFormat.linkTargetProblem(path: path, target: target) { throw ArchiveError(problem) }
                links[path] = target
                guard symlink(target, full) == 0 else { throw ArchiveError("cannot create link \(path): \(errnoText())") }
            case .end:
                break
            }
        }
        guard entries > 0 else { throw ArchiveError("input archive is empty (no root entry)") }
        guard source.isExhausted() else { throw ArchiveError("input archive has bytes after its end") }
        if let problem = ArchiveLinks.problem(links) { throw ArchiveError(problem) }
    }

    /// The root comes first and alone decides file-or-directory; every other entry is new,
    /// its path valid, and its parent a directory entry seen before it (so never a link).
    private func check(path: String, kind: ArchiveFormat.Kind, entries: Int, kinds: [String: ArchiveFormat.Kind]) throws(ArchiveError) {
        if let problem = ArchiveFormat.entryPathProblem(path) { throw ArchiveError("input archive: \(problem)") }
        if entries == 1 {
            guard path.isEmpty, kind != .link else { throw ArchiveError("input archive does not start with its root") }
            return
        }
        guard !path.isEmpty, kinds[path] == nil else { throw ArchiveError("input archive names \(PeerText.safe(path, limit: 200)) twice") }
        let parent = path.split(separator: "/").dropLast().joined(separator: "/")
        guard kinds[parent] == .directory else {
            throw ArchiveError("input archive puts \(PeerText.safe(path, limit: 200)) under something that is not one of its directories")
        }
    }

    private func writeFile(_ full: String, mode: UInt32, size: Int64) throws(ArchiveError) {
        // O_EXCL | O_NOFOLLOW: never through a link, never over an existing entry.
        let fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode | 0o600))
        guard fd >= 0 else { throw ArchiveError("cannot create \(full): \(errnoText())") }
        defer { close(fd) }
        try source.copy(size, to: fd, path: full)
        // The mode as packed, not widened by the umask or narrowed by our 0o600.
        fchmod(fd, mode_t(mode))
    }
}
