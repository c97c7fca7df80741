import Foundation

/// The `workspace` workload's test data and timing: random file trees, a git repository,
/// external commands.
enum WorkspaceData {
    /// Milliseconds `work` took (monotonic clock).
    static func timed(_ work: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try work()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
    }

    /// `files` files of random bytes (from /dev/urandom: incompressible, and new in every
    /// run, so no earlier blob matches) summing to `bytes`, in a new directory `path`.
    static func randomTree(at path: String, files: Int, bytes: Int64) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: path)
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else {
            throw BenchError.failed("cannot read /dev/urandom")
        }
        defer { try? random.close() }
        let count = Int64(max(1, files))
        for i in 0..<count {
            let size = bytes / count + (i < bytes % count ? 1 : 0)
            let file = "\(path)/part-\(i).bin"
            guard fm.createFile(atPath: file, contents: nil), let out = FileHandle(forWritingAtPath: file) else {
                throw BenchError.failed("cannot write \(file)")
            }
            defer { try? out.close() }
            var left = size
            while left > 0 {
                let piece = Int(min(left, 1 << 20))
                let data = try random.read(upToCount: piece) ?? Data()
                guard data.count == piece else { throw BenchError.failed("short read from /dev/urandom") }
                try out.write(contentsOf: data)
                left -= Int64(piece)
            }
        }
    }

    /// A bare git repository at `path.git` with one commit of `files` small files (100 per
    /// directory), made from a work tree at `path` that is removed after. Returns the bare path.
    static func repository(at path: String, files: Int) throws -> String {
        let fm = FileManager.default
        let bare = path + ".git"
        try? fm.removeItem(atPath: path)
        try? fm.removeItem(atPath: bare)
        for i in 0..<max(1, files) {
            let dir = "\(path)/d\(i / 100)"
            if i % 100 == 0 { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try Data("file \(i) of the bench repository\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/f\(i).txt"))
        }
        let git = ["git", "-c", "user.name=swarm bench", "-c", "user.email=bench@localhost", "-c", "init.defaultBranch=main"]
        try shell(git + ["init", "-q", path])
        try shell(git + ["-C", path, "add", "-A"])
        try shell(git + ["-C", path, "commit", "-q", "-m", "bench repository"])
        try shell(git + ["clone", "-q", "--bare", path, bare])
        try? fm.removeItem(atPath: path)
        return bare
    }

    /// Runs `args` (found on PATH), output discarded; throws unless it exits 0.
    static func shell(_ args: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch { throw BenchError.failed("cannot run \(args[0]): \(error)") }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw BenchError.failed("\(args.prefix(4).joined(separator: " ")) failed (exit \(process.terminationStatus)): \(text)")
        }
    }
}
