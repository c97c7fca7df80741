import Foundation
import Testing
@testable import SwarmBench
import SwarmProtocol

@Suite struct BenchMeasureTests {
    private func info(_ id: String, state: TaskState = .succeeded, attempts: Int = 1, startUs: Int64?, outUs: Int64? = nil,
                      exitUs: Int64? = nil) -> TaskInfo {
        var i = TaskInfo(id: id, state: state, command: ["true"], attempts: attempts, submittedAt: 1_000, placedAt: 1_002,
                         startedAt: startUs.map { $0 / 1000 }, finishedAt: exitUs.map { $0 / 1000 })
        i.metrics.startedAtUs = startUs
        i.metrics.firstOutputAtUs = outUs
        i.metrics.exitedAtUs = exitUs
        return i
    }

    /// The durable floor: P slots turn over at most once per spawn plus sync (medians); the
    /// measurement runs on a real directory and cleans up its probe file.
    @Test func durableFloorBoundsAndMeasures() throws {
        let floor = DurableFloor(sync: Percentiles([2, 2, 2])!, spawn: Percentiles([0.5, 0.5, 0.5])!)
        #expect(floor.bound(concurrency: 4) == 1_600)
        #expect(floor.note(concurrency: 4, xargs: 1_600).contains("1.00x of xargs' 1600/s here: at this level the disk's sync"))
        #expect(floor.note(concurrency: 4, xargs: 1_000).contains("the coordinator's own path is"))
        let directory = NSTemporaryDirectory() + "durable-floor-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let measured = try #require(DurableFloor.measure(directory: directory, samples: 5))
        #expect(measured.sync.count == 5 && measured.spawn.count == 5 && measured.spawn.p50 > 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        #expect(DurableFloor.measure(directory: directory + "/missing", samples: 5) == nil)
    }

    @Test func spreadAndPercentilesUseMediansAndNearestRanks() {
        let s = Spread([3, 1, 2, 10])!
        #expect(s.median == 2.5 && s.min == 1 && s.max == 10 && s.runs == 4)
        #expect(Spread([]) == nil)
        let p = Percentiles((1...100).map(Double.init))!
        #expect(p.p50 == 50 && p.p90 == 90 && p.p99 == 99 && p.max == 100 && p.count == 100)
        #expect(p.cdf.count == 101 && p.cdf.first == 1 && p.cdf.last == 100)
        #expect(Percentiles([7])!.p99 == 7)
    }

    @Test func batchFiguresCountLostDuplicatedAndFailedTasks() {
        let submit: Int64 = 1_000_000
        let infos = [
            info("a", startUs: submit + 500, outUs: submit + 1_500, exitUs: submit + 2_500),
            info("b", startUs: submit + 1_500, exitUs: submit + 3_000),
            info("c", state: .failed, startUs: submit + 2_000, exitUs: submit + 2_100),
            info("d", attempts: 2, startUs: submit + 900),
            info("e", state: .running, startUs: submit + 800),
            info("f", startUs: nil),  // "succeeded" without ever starting: lost
        ]
        let run = BatchMeasure.figures(infos: infos, ids: ["a", "b", "c", "d", "e", "f", "g"], label: "run 1",
                                       concurrency: 4, submitUs: submit, wallSeconds: 2, sleepSeconds: nil)
        #expect(run.tasks == 7)
        #expect(run.succeeded == 4)  // a, b, d, f
        #expect(run.failed == 1)
        #expect(run.lost == 3)  // e still running, f never started, g never answered
        #expect(run.duplicated == 1)
        #expect(run.throughput == 3.5)
        #expect(run.efficiency == nil)
        #expect(run.submitToStart?.count == 5)
        #expect(run.submitToStart?.p50 == 0.9)
        #expect(run.startToFirstOutput?.p50 == 1.0)
        #expect(run.submitToPlaced?.max == 2)
    }

    @Test func efficiencyCountsWavesWhenTasksExceedConcurrency() {
        let ids = (0..<10).map { "t\($0)" }
        let infos = ids.map { info($0, startUs: 1) }
        let run = BatchMeasure.figures(infos: infos, ids: ids, label: "x", concurrency: 5, submitUs: 0, wallSeconds: 4.4,
                                       sleepSeconds: 2)
        #expect(abs(run.efficiency! - 4.0 / 4.4) < 1e-9)
        #expect(abs(run.speedup! - 20.0 / 4.4) < 1e-9)
    }

    @Test func usageIsTheDifferenceOverTheRun() {
        var run = RunFigures(label: "x", tasks: 100, concurrency: 1)
        let before = [ProcessFigures(name: "scheduler", role: "scheduler", pid: 1, cpuUserMs: 100, cpuSystemMs: 50, peakRssMiB: 10),
                      ProcessFigures(name: "w1", role: "worker", pid: 2, cpuUserMs: 10, cpuSystemMs: 10, peakRssMiB: 5)]
        let after = [ProcessFigures(name: "scheduler", role: "scheduler", pid: 1, cpuUserMs: 130, cpuSystemMs: 60, peakRssMiB: 12),
                     ProcessFigures(name: "w1", role: "worker", pid: 2, cpuUserMs: 70, cpuSystemMs: 30, peakRssMiB: 9)]
        BatchMeasure.addUsage(&run, before: before, after: after)
        #expect(run.schedulerCpuMs == 40)
        #expect(run.workersCpuMs == 80)
        #expect(run.overheadCpuUsPerTask == 1200)
        #expect(run.schedulerPeakRssMiB == 12 && run.workersPeakRssMiB == 9)
    }

    @Test func baselinePipelinesRunTheSameCommandAtTheSameConcurrency() throws {
        #expect(Baseline.pipeline(.xargs, command: ["true"], tasks: 10, concurrency: 4) == "seq 10 | xargs -P 4 -n 1 true")
        #expect(Baseline.pipeline(.xargs, command: ["sleep", "2"], tasks: 5, concurrency: 5)
                == "yes 2 | head -n 5 | xargs -P 5 -n 1 sleep")
        let run = try Baseline.run(.xargs, command: ["true"], tasks: 20, concurrency: 4, sleepSeconds: nil, label: "r")
        #expect(run.succeeded == 20 && run.failed == 0 && run.throughput > 0)
        let failing = try Baseline.run(.xargs, command: ["false"], tasks: 3, concurrency: 2, sleepSeconds: nil, label: "r")
        #expect(failing.failed == 3)
    }

    @Test func targetsAreJudgedOnlyOnTheirOwnShape() {
        var report = BenchReport(startedAt: "t", commandLine: "swarm bench", machine: MachineProbe.current(),
                                 cluster: ClusterDescription(mode: "local", scheduler: "x", workers: 2, totalSlots: 64, durable: false),
                                 repeats: 3)
        var spawn = WorkloadReport(name: "spawn", title: "", description: "")
        spawn.parameters["concurrency"] = "64"
        spawn.summary.throughput = Spread([2000])
        var xargs = BaselineReport(tool: "xargs", command: "", available: true)
        xargs.throughput = Spread([1600])
        xargs.swarmThroughputRatio = 1.25
        spawn.baselines = [xargs]
        var idle = RunFigures(label: "idle: one task at a time", tasks: 10, concurrency: 1)
        idle.submitToStart = Percentiles([0.4, 0.5, 0.6])
        spawn.runs = [idle]
        var wide = WorkloadReport(name: "parallel-wide", title: "", description: "")
        wide.parameters = ["tasks": "200", "sleepSeconds": "1"]
        wide.summary.efficiency = Spread([0.5])
        var scale = WorkloadReport(name: "scale", title: "", description: "")
        scale.parameters["steps"] = "5000,10000"
        var step = RunFigures(label: "c", tasks: 10_000, concurrency: 10_000)
        step.failed = 1
        step.peakConcurrent = 10_000
        var held = RunFigures(label: "c", tasks: 5_000, concurrency: 5_000)
        held.peakConcurrent = 4_990  // submitted 5,000 at once, but not all alive together
        scale.runs = [held, step]
        report.workloads = [spawn, wide, scale]
        report.lostTasks = 1
        let checks = TargetChecks.evaluate(report)
        #expect(checks.first { $0.name.hasPrefix("spawn") }?.met == true)
        #expect(checks.first { $0.name.hasPrefix("p50") }?.met == true)
        #expect(checks.first { $0.name.hasPrefix("parallel efficiency") }?.met == nil)
        let agents = checks.first { $0.name.hasPrefix("concurrent") }
        #expect(agents?.measured == "4990" && agents?.met == false)
        #expect(checks.first { $0.name.hasPrefix("lost") }?.met == false)
    }

    /// Issue 17: the worst of the spawn levels is the headline, with its paired runs' ratio
    /// range; the CLI arm and the CPU per task are their own targets.
    @Test func spawnHeadlineIsTheWorstLevel() {
        func level(_ name: String, p: Int, swarm: [Double], xargs: [Double], cpuUs: Double) -> WorkloadReport {
            var w = WorkloadReport(name: name, title: "", description: "")
            w.parameters["concurrency"] = "\(p)"
            let runs = swarm.enumerated().map { i, t -> RunFigures in
                var r = RunFigures(label: "run \(i + 1)", tasks: 100, concurrency: p)
                r.throughput = t
                r.overheadCpuUsPerTask = cpuUs
                return r
            }
            w.runs = runs
            w.summary = BatchMeasure.summary(runs)
            var b = BaselineReport(tool: "xargs", command: "", available: true)
            b.runs = xargs.enumerated().map { i, t in
                var r = RunFigures(label: "run \(i + 1)", tasks: 100, concurrency: p)
                r.succeeded = 100
                r.throughput = t
                return r
            }
            Baseline.finish(&b, swarm: w.summary, swarmRuns: runs)
            w.baselines = [b]
            return w
        }
        var report = BenchReport(startedAt: "t", commandLine: "swarm bench", machine: MachineProbe.current(),
                                 cluster: ClusterDescription(mode: "local", scheduler: "x", workers: 2, totalSlots: 64, durable: true),
                                 repeats: 3)
        report.workloads = [level("spawn-p4", p: 4, swarm: [900, 1000, 1100], xargs: [1000, 1000, 1000], cpuUs: 200),
                            level("spawn-p16", p: 16, swarm: [1500, 1500, 1500], xargs: [1000, 1000, 1000], cpuUs: 240),
                            level("spawn-cli", p: 16, swarm: [800, 800, 800], xargs: [1000, 1000, 1000], cpuUs: 300),
                            level("spawn", p: 64, swarm: [1200, 1200, 1200], xargs: [1000, 1000, 1000], cpuUs: 220)]
        let checks = TargetChecks.evaluate(report)
        let headline = checks.first { $0.name.hasPrefix("spawn throughput vs xargs -P, worst of P=4/16/64") }
        #expect(headline?.met == true)
        #expect(headline?.measured.hasPrefix("P=4: 1.00x (1000/s vs 1000/s, runs 0.90-1.10x)") == true)
        #expect(headline?.measured.contains("P=16 1.50x, P=64 1.20x") == true)
        #expect(checks.first { $0.name.hasPrefix("spawn through the CLI") }?.met == false)
        let cpu = checks.first { $0.name.hasPrefix("coordinator CPU per trivial task") }
        #expect(cpu?.met == false && cpu?.measured.hasPrefix("300 µs at P=16 via the CLI") == true)

        // One level under 1.0x misses the headline; a level without a ratio leaves it unjudged.
        report.workloads[0] = level("spawn-p4", p: 4, swarm: [990, 990, 990], xargs: [1000, 1000, 1000], cpuUs: 200)
        #expect(TargetChecks.evaluate(report).first { $0.name.contains("worst of") }?.met == false)
        report.workloads[0].baselines = []
        #expect(TargetChecks.evaluate(report).first { $0.name.contains("worst of") }?.met == nil)
    }

    /// `spawn` runs at P=4, 16 and 64 on clusters of that many slots, with the CLI arm at 16
    /// right after the in-process run there; one level when asked for one, or on a remote cluster.
    @Test func spawnLevelsAndTheirClusters() {
        var o = BenchOptions()
        #expect(BenchRunner.workloads(o).map(\.name).prefix(4) == ["spawn-p4", "spawn-p16", "spawn-cli", "spawn"])
        #expect(BenchRunner.workloads(o, remote: true).map(\.name).prefix(2) == ["spawn", "dashboard"])
        #expect(["spawn-p4", "spawn-p16", "spawn-cli", "spawn", "dashboard"].map { BenchRunner.slots(for: $0, o) } == [4, 16, 16, 64, 64])
        o.spawnLevels = [8]
        o.spawnConcurrency = 8
        #expect(BenchRunner.workloads(o).map(\.name).prefix(3) == ["spawn", "spawn-cli", "dashboard"])
        #expect(BenchRunner.slots(for: "spawn-cli", o) == 8)
    }

    /// A baseline pipeline that exits non-zero measured nothing: no throughput, no ratio, and
    /// the report says why. moreutils' `parallel` is not GNU parallel.
    @Test func failedBaselineRunsAreNotThroughputs() throws {
        let failing = try Baseline.run(.xargs, command: ["false"], tasks: 3, concurrency: 2, sleepSeconds: nil, label: "r")
        #expect(failing.failed == 3 && failing.throughput == 0)
        var b = BaselineReport(tool: "parallel", command: "", available: true)
        b.runs = [failing]
        var summary = WorkloadSummary()
        summary.throughput = Spread([1000])
        Baseline.finish(&b, swarm: summary, swarmRuns: [])
        #expect(b.throughput == nil && b.swarmThroughputRatio == nil)
        #expect(b.problem?.contains("exited non-zero in 1 of 1") == true)
        let table = ReportDocument.baselinesTable([b])
        #expect(table.rows[0][2].hasPrefix("failed"))

        #expect(Baseline.isGNUParallel(versionLine: "GNU parallel 20210822"))
        #expect(!Baseline.isGNUParallel(versionLine: "parallel [OPTIONS] command -- arguments"))
        #expect(!Baseline.isGNUParallel(versionLine: ""))
        // This machine's own `parallel`, whichever it is, is judged by the same rule.
        if let path = Baseline.path(of: .parallel) {
            let line = Baseline.firstLine(of: "timeout 10 \(path) --version </dev/null 2>&1")
            #expect((Baseline.unavailableReason(.parallel) == nil) == line.hasPrefix("GNU parallel"))
        }
    }

    @Test func scaleStopsBeforeStepsTheClusterCannotHold() {
        #expect(ScaleWorkload.limit(for: 200, slots: 100, local: false)?.contains("100 slots") == true)
        #expect(ScaleWorkload.limit(for: 50, slots: 100, local: false) == nil)
        #expect(ScaleWorkload.limit(for: 10_000_000, slots: 20_000_000, local: true) != nil)
    }

    @Test func anyLostOrDuplicatedTaskFailsTheBench() {
        func report(lost: Int, duplicated: Int, workloadPassed: Bool = true) -> BenchReport {
            var r = BenchReport(startedAt: "t", commandLine: "swarm bench", machine: MachineProbe.current(),
                                cluster: ClusterDescription(mode: "local", scheduler: "x", workers: 1, totalSlots: 1, durable: false),
                                repeats: 1)
            var w = WorkloadReport(name: "spawn", title: "", description: "")
            var run = RunFigures(label: "run 1", tasks: 10, concurrency: 1)
            run.lost = lost
            run.duplicated = duplicated
            w.runs = [run, RunFigures(label: "run 2", tasks: 10, concurrency: 1)]
            w.passed = workloadPassed
            r.workloads = [w]
            BenchRunner.tally(&r)
            return r
        }
        #expect(report(lost: 0, duplicated: 0).passed)
        let lost = report(lost: 2, duplicated: 0)
        #expect(!lost.passed && lost.lostTasks == 2)
        let duplicated = report(lost: 0, duplicated: 1)
        #expect(!duplicated.passed && duplicated.duplicatedTasks == 1)
        #expect(!report(lost: 0, duplicated: 0, workloadPassed: false).passed)
    }
}
