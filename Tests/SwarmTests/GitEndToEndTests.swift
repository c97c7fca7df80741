import Foundation
import Logging
import Testing
import SwarmClient
import SwarmCluster
import SwarmProtocol

/// `--repo` through a real scheduler and two workers (issue 11 item 4): fake agents commit in
/// their worktrees; each branch comes back as a `gitBundle` artifact the client downloads and
/// fetches into one clone of the original repository, with the right commits on each; the
/// worktrees are gone once the scheduler holds the results.
@Suite(.serialized) struct GitEndToEndTests {
    @Test func agentsOnTwoWorkersCommitOnTheirBranchesAndEveryBranchComesBack() throws {
        let fixture = GitFixture()
        let (cluster, client, dir) = try WorkspaceEndToEndTests.cluster(workers: 2)
        defer {
            #expect(cluster.stop().isEmpty)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let identity = "export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@a GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@a"
        var specs: [TaskSpec] = []
        for i in 0..<6 {
            // Even agents commit their work; odd ones leave it for the auto-commit.
            let work = i % 2 == 0 ? "git add agent\(i).txt && git commit -qm 'agent \(i)'" : "true"
            var spec = TaskSpec(id: "agent-\(i)", command: ["sh", "-c", "\(identity); echo \(i) > agent\(i).txt && \(work)"])
            spec.repo = fixture.origin
            specs.append(spec)
        }
        for spec in specs { _ = try client.submit(spec) }
        let infos = try client.wait(specs.map { $0.id! }, timeoutSeconds: 90)
        #expect(infos.count == 6)
        let clone = dir + "/merged"
        shell("git clone -q \(fixture.origin) \(clone)")
        let main = fixture.rev("main")
        for info in infos {
            #expect(info.state == .succeeded, "\(info.id): \(info.reason ?? "")")
            let i = Int(info.id.dropFirst("agent-".count))!
            let git = try #require(info.git)
            #expect(git.branch == "swarm/\(info.id)" && git.base == main && git.commits == 1)
            let bundle = try #require(info.artifacts?.first { $0.kind == "gitBundle" })
            #expect(bundle.path == "swarm-\(info.id).bundle")
            let path = "\(dir)/\(info.id).bundle"
            try client.downloadBlob(bundle.sha256, size: bundle.size, to: path)
            shell("git -C \(clone) fetch -q \(path) swarm/\(info.id):swarm/\(info.id)")
            #expect(shell("git -C \(clone) rev-parse swarm/\(info.id)") == git.head)
            let message = i % 2 == 0 ? "agent \(i)" : "uncommitted changes of task \(info.id)"
            #expect(shell("git -C \(clone) log --format=%s \(main)..swarm/\(info.id)") == message)
            #expect(shell("git -C \(clone) show swarm/\(info.id):agent\(i).txt") == "\(i)")
        }
        #expect(Set(infos.compactMap(\.node)).count == 2, "the tasks ran on both workers")
        // The scheduler holds every result: the worktrees go (bounded wait).
        let worktrees = { infos.filter { info in
            (try? FileManager.default.contentsOfDirectory(atPath: dir))?.contains { FileManager.default.fileExists(atPath: "\(dir)/\($0)/work/\(info.id)") } ?? false
        } }
        for _ in 0..<1_500 where !worktrees().isEmpty { usleep(20_000) }
        #expect(worktrees().isEmpty)
    }
}
