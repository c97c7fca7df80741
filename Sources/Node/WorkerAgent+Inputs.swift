import Foundation
import SwarmArchive
import SwarmProtocol
import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// Inputs of pipeline tasks: the blob cache's directives carried out (fetch, check, evict),
/// then each input unpacked at its DEST in the task directory before the process exists.
extension WorkerAgent {
    func requestInputs(_ entry: PipelineTask) {
        guard workspace.blobs != nil else {
            return pipelineEvent(entry, .prepared(.inputs, problem: "worker \(config.name) cannot fetch inputs (no blob transfers)", nowMs: clocks.monotonic()))
        }
        if !workspace.blobsDirMade {
            do { try Files.makeDirectories(workspace.blobsDir) } catch {
                return pipelineEvent(entry, .prepared(.inputs, problem: "worker \(config.name) cannot make its blob cache: \(error)", nowMs: clocks.monotonic()))
            }
            workspace.blobsDirMade = true
        }
        let blobs = (entry.task.spec.inputBlobs ?? []).map { (sha256: $0.sha256, size: $0.size) }
        applyCache(workspace.cache.request(entry.run, blobs))
    }

    func applyCache(_ directives: [BlobCacheIndex.Directive]) {
        for directive in directives {
            switch directive {
            case .fetch(let sha256, let size): fetchBlob(sha256, size: size)
            case .verify(let sha256, let size):
                verifyBlob(sha256, size: size)
            case .evict(let sha256):
                workspace.freshBlobs[sha256] = nil
                unlink(workspace.blobPath(sha256))
            case .ready(let run):
                guard let entry = workspace.tasks[run.id], entry.run == run else {
                    applyCache(workspace.cache.release(run))
                    continue
                }
                // The first run handed a blob fetched for it counts its bytes; the others were served from the cache.
                for input in entry.task.spec.inputBlobs ?? [] {
                    if let bytes = workspace.freshBlobs.removeValue(forKey: input.sha256) { entry.core.inputBytesFetched += bytes }
                }
                // Off the loop (a large input takes a while to write); its blobs stay pinned until it is done.
                let inputs = (entry.task.spec.inputBlobs ?? []).map { ($0, workspace.blobPath($0.sha256)) }
                let root = entry.plan.workDir, worker = config.name
                workspace.offLoop(loop, { Self.unpackInputs(inputs, into: root, worker: worker) }) { [weak self, entry] problem in
                    guard let self else { return }
                    self.applyCache(self.workspace.cache.release(run))
                    self.pipelineEvent(entry, .prepared(.inputs, problem: problem, nowMs: self.clocks.monotonic()))
                }
            case .failed(let run, let sha256, let reason):
                guard let entry = workspace.tasks[run.id], entry.run == run else { continue }
                pipelineEvent(entry, .prepared(.inputs, problem: inputProblem(entry, sha256, reason), nowMs: clocks.monotonic()))
            }
        }
    }

    private func fetchBlob(_ sha256: String, size: Int64) {
        let path = workspace.blobPath(sha256)
        do { try Files.makeDirectories((path as NSString).deletingLastPathComponent) } catch {
            return applyCache(workspace.cache.fetched(sha256, problem: "cannot make the cache directory: \(error)"))
        }
        guard let blobs = workspace.blobs else {
            return applyCache(workspace.cache.fetched(sha256, problem: "no blob transfers"))
        }
        blobs.fetch(sha256, size: size, to: path) { [weak self] problem in
            guard let self else { return }
            if problem == nil { self.workspace.freshBlobs[sha256] = size }
            self.applyCache(self.workspace.cache.fetched(sha256, problem: problem))
        }
    }

    /// A blob found on disk at start: its bytes must still be its name. If not, it is
    /// deleted and fetched again.
    private func verifyBlob(_ sha256: String, size: Int64) {
        let path = workspace.blobPath(sha256)
        workspace.offLoop(loop, { () -> Bool in
            if case .success(let (hash, actual)) = ArtifactCollector.hashFile(path), hash == sha256, actual == size { return true }
            return false
        }) { [weak self] intact in
            guard let self else { return }
            if intact { return self.applyCache(self.workspace.cache.fetched(sha256, problem: nil)) }
            self.logger.warning("cached blob \(sha256) is damaged; fetching it again")
            unlink(path)
            self.fetchBlob(sha256, size: size)
        }
    }

    /// `input DEST (sha256 ab12…) could not be fetched from the scheduler to worker W: why`.
    private func inputProblem(_ entry: PipelineTask, _ sha256: String?, _ reason: String) -> String {
        guard let sha256 else { return "inputs cannot be placed on worker \(config.name): \(reason)" }
        let dests = (entry.task.spec.inputBlobs ?? []).filter { $0.sha256 == sha256 }.map(\.dest).joined(separator: ", ")
        return "input \(PeerText.safe(dests, limit: 300)) (sha256 \(sha256.prefix(12))…) could not be fetched from the scheduler to worker \(config.name): \(reason)"
    }

    /// Every input, from the cache into `root/DEST` (staged and renamed by `Archive.unpack`:
    /// never a partial input at DEST). A DEST left by an earlier attempt in the same task
    /// directory is removed first. Nil, or why the run cannot start. Runs off the loop.
    private static func unpackInputs(_ inputs: [(InputRef, String)], into root: String, worker: String) -> String? {
        guard ArtifactCollector.isRealDirectory(root) else {
            return "inputs cannot be placed on worker \(worker): the task's directory \(PeerText.safe(root, limit: 300)) is not a directory (links are not followed)"
        }
        for (input, blobPath) in inputs {
            let dest = "\(root)/\(input.dest)"
            var info = stat()
            if lstat(dest, &info) == 0 {
                // Only through real directories: a link left in the directory must not point the removal elsewhere.
                guard parentsAreDirectories(of: input.dest, in: root) else {
                    return "input \(PeerText.safe(input.dest, limit: 300)) cannot be placed on worker \(worker): a parent of it is not a directory"
                }
                do { try FileManager.default.removeItem(atPath: dest) } catch {
                    return "input \(PeerText.safe(input.dest, limit: 300)) cannot replace what an earlier attempt left on worker \(worker): \(error.localizedDescription)"
                }
            }
            do {
                // An archive is not compressed: what it unpacks to is at most its own size.
                try Archive.unpack(blobPath, into: root, dest: input.dest, maxBytes: input.size)
            } catch {
                return "input \(PeerText.safe(input.dest, limit: 300)) (sha256 \(input.sha256.prefix(12))…) could not be unpacked on worker \(worker): \(error)"
            }
        }
        return nil
    }

    /// Removes the inputs unpacked at `dests` in `root`, only through real directories (a
    /// link the task left must not point the removal elsewhere); what cannot go stays.
    /// Runs off the loop.
    static func removeInputCopies(_ dests: [String], in root: String) -> Int {
        var removed = 0
        // The task may have replaced its own directory by a link: nothing is removed through it.
        guard ArtifactCollector.isRealDirectory(root) else { return 0 }
        for dest in dests where Archive.destProblem(dest) == nil && parentsAreDirectories(of: dest, in: root) {
            if (try? FileManager.default.removeItem(atPath: "\(root)/\(dest)")) != nil { removed += 1 }
        }
        return removed
    }

    private static func parentsAreDirectories(of dest: String, in root: String) -> Bool {
        var path = root
        for part in dest.split(separator: "/").dropLast() {
            path += "/" + part
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return false }
        }
        return true
    }

    /// At start: the blobs a previous worker process left in the cache (hashed again before
    /// their first use), oldest first for eviction; transfers cut short (`.part`) are removed.
    func scanBlobCache() {
        guard let top = opendir(workspace.blobsDir) else { return }
        defer { closedir(top) }
        var found: [(sha256: String, size: Int64, mtime: Int)] = []
        while let entry = readdir(top) {
            let prefix = Self.entryName(entry)
            guard prefix.utf8.count == 2 else { continue }
            let dir = "\(workspace.blobsDir)/\(prefix)"
            guard let handle = opendir(dir) else { continue }
            while let file = readdir(handle) {
                let name = Self.entryName(file)
                var info = stat()
                guard name != ".", name != "..", lstat("\(dir)/\(name)", &info) == 0 else { continue }
                if BlobHash.problem(with: name) == nil, name.hasPrefix(prefix), info.st_mode & S_IFMT == S_IFREG {
                    found.append((name, Int64(info.st_size), info.st_mtim.tv_sec))
                } else if info.st_mode & S_IFMT == S_IFREG {
                    unlink("\(dir)/\(name)")
                }
            }
            closedir(handle)
        }
        workspace.blobsDirMade = true
        var directives: [BlobCacheIndex.Directive] = []
        for (order, blob) in found.sorted(by: { $0.mtime < $1.mtime }).enumerated() {
            directives += workspace.cache.found(blob.sha256, size: blob.size, lastUse: UInt64(order))
        }
        applyCache(directives)
        if !found.isEmpty { logger.info("blob cache: \(found.count) blob(s), \(workspace.cache.usedBytes) bytes kept from before") }
    }

    private static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
