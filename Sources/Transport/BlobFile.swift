#if canImport(Glibc)
import Glibc
#endif
import SwarmProtocol

/// A blob being received into a temporary file: bytes appended in order and hashed as they
/// come. `seal` checks size and hash; `BlobFile.makeDurable` then fsyncs and renames it into
/// place. Nothing partial is ever at the final path.
public final class BlobWriter {
    public let tempPath: String
    public let sha256: String
    public let size: Int64
    public private(set) var written: Int64 = 0
    private var fd: Int32
    private var hasher = BlobHash.Hasher()

    /// Creates (or truncates) `tempPath`.
    public init(tempPath: String, sha256: String, size: Int64) throws(BlobFileError) {
        self.tempPath = tempPath
        self.sha256 = sha256
        self.size = size
        fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BlobFileError(tempPath, errno) }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Appends `bytes`; refuses more than `size` in all.
    public func append(_ bytes: [UInt8]) throws(BlobFileError) {
        guard written + Int64(bytes.count) <= size else {
            throw BlobFileError("\(written + Int64(bytes.count)) bytes received for a blob of \(size)")
        }
        let failure: Int32? = bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; return errno }
                done += n
            }
            hasher.update(raw)
            return nil
        }
        if let failure { throw BlobFileError(tempPath, failure) }
        written += Int64(bytes.count)
    }

    /// Checks that every byte came and the hash matches. Returns the open descriptor, now
    /// owned by the caller (for `BlobFile.makeDurable`); the writer is done.
    public func seal() throws(BlobFileError) -> Int32 {
        guard written == size else { throw BlobFileError("\(written) of \(size) bytes received") }
        let got = hasher.finalize()
        guard got == sha256 else { throw BlobFileError("the bytes received hash to \(got), not \(sha256)") }
        let handed = fd
        fd = -1
        return handed
    }

    /// Closes and removes the temporary file.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
    }
}

/// What went wrong with a blob file: one line.
public struct BlobFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
    public init(_ path: String, _ code: Int32) { description = "\(path): \(String(cString: strerror(code)))" }
}

/// Blocking steps on blob files (run off the loop thread where they may be slow).
public enum BlobFile {
    /// fsync `fd` (then closes it), rename `temp` to `final`, fsync `final`'s directory: after
    /// this the blob survives a power cut. `fd` is closed in every case; `temp` removed on failure.
    public static func makeDurable(fd: Int32, temp: String, final: String) -> String? {
        defer { close(fd) }
        func failed(_ path: String, _ code: Int32) -> String {
            unlink(temp)
            return BlobFileError(path, code).description
        }
        if fsync(fd) != 0 { return failed(temp, errno) }
        if rename(temp, final) != 0 { return failed(final, errno) }
        let dir = final.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if let problem = syncDirectory(dir.isEmpty ? "." : dir) { return problem }
        return nil
    }

    /// Closes `fd` and renames `temp` to `final`, with no fsync: for a CACHE whose every entry
    /// is hash-checked again before its first use after a restart (a worker's blob cache), so a
    /// power cut can leave a damaged entry, never a wrong input. Measured here (release, a
    /// 256 MiB input): the two fsyncs were a quarter of a worker's fetch + unpack time.
    /// `temp` removed on failure.
    public static func place(fd: Int32, temp: String, final: String) -> String? {
        close(fd)
        guard rename(temp, final) == 0 else {
            let problem = BlobFileError(final, errno).description
            unlink(temp)
            return problem
        }
        return nil
    }

    /// fsync a directory, so an entry made in it (a rename) is durable.
    public static func syncDirectory(_ path: String) -> String? {
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return BlobFileError(path, errno).description }
        defer { close(dfd) }
        return fsync(dfd) == 0 ? nil : BlobFileError(path, errno).description
    }

    /// Makes `path` (one level; its parent must exist). Whether it was created now.
    @discardableResult
    public static func makeDirectory(_ path: String) throws(BlobFileError) -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        if errno == EEXIST { return false }
        throw BlobFileError(path, errno)
    }

    /// The size of the regular file at `path`, nil when there is none.
    public static func size(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    /// Reads up to `count` bytes at `offset` of the open `fd`: exactly `count` unless the file
    /// is shorter (then an error: a held blob never shrinks).
    public static func read(fd: Int32, offset: Int64, count: Int, path: String) throws(BlobFileError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        let failure: String? = out.withUnsafeMutableBytes { raw in
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; return BlobFileError(path, errno).description }
                if n == 0 { return "\(path): ends at \(offset + Int64(done)) bytes, \(count - done) short" }
                done += n
            }
            return nil
        }
        if let failure { throw BlobFileError(failure) }
        return out
    }
}
