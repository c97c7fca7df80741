import Foundation
import Testing

/// The `--repo` case across hosts: scheduler, two workers and the client each in a network
/// namespace of its own (`NetnsHarness`), talking over a bridge with a cluster token; the
/// bare repository on a path all of them can read (under /tmp). Skipped, saying why, where
/// the machine does not allow `ip netns`.
@Suite(.serialized) struct WorkspaceNetnsTests {
    @Test(.enabled(if: NetnsHarness.available, "needs `ip netns` (root) and git"))
    func agentsOnSeparateHostsBringTheirBranchesBackToTheClientsHost() throws {
        guard WorkspaceFixtures.missingTools(["git"]).isEmpty else {
            print("skipped agentsOnSeparateHostsBringTheirBranchesBackToTheClientsHost: git not on PATH")
            return
        }
        let processes = try ProcessHarness()
        let net = try NetnsHarness(hosts: 4, processes: processes)
        defer { net.cleanup() }
        let (schedulerHost, clientHost) = (net.hosts[0], net.hosts[3])
        let tokenFile = "\(processes.dir)/token"
        try "netns-test-secret\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)

        let scheduler = try net.start("scheduler", on: schedulerHost, [
            "scheduler", "--listen", "\(schedulerHost.address):0", "--state-dir", "\(processes.dir)/state",
            "--token-file", tokenFile, "--lost-after", "5",
        ])
        let line = try #require(scheduler.waitForLine(containing: "listening on"), "scheduler did not report its address")
        let address = String(try #require(line.split(separator: " ").last))
        #expect(address.hasPrefix(schedulerHost.address + ":"))
        for (i, host) in net.hosts[1...2].enumerated() {
            try net.start("worker-\(i + 1)", on: host, [
                "worker", "--scheduler", address, "--slots", "1", "--name", "w\(i + 1)",
                "--data-dir", "\(processes.dir)/w\(i + 1)", "--token-file", tokenFile,
            ])
        }
        let swarm = { (arguments: [String]) throws -> ProcessHarness.RunResult in
            try net.run(on: clientHost, arguments + ["--scheduler", address, "--token-file", tokenFile])
        }
        try Self.waitForWorkers(count: 2, swarm)

        // The client host reaches the scheduler, not the workers' loopback: the hosts are apart.
        let loopback = try net.run(on: clientHost, ["nodes", "--scheduler", "127.0.0.1:\(address.split(separator: ":").last!)",
                                                    "--token-file", tokenFile])
        #expect(loopback.status == 2, "the client's loopback reached a scheduler: \(loopback.stdout)")

        let bare = "\(processes.dir)/origin.git"
        let base = try WorkspaceFixtures.makeBareRepository(at: bare)
        let nodes = try GitAgents.run(bare: bare, dir: processes.dir, swarm)
        #expect(nodes == ["w1", "w2"], "the agents ran on \(nodes)")
        try GitAgents.fetchAndMerge(bare: bare, base: base, dir: processes.dir, swarm)
    }

    /// Waits (bounded) until `count` workers are connected and ready.
    static func waitForWorkers(count: Int, _ swarm: ([String]) throws -> ProcessHarness.RunResult) throws {
        for _ in 0..<300 {
            let r = try swarm(["nodes", "--json"])
            if r.status == 0, let nodes = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
               nodes.filter({ $0["state"] as? String == "ready" && $0["connected"] as? Bool == true }).count == count {
                return
            }
            usleep(50_000)
        }
        Issue.record("\(count) workers did not register")
    }
}
