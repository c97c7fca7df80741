import Foundation
import Testing
import SwarmBench

/// `swarm bench` as users run it: real scheduler and worker processes started by the bench.
@Suite(.serialized) struct BenchEndToEndTests {
    @Test func quickSpawnBenchWritesReportsAndLosesNothing() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let result = try harness.run(["bench", "spawn", "--quick", "--tasks", "40", "--concurrency", "8", "--out", "out"],
                                     timeout: 120)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let dir = harness.dir + "/out/latest"
        let data = try #require(FileManager.default.contents(atPath: dir + "/report.json"))
        let report = try JSONDecoder().decode(BenchReport.self, from: data)
        #expect(report.schema == "swarm-bench/1")
        #expect(report.passed && report.lostTasks == 0 && report.duplicatedTasks == 0)
        #expect(report.cluster.mode == "local" && report.cluster.totalSlots == 8)
        // Durable by default, as users run `swarm scheduler`; the report says so.
        #expect(report.cluster.durable == true)
        let spawn = try #require(report.workloads.first { $0.name == "spawn" })
        let batch = try #require(spawn.runs.first { $0.label == "run 1" })
        #expect(batch.tasks == 40 && batch.succeeded == 40)
        #expect(batch.submitToStart?.count == 40)
        #expect(batch.workersCpuMs != nil && batch.schedulerPeakRssMiB ?? 0 > 0)
        #expect(spawn.baselines.first { $0.tool == "xargs" }?.runs.first?.succeeded == 40)
        // The same batch through the real CLI (`swarm submit --file`, `swarm wait`) as child
        // processes: every task ran once and succeeded, and it has its own target.
        let cli = try #require(report.workloads.first { $0.name == "spawn-cli" })
        let cliRun = try #require(cli.runs.first { $0.label == "run 1" })
        #expect(cli.parameters["submit"] == "cli" && cli.parameters["concurrency"] == "8")
        #expect(cliRun.tasks == 40 && cliRun.succeeded == 40 && cliRun.lost == 0 && cliRun.duplicated == 0)
        #expect(cliRun.submitToStart?.count == 40 && cliRun.workersCpuMs != nil)
        #expect(report.targets.contains { $0.name.hasPrefix("spawn through the CLI") && $0.measured != "-" })
        // A `parallel` that is not GNU parallel is skipped with its reason, never timed.
        if let parallel = spawn.baselines.first(where: { $0.tool == "parallel" }), !parallel.available {
            #expect(parallel.runs.isEmpty && parallel.throughput == nil && parallel.problem != nil)
        }
        #expect(report.processes.contains { $0.role == "scheduler" })
        for name in ["report.md", "report.html"] {
            #expect((try? String(contentsOfFile: dir + "/" + name, encoding: .utf8))?.isEmpty == false, "\(name) empty")
        }
        #expect(result.stdout.contains("report.json"))
    }

    @Test func benchAgainstAnExistingClusterReadsItsProcessesFromStats() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let (_, address) = try ClusterEndToEndTests.schedulerAndWorker(harness, slots: 4)
        // The parallel part (2 x 1 s sleeps, then xargs) outlasts a heartbeat, which carries the worker's figures.
        let result = try harness.run(["bench", "spawn", "parallel", "agent", "--quick", "--tasks", "12", "--parallel-tasks", "2",
                                      "--parallel-sleep", "1", "--wide-tasks", "0", "--scheduler", address, "--out", "remote"],
                                     timeout: 120)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let data = try #require(FileManager.default.contents(atPath: harness.dir + "/remote/latest/report.json"))
        let report = try JSONDecoder().decode(BenchReport.self, from: data)
        #expect(report.cluster.mode == "remote" && report.cluster.workers == 1 && report.cluster.totalSlots == 4)
        let spawn = try #require(report.workloads.first { $0.name == "spawn" })
        #expect(spawn.runs.first?.succeeded == 12)
        #expect(spawn.baselines.first { $0.tool == "xargs" }?.command.contains("-P 4") == true)
        // Heartbeats carry the worker's figures, stats the scheduler's.
        #expect(report.processes.contains { $0.role == "scheduler" && $0.peakRssMiB > 0 })
        #expect(report.processes.contains { $0.name == "w" && $0.role == "worker" })
        // The worker has no synthetic runtime: the agent workload says so and passes.
        let agent = try #require(report.workloads.first { $0.name == "agent" })
        #expect(agent.passed && agent.runs.isEmpty)
        #expect(agent.notes.contains { $0.contains("skipped") })
        #expect(report.limitations.contains { $0.contains("Remote cluster") })
    }

    /// `swarm bench workspace` in a tiny shape: every phase reports, nothing is lost, and the
    /// byte counts agree with each other (not timings).
    @Test func tinyWorkspaceBenchReportsEveryPhaseAndLosesNothing() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let result = try harness.run(["bench", "workspace", "--quick", "--input-mib", "2", "--fanout-tasks", "6",
                                      "--fanout-input-mib", "1", "--worktree-tasks", "3", "--repo-files", "30",
                                      "--artifact-tasks", "3", "--out", "out"], timeout: 180)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        let data = try #require(FileManager.default.contents(atPath: harness.dir + "/out/latest/report.json"))
        let report = try JSONDecoder().decode(BenchReport.self, from: data)
        #expect(report.passed && report.lostTasks == 0 && report.duplicatedTasks == 0)
        #expect(report.workloads.map(\.name) == ["workspace"])
        let workload = try #require(report.workloads.first)
        let w = try #require(workload.workspace)
        // Transfer: one input up, through a real task and the client back down, all measured.
        let input = try #require(w.inputBytes)
        #expect(input > 2_000_000 && input <= 2 << 20)
        #expect(w.uploadMs != nil && w.downloadMs != nil && w.clientDownloadMs != nil && w.copyMs != nil && w.packMs != nil)
        #expect(w.downloadBytesFetched == input, "a new blob: the task's worker fetched all of it")
        #expect(w.roundTripMiBps != nil)
        // Fan-out: the scheduler's counters and the tasks' own agree, and no worker got the input twice.
        let fanoutInput = try #require(w.fanoutInputBytes)
        let sent = try #require(w.fanoutBytesToWorker)
        #expect(w.fanoutTasks == 6 && w.fanoutNaiveBytes == 6 * fanoutInput)
        #expect(!sent.isEmpty && sent.values.allSatisfy { $0 <= fanoutInput })
        #expect(sent.values.reduce(0, +) >= fanoutInput)
        #expect(sent.filter { $0.value > 0 } == (w.fanoutFetchedByWorker ?? [:]).filter { $0.value > 0 })
        // Worktrees: measured, or (without GitWorkspace in this build) said to be missing.
        #expect(w.worktreeTasks == 3 && w.repoFiles == 30)
        #expect(w.worktreePrepare?.count == 3 || workload.notes.contains { $0.contains("worktrees: not measured") })
        // Artifacts: every file back, each task's collection timed.
        #expect(w.artifactsExpected == 30 && w.artifactsCollected == 30)
        #expect(w.collect?.count == 3)
        #expect(workload.runs.count == 4 && workload.runs.allSatisfy { $0.lost == 0 && $0.duplicated == 0 })
        let names = report.targets.map(\.name)
        #expect(names.contains { $0.hasPrefix("input upload+download") } && names.contains { $0.hasPrefix("fan-out of 6 tasks") }
                && names.contains { $0.hasPrefix("worktree p50") })
        #expect(report.targets.first { $0.name.hasPrefix("fan-out") }?.met == true)
        let markdown = try String(contentsOfFile: harness.dir + "/out/latest/report.md", encoding: .utf8)
        #expect(markdown.contains("Work in, work out") && markdown.contains("upload + download (target figure)"))
    }

    @Test func badInvocationsGetOneClearLineAndANonZeroExit() throws {
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let unknown = try harness.run(["bench", "nosuch"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("unknown workload 'nosuch'"))
        let both = try harness.run(["bench", "spawn", "--durable", "--in-memory"])
        #expect(both.status == 64 && both.stderr.contains("--durable and --in-memory exclude each other"), "stderr: \(both.stderr)")
        let steps = try harness.run(["bench", "scale", "--scale-steps", "5,x"])
        #expect(steps.status == 64 && steps.stderr.contains("--scale-steps"))
        let noCluster = try harness.run(["bench", "spawn", "--quick", "--scheduler", "127.0.0.1:1", "--out", "out"], timeout: 60)
        #expect(noCluster.status == 1)
        #expect(noCluster.stderr.contains("127.0.0.1:1"), "stderr: \(noCluster.stderr)")
    }
}
