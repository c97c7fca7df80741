#if canImport(Glibc)
import Glibc
#endif
import SwarmProtocol
import SwarmTransport

/// The scheduler's blobs on disk: `ROOT/<aa>/<sha256>` (held: hash checked, file and
/// directory fsynced) and `ROOT/tmp/` (uploads in progress, removed at startup). Loop thread;
/// the slow step of an upload (`makeDurable`) is handed to a background thread by the caller.
final class BlobStore {
    let root: String
    /// Removed with everything in it by `close` (a scheduler without a state dir).
    let ephemeral: Bool
    private var heldSizes: [String: Int64] = [:]
    private var tempCounter = 0

    /// Opens (making it if needed) the store at `root` and empties its `tmp`.
    init(root: String, ephemeral: Bool = false) throws(BlobFileError) {
        self.root = root
        self.ephemeral = ephemeral
        try BlobStore.makePath(root)
        BlobStore.removeTree(root + "/tmp")
        try BlobFile.makeDirectory(root + "/tmp")
    }

    /// A private store in a new temporary directory, removed by `close`.
    static func temporary() throws(BlobFileError) -> BlobStore {
        let base = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/swarm-blobs-XXXXXX"
        var template = Array(base.utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buf in
            guard let p = mkdtemp(buf.baseAddress!) else { return nil }
            return String(cString: p)
        }
        guard let made else { throw BlobFileError(base, errno) }
        return try BlobStore(root: made, ephemeral: true)
    }

    func path(of sha256: String) -> String { "\(root)/\(sha256.prefix(2))/\(sha256)" }

    /// The size of a held blob, nil when it is not held. `sha256` must be well formed.
    func heldSize(_ sha256: String) -> Int64? {
        if let size = heldSizes[sha256] { return size }
        guard BlobHash.problem(with: sha256) == nil, let size = BlobFile.size(path(of: sha256)) else { return nil }
        heldSizes[sha256] = size
        return size
    }

    /// The store's file system: bytes free to an unprivileged writer and its size (nil when
    /// `statvfs` fails: then no offer is refused for space, and a full disk is a write error).
    func disk() -> BlobExchange<Int>.Disk? {
        var info = statvfs()
        guard statvfs(root, &info) == 0 else { return nil }
        let unit = Int64(info.f_frsize)
        return .init(free: Int64(info.f_bavail) * unit, total: Int64(info.f_blocks) * unit)
    }

    /// Deletes a held blob's file (retention: no kept task names it any more). Returns its
    /// size, nil when it was not held. A download in progress keeps its open file.
    func remove(_ sha256: String) -> Int64? {
        guard BlobHash.problem(with: sha256) == nil, let size = heldSize(sha256) else { return nil }
        heldSizes[sha256] = nil
        return unlink(path(of: sha256)) == 0 ? size : nil
    }

    /// A new temporary file for an upload of `sha256`.
    func writer(for sha256: String, size: Int64) throws(BlobFileError) -> BlobWriter {
        tempCounter += 1
        return try BlobWriter(tempPath: "\(root)/tmp/\(sha256).\(getpid()).\(tempCounter)", sha256: sha256, size: size)
    }

    /// The final path's directory, made if needed (with the store's root fsynced then).
    func prepareFinal(_ sha256: String) throws(BlobFileError) -> String {
        let dir = "\(root)/\(sha256.prefix(2))"
        if try BlobFile.makeDirectory(dir), let problem = BlobFile.syncDirectory(root) { throw BlobFileError(problem) }
        return path(of: sha256)
    }

    /// Records that `makeDurable` put the blob in place.
    func didStore(_ sha256: String, size: Int64) { heldSizes[sha256] = size }

    /// Stores the empty blob (synchronously: nothing to sync but one entry).
    func storeEmpty() throws(BlobFileError) {
        let sha = BlobExchange<Int>.emptyHash
        if heldSize(sha) != nil { return }
        let writer = try self.writer(for: sha, size: 0)
        let fd = try writer.seal()
        let final = try prepareFinal(sha)
        if let problem = BlobFile.makeDurable(fd: fd, temp: writer.tempPath, final: final) { throw BlobFileError(problem) }
        didStore(sha, size: 0)
    }

    /// Opens a held blob for reading.
    func openForReading(_ sha256: String) throws(BlobFileError) -> Int32 {
        let p = path(of: sha256)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BlobFileError(p, errno) }
        return fd
    }

    /// Removes an ephemeral store's directory.
    func close() {
        if ephemeral { BlobStore.removeTree(root) }
    }

    private static func makePath(_ path: String) throws(BlobFileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw BlobFileError(current, errno) }
        }
    }

    /// `rm -r` of a directory of plain files and directories (what this store makes).
    static func removeTree(_ path: String) {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
                if name == "." || name == ".." { continue }
                let child = path + "/" + name
                if entry.pointee.d_type == UInt8(DT_DIR) { removeTree(child) } else { unlink(child) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}
