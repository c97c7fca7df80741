import Foundation
import SwarmArchive
import SwarmProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Where blobs go and come from: the scheduler (`SwarmClient`), or a test's fake.
public protocol BlobTransport: AnyObject {
    /// Uploads the file at `path` (hash and size computed by the caller); returns once the
    /// scheduler holds the blob.
    func uploadBlob(file path: String, sha256: String, size: Int64) throws(ClientError)
    /// Downloads blob `sha256` to `path` (through `path.part`, size and hash checked).
    func downloadBlob(_ sha256: String, size: Int64, to path: String) throws(ClientError)
}

/// One distinct input source of a submit, packed (`Archive.pack`) into a scratch file.
public struct PackedInput: Equatable, Sendable {
    /// The source's absolute path: one pack per path, however many tasks name it.
    public var absolute: String
    public var file: String
    public var sha256: String
    public var size: Int64
}

/// The inputs of one submit (one task, or every task of a `--file`): resolves each
/// `SRC[:DEST]` (`InputSource`), packs each distinct SRC once into a scratch file, fills the
/// specs' `inputBlobs`, refuses a task whose packed inputs exceed `maxBytesPerTask` before
/// anything is uploaded, then uploads each blob once. `remove()` (or deinit) deletes the
/// scratch files; a signal that stops the process deletes them too (`ScratchDirectory`).
public final class InputUploads {
    /// Packs `source` into a new file `archivePath`, at most `maxBytes`: `Archive.pack`.
    public typealias Packer = (_ source: String, _ archivePath: String, _ maxBytes: Int64) throws -> (sha256: String, size: Int64)

    public let maxBytesPerTask: Int64
    private let cwd: String
    private let exists: (String) -> Bool
    private let pack: Packer
    private var scratch: ScratchDirectory?
    private var resolved: [String: InputSource] = [:]
    private var byPath: [String: Int] = [:]
    /// Every distinct source packed so far, in the order first named.
    public private(set) var packed: [PackedInput] = []

    /// `cwd`: the directory relative SRCs start from (the current one, also for `--file`).
    public init(maxBytesPerTask: Int64 = BlobLimits.defaultInputBytesPerTask, cwd: String,
                exists: @escaping (String) -> Bool = InputUploads.pathExists, pack: @escaping Packer) {
        self.maxBytesPerTask = maxBytesPerTask
        self.cwd = cwd
        self.exists = exists
        self.pack = pack
    }

    deinit { remove() }

    /// `specs` with every `inputs` entry resolved, packed and listed in `inputBlobs` (`inputs`
    /// kept as given). `label(i)` names task `i` in errors (nil: a lone task). Throws the
    /// first problem: a missing SRC, an invalid DEST, a source that cannot be packed, a task
    /// over `maxBytesPerTask`. Nothing is uploaded here.
    public func prepare(_ specs: [TaskSpec], label: (Int) -> String? = { _ in nil }) throws(TaskOptionsError) -> [TaskSpec] {
        var out = specs
        for (index, spec) in specs.enumerated() {
            if let repo = spec.repo, let absolute = Self.absoluteLocalRepo(repo, cwd: cwd) { out[index].repo = absolute }
            guard let inputs = spec.inputs, !inputs.isEmpty else { continue }
            let prefix = label(index).map { "\($0): " } ?? ""
            var blobs: [InputRef] = []
            var total: Int64 = 0
            for text in inputs {
                let source: InputSource
                do { source = try resolve(text) } catch { throw TaskOptionsError(prefix + error.description) }
                let blob = try packOnce(source, prefix: prefix)
                blobs.append(InputRef(dest: source.dest, sha256: blob.sha256, size: blob.size))
                total += blob.size
            }
            if total > maxBytesPerTask {
                throw TaskOptionsError("\(prefix)the inputs pack to \(total) bytes; the limit per task is \(maxBytesPerTask) (\(maxBytesPerTask >> 20) MiB, --max-input-mb)")
            }
            out[index].inputBlobs = blobs
            // DESTs that collide, and the rest of the spec, as the scheduler will check them.
            if let problem = out[index].problem() { throw TaskOptionsError(prefix + problem) }
        }
        return out
    }

    /// `repo` as an absolute path when it is a relative path naming a directory here: the
    /// workers would read it against their own working directory. URLs (`scheme://`), scp-like
    /// `host:path` and absolute paths are left as they are.
    static func absoluteLocalRepo(_ repo: String, cwd: String) -> String? {
        guard !repo.hasPrefix("/"), !repo.contains("://") else { return nil }
        if let colon = repo.firstIndex(of: ":"), !repo[..<colon].contains("/") { return nil }
        let path = URL(fileURLWithPath: repo, relativeTo: URL(fileURLWithPath: cwd, isDirectory: true)).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return path
    }

    /// Uploads every packed source, each once, in the order first named.
    public func upload(via transport: BlobTransport) throws(ClientError) {
        for blob in packed { try transport.uploadBlob(file: blob.file, sha256: blob.sha256, size: blob.size) }
    }

    /// Deletes the scratch files (the scheduler holds what was uploaded).
    public func remove() {
        scratch?.remove()
        scratch = nil
    }

    private func resolve(_ text: String) throws(TaskOptionsError) -> InputSource {
        if let known = resolved[text] { return known }
        let source = try InputSource.parse(text, cwd: cwd, exists: exists)
        resolved[text] = source
        return source
    }

    private func packOnce(_ source: InputSource, prefix: String) throws(TaskOptionsError) -> PackedInput {
        if let index = byPath[source.absolute] { return packed[index] }
        if scratch == nil { scratch = try ScratchDirectory() }
        let file = scratch!.file(packed.count)
        let result: (sha256: String, size: Int64)
        do { result = try pack(source.absolute, file, maxBytesPerTask) } catch {
            unlink(file)
            throw TaskOptionsError("\(prefix)cannot pack input \(InputSource.shown(source.source)): \(error)")
        }
        byPath[source.absolute] = packed.count
        packed.append(PackedInput(absolute: source.absolute, file: file, sha256: result.sha256, size: result.size))
        return packed[packed.count - 1]
    }

    /// `Archive.pack`: the packer of every real submit.
    public static func archivePack(_ source: String, _ archive: String, _ maxBytes: Int64) throws -> (sha256: String, size: Int64) {
        try Archive.pack(source: source, to: archive, maxBytes: maxBytes)
    }

    /// Whether `path` exists, a link itself counting (never followed).
    public static func pathExists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// The process's current directory.
    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return cText(buffer)
    }
}

/// A NUL-terminated C buffer's text.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The scheduler moves the blobs of real submits and fetches (`SwarmClient+Blobs.swift`).
extension SwarmClient: BlobTransport {}
