import Foundation
import Testing

/// A small tmpfs for disk-full tests, mounted on a new directory of its own (never over
/// anything that exists). `fill()` takes every free byte with a filler file, `free()` gives
/// them back. `unmount()` (call it in a `defer`, after the processes using it are stopped)
/// unmounts it, lazily if it is still busy, and removes the directory.
///
/// Mount points carry this process's pid (`swarm-tmpfs-<pid>-<tag>`), so ones left by a test
/// process that died (kill -9) are unmounted by the next one made on this machine.
final class TmpfsMount: @unchecked Sendable {
    let path: String
    var fillerPath: String { path + "/filler" }

    static let namePrefix = "swarm-tmpfs-"

    /// Why this machine cannot mount a tmpfs (not root, no mount(8)), or nil when it can.
    /// Probed once per test process.
    static let unavailableReason: String? = probe()

    /// Whether tests may mount; prints the reason once when they may not.
    static var available: Bool {
        if let reason = unavailableReason {
            print("TmpfsMount: disk-full tests skipped: \(reason)")
            return false
        }
        return true
    }

    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel).
    init(bytes: Int) throws {
        Self.removeLeftovers()
        path = NSTemporaryDirectory() + "\(Self.namePrefix)\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        do {
            try Self.command("mount", ["-t", "tmpfs", "-o", "size=\(bytes),mode=0755", "tmpfs", path])
        } catch {
            rmdir(path)
            throw error
        }
    }

    /// Writes the filler file until the file system refuses with ENOSPC; returns its size.
    /// Bounded by `limit` bytes in case the mount is not the small one it should be.
    @discardableResult
    func fill(limit: Int = 1 << 30) throws -> Int {
        let fd = open(fillerPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MountError(description: "cannot create \(fillerPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x78, count: 4096)
        var written = 0
        while written < limit {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            guard n < 0, errno == ENOSPC else { throw MountError(description: "filling \(path): \(String(cString: strerror(errno)))") }
            return written
        }
        throw MountError(description: "\(path) took \(limit) bytes without filling up")
    }

    /// Gives back `bytes` of the filler (all of it by default).
    func free(bytes: Int? = nil) {
        guard let bytes else { unlink(fillerPath); return }
        var info = stat()
        guard stat(fillerPath, &info) == 0 else { return }
        truncate(fillerPath, max(0, off_t(info.st_size) - off_t(bytes)))
    }

    /// Bytes free on the mount.
    var freeBytes: Int64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return -1 }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Idempotent.
    func unmount() {
        Self.unmount(path)
    }

    private static func unmount(_ path: String) {
        guard isMountPoint(path) else { rmdir(path); return }
        if (try? command("umount", [path])) == nil {
            // Still busy (a process we could not stop): detach it now, it goes when they do.
            Issue.record("tmpfs \(path) was busy at unmount; detached lazily")
            _ = try? command("umount", ["-l", path])
        }
        rmdir(path)
    }

    static func isMountPoint(_ path: String) -> Bool {
        mountPoints().contains(path)
    }

    static func mountPoints() -> [String] {
        let text = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count > 1 ? String(fields[1]) : nil
        }
    }

    /// Unmounts tmpfs mounts of earlier test processes that are gone.
    static func removeLeftovers() {
        let base = NSTemporaryDirectory() + namePrefix
        for point in mountPoints() where point.hasPrefix(base) {
            let digits = point.dropFirst(base.count).prefix { $0.isNumber }
            guard let pid = Int32(digits), pid > 1, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? command("umount", ["-l", point])
            rmdir(point)
        }
    }

    struct MountError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs mount(8) or umount(8) (bounded: killed after 10 s); throws its stderr when it fails.
    @discardableResult
    static func command(_ name: String, _ arguments: [String]) throws -> String {
        guard let path = ["/usr/bin/\(name)", "/bin/\(name)", "/usr/sbin/\(name)", "/sbin/\(name)"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw MountError(description: "no \(name)(8) program found")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output: CapturedRun.Output
        do { output = try CapturedRun.run(process, timeout: 10) } catch { throw MountError(description: "cannot run \(path): \(error)") }
        guard output.status == 0 else {
            let text = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw MountError(description: "\(name) \(arguments.joined(separator: " ")): \(text.isEmpty ? "exit status \(output.status)" : text)")
        }
        return output.stdout
    }

    /// Mounts and unmounts a 1 MiB tmpfs: what `init` needs.
    private static func probe() -> String? {
        do {
            let probe = try TmpfsMount(bytes: 1 << 20)
            probe.unmount()
            return nil
        } catch {
            return "\(error) (mounting a tmpfs needs root or CAP_SYS_ADMIN)"
        }
    }
}
