import ArgumentParser
import Foundation
import SwarmClient
import SwarmProtocol

struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch", abstract: "Download a task's artifacts (hashes checked), or its git branch with --git.",
        usage: """
            swarm fetch ID [-o DIR] [PATH...]
            swarm fetch ID --git [--into DIR]
            """,
        discussion: """
            Exit status: 0 every file (or the branch) fetched; 1 nothing to fetch (the task has not ended, \
            has no artifacts, some were skipped on its worker, or it made no commits); 2 a failure (unknown \
            task or PATH, a path that would escape DIR, a transfer, git).
            """)

    @OptionGroup var client: ClientOptions
    @Option(name: [.short, .long], help: ArgumentHelp("Directory to write the artifacts into (made when missing; default: the current directory).", valueName: "DIR"))
    var output: String?
    @Flag(help: "Fetch the task's git bundle into a local repository as branch swarm/ID.")
    var git = false
    @Option(help: ArgumentHelp("With --git: the local repository (default: the current directory).", valueName: "DIR"))
    var into: String?
    @Argument(help: "Task id.")
    var id: String
    @Argument(help: "Artifact paths to fetch (as 'swarm status ID' lists them); default: all.")
    var paths: [String] = []

    func validate() throws {
        if let problem = TaskID.problem(with: id) { throw ValidationError(problem) }
        if git {
            if output != nil { throw ValidationError("--git writes into a repository: use --into DIR, not -o") }
            if !paths.isEmpty { throw ValidationError("--git takes no PATH") }
        } else if into != nil {
            throw ValidationError("--into goes with --git (artifacts go to -o DIR)")
        }
    }

    func run() throws {
        do {
            if git { try fetchBranch() } else { try fetchFiles() }
        } catch let error as FetchError {
            // Nothing to fetch is how the task went, not a failure of the command (README).
            if error.status == 1 { printOutcome(error.description) } else { printError(error.description) }
            throw ExitCode(error.status)
        }
    }

    private func fetchFiles() throws {
        let dir = output ?? "."
        try runClient {
            let client = try client.client()
            let info = try client.status(id)
            let items = try ArtifactFetch.plan(info, paths: paths, into: dir)
            try ArtifactFetch.fetch(items, into: dir, via: client) { item in
                printLine(ArtifactFetch.fetchedLine(item))
            }
            // Everything uploaded came; what the worker skipped did not.
            if paths.isEmpty, let skipped = info.skippedArtifacts, !skipped.isEmpty {
                for skip in skipped { printOutcome("not uploaded by the worker: \(PeerText.safe(skip.path)): \(PeerText.safe(skip.reason))") }
                throw ExitCode(1)
            }
        }
    }

    private func fetchBranch() throws {
        let dir = into ?? "."
        let repository = GitCommand(directory: dir)
        try runClient {
            let client = try client.client()
            let info = try client.status(id)
            let bundle = try ArtifactFetch.bundle(of: info)
            guard repository.isRepository() else {
                throw FetchError("\(dir) is not a git repository (fetch --git adds branch swarm/\(id) to one; --into DIR)")
            }
            if let base = info.git?.base, !repository.hasCommit(base) {
                throw FetchError("\(dir) does not have commit \(base.prefix(12)), the base of swarm/\(id): fetch the repository the task ran on into it first")
            }
            let scratch: ScratchDirectory
            do { scratch = try ScratchDirectory() } catch { throw FetchError("\(error)") }
            defer { scratch.remove() }
            let file = scratch.file(0)
            do { try client.downloadBlob(bundle.sha256, size: bundle.size, to: file) } catch {
                throw FetchError("git bundle of task \(id): \(error)")
            }
            let branch = "swarm/\(id)"
            try repository.fetch(bundle: file, refspec: "\(branch):\(branch)")
            let commits = info.git.map { ", \($0.commits) commit\($0.commits == 1 ? "" : "s"), head \($0.head.prefix(12))" } ?? ""
            printLine("\(branch) fetched into \(dir)\(commits)")
        }
    }
}

/// `git -C DIR ...` for `swarm fetch --git`: each call waits for git and returns its outcome.
struct GitCommand {
    let directory: String

    func isRepository() -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else { return false }
        return run(["rev-parse", "--git-dir"]).status == 0
    }

    func hasCommit(_ sha: String) -> Bool {
        run(["cat-file", "-e", "\(sha)^{commit}"]).status == 0
    }

    /// `git fetch BUNDLE REFSPEC`; throws git's last line of stderr when it fails.
    func fetch(bundle: String, refspec: String) throws {
        let result = run(["fetch", "--quiet", bundle, refspec])
        guard result.status == 0 else {
            let last = result.stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(result.status)"
            throw FetchError("git fetch of the bundle into \(directory) failed: \(PeerText.safe(last))")
        }
    }

    /// Runs git with stdin closed; stdout dropped, stderr kept (git's messages are short).
    func run(_ arguments: [String]) -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch { return (127, "cannot run git: \(error.localizedDescription)") }
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
