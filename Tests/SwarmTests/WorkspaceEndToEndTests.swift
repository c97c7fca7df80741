import Foundation
import Logging
import Testing
import SwarmArchive
import SwarmClient
import SwarmCluster
import SwarmProtocol

/// Work in and out through a real scheduler and workers (issue 11 items 1-3): an input packed
/// and uploaded by a client is unpacked in the task's directory before it starts, and the
/// artifact it writes comes back, listed in its status, with a hash the download verifies.
@Suite(.serialized) struct WorkspaceEndToEndTests {
    static func cluster(workers: Int = 2) throws -> (LocalCluster, SwarmClient, String) {
        let dir = NSTemporaryDirectory() + "swarm-workspace-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var options = LocalCluster.Options()
        options.workers = workers
        options.slots = 2
        options.dataDir = dir
        let cluster = try LocalCluster(options, logger: Logger(label: "test"))
        let client = try SwarmClient(address: cluster.address, token: nil)
        for _ in 0..<3_000 where (try client.listNodes()).count < workers { usleep(10_000) }
        return (cluster, client, dir)
    }

    @Test func anInputGoesInAndAnArtifactComesBack() throws {
        let (cluster, client, dir) = try Self.cluster()
        defer {
            #expect(cluster.stop().isEmpty)
            try? FileManager.default.removeItem(atPath: dir)
        }
        // The input: a directory with a small C-like "project".
        let source = dir + "/project"
        try FileManager.default.createDirectory(atPath: source + "/src", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: source + "/src/main.txt", contents: Data("int main() { return 0; }\n".utf8))
        let packed = try Archive.pack(source: source, to: dir + "/project.pack", maxBytes: 1 << 20)
        try client.uploadBlob(file: dir + "/project.pack", sha256: packed.sha256, size: packed.size)

        var specs: [TaskSpec] = []
        for i in 0..<4 {
            var spec = TaskSpec(id: "build-\(i)", command: ["sh", "-c", "mkdir -p out && wc -c < proj/src/main.txt > out/size.txt && echo \(i) >> out/size.txt"])
            spec.inputBlobs = [InputRef(dest: "proj", sha256: packed.sha256, size: packed.size)]
            spec.artifacts = ["out/*.txt", "missing/*"]
            specs.append(spec)
        }
        for spec in specs { _ = try client.submit(spec) }
        let infos = try client.wait(specs.map { $0.id! }, timeoutSeconds: 60)
        #expect(infos.count == 4)
        for (i, info) in infos.sorted(by: { $0.id < $1.id }).enumerated() {
            #expect(info.state == .succeeded, "\(info.id): \(info.reason ?? "")")
            let artifact = try #require(info.artifacts?.first)
            #expect(info.artifacts?.count == 1)
            #expect(artifact.path == "out/size.txt")
            let expected = Array("25\n\(i)\n".utf8)
            #expect(artifact.sha256 == BlobHash.of(expected) && artifact.size == Int64(expected.count))
            let back = dir + "/back-\(i).txt"
            try client.downloadBlob(artifact.sha256, size: artifact.size, to: back)
            #expect(FileManager.default.contents(atPath: back).map { Array($0) } == expected)
        }
    }

    @Test func aMissingWorkdirFailsTheRunNamingPathAndWorker() throws {
        let (cluster, client, dir) = try Self.cluster(workers: 1)
        defer {
            #expect(cluster.stop().isEmpty)
            try? FileManager.default.removeItem(atPath: dir)
        }
        var spec = TaskSpec(id: "wd", command: ["true"])
        spec.workdir = dir + "/not-there"
        _ = try client.submit(spec)
        let info = try #require(try client.wait(["wd"], timeoutSeconds: 30).first)
        #expect(info.state == .spawnFailed)
        #expect(info.reason?.hasPrefix("workdir \(dir)/not-there does not exist on worker ") == true)
    }
}
