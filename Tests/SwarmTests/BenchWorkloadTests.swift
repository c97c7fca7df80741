import Foundation
import Testing
import SwarmClient
import SwarmCluster
import SwarmNode
import SwarmProtocol
@testable import SwarmBench

/// A context that runs nothing: `runBatch` hands the specs to `fabricate`, which returns
/// the tasks' final infos; the workload builds its report from those.
final class FakeBenchContext: BenchContext {
    var options = BenchOptions()
    let client: SwarmClient
    var cluster = ClusterDescription(mode: "local", scheduler: "127.0.0.1:1", workers: 1, totalSlots: 8, durable: false)
    let progress: BenchProgress = RecordingProgress()
    var agentScript = "/nonexistent/swarm-synthetic-agent.sh"
    var agentRuntime: String? = SyntheticAgent.runtimeName
    var modelLimits: [String: Int] = [:]
    let root: String
    var batches: [(specs: [TaskSpec], label: String, concurrency: Int)] = []
    var fabricate: ([TaskSpec], FakeBenchContext) -> [TaskInfo] = { _, _ in [] }

    init() throws {
        client = try SwarmClient(address: "127.0.0.1:1", token: nil, name: "bench-test")
        root = NSTemporaryDirectory() + "swarm-bench-test-\(UUID().uuidString)"
        options.quick = true
        options.repeats = 2
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func scratchDirectory(_ workload: String) throws -> String {
        let dir = "\(root)/\(workload)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func runBatch(_ specs: [TaskSpec], label: String, concurrency: Int, sleepSeconds: Double?,
                  timeoutSeconds: Double) throws -> (RunFigures, [TaskInfo]) {
        batches.append((specs, label, concurrency))
        let infos = fabricate(specs, self)
        let first = infos.map(\.submittedAt).min() ?? 0
        return (AgentFigures.runFigures(label: label, infos: infos, submitTimeMs: first, concurrency: concurrency), infos)
    }
}

final class RecordingProgress: BenchProgress {
    var calls: [String] = []
    func begin(_ phase: String, total: Int) { calls.append("begin \(phase) \(total)") }
    func update(done: Int) { calls.append("update \(done)") }
    func end(_ result: String) { calls.append("end") }
}

/// A finished task: submitted at `submitMs`, ran from `startUs` to `endUs`.
func fabricatedInfo(_ id: String, state: TaskState = .succeeded, submitMs: Int64, startUs: Int64?, endUs: Int64?,
                    model: String? = nil, bursts: Int = 0, attempts: Int = 1, output: String? = nil) -> TaskInfo {
    var info = TaskInfo(id: id, state: state, command: [], node: "w1", exitCode: state == .succeeded ? 0 : 1,
                        attempts: attempts, submittedAt: submitMs, placedAt: submitMs + 1,
                        startedAt: startUs.map { $0 / 1000 }, finishedAt: endUs.map { $0 / 1000 }, output: output)
    info.metrics.startedAtUs = startUs
    info.metrics.firstOutputAtUs = startUs.map { $0 + 2_000 }
    info.metrics.exitedAtUs = endUs
    info.metrics.model = model
    info.metrics.outputBursts = bursts
    return info
}

@Suite struct DurationDistributionTests {
    @Test func parsesTheThreeForms() throws {
        #expect(try DurationDistribution(parsing: "uniform:0.5-2") == .uniform(min: 0.5, max: 2))
        #expect(try DurationDistribution(parsing: " fixed:3 ") == .fixed(3))
        #expect(try DurationDistribution(parsing: "lognormal:1.5,0.4") == .lognormal(median: 1.5, sigma: 0.4))
        #expect(try DurationDistribution(parsing: "LogNormal:2, 1") == .lognormal(median: 2, sigma: 1))
        for text in ["uniform:0.5-2", "fixed:3", "lognormal:1.5,0.4"] {
            #expect(try DurationDistribution(parsing: text).description == text)
        }
    }

    @Test func badInputIsOneClearLine() {
        let bad: [(String, String)] = [
            ("", "expected uniform:MIN-MAX"), ("uniform", "expected uniform:MIN-MAX"),
            ("uniform:2-1", "MIN (2.0) is over MAX (1.0)"), ("uniform:a-2", "MIN 'a' is not a number"),
            ("uniform:1-2-3", "uniform takes MIN-MAX"), ("fixed:-1", "S must not be negative"),
            ("fixed:inf", "is not a number"), ("lognormal:0,1", "MEDIAN must be more than 0"),
            ("lognormal:1", "lognormal takes MEDIAN,SIGMA"), ("gamma:1,2", "unknown distribution 'gamma'"),
        ]
        for (text, reason) in bad {
            do {
                _ = try DurationDistribution(parsing: text)
                Issue.record("'\(text)' parsed")
            } catch {
                #expect(error.description.hasPrefix("invalid agent duration '\(text)': "))
                #expect(error.description.contains(reason), "\(error.description)")
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test func splitMix64MatchesTheReference() {
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func samplesAreReproducibleAndClamped() throws {
        let uniform = try DurationDistribution(parsing: "uniform:0.5-2")
        let a = uniform.samples(500, seed: 42)
        #expect(a == uniform.samples(500, seed: 42))
        #expect(a != uniform.samples(500, seed: 43))
        #expect(a.allSatisfy { (0.5...2).contains($0) })
        #expect(a.min()! < 0.6 && a.max()! > 1.9)
        #expect(DurationDistribution.fixed(0).samples(3, seed: 1) == [0.05, 0.05, 0.05])
        #expect(DurationDistribution.fixed(1000).samples(1, seed: 1) == [600])
        let log = DurationDistribution.lognormal(median: 2, sigma: 0.5).samples(2001, seed: 7).sorted()
        #expect(log.allSatisfy { (0.05...600).contains($0) })
        #expect((1.7...2.3).contains(log[1000]))
        #expect(DurationDistribution.lognormal(median: 100, sigma: 5).samples(200, seed: 3).allSatisfy { (0.05...600).contains($0) })
    }
}

@Suite struct SyntheticAgentTests {
    func run(_ script: String, _ args: [String], stdin: String?, env: [String: String]) throws -> (out: String, code: Int32, seconds: Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script] + args
        process.environment = ["PATH": "/usr/bin:/bin"].merging(env) { $1 }
        let out = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardInput = input
        let start = Date()
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: data, as: UTF8.self), process.terminationStatus, Date().timeIntervalSince(start))
    }

    @Test func versionIsTheHealthCheckAndARunPrintsBursts() throws {
        let dir = NSTemporaryDirectory() + "swarm-agent-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SyntheticAgent.write(to: dir)
        #expect(path == dir + "/swarm-synthetic-agent.sh" && path.hasPrefix("/"))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o755)

        let version = try run(path, ["--version"], stdin: nil, env: [:])
        #expect(version.out == "swarm-synthetic-agent 1\n" && version.code == 0)

        let prompt = "Refactor the parser so that empty input no longer crashes it, and add tests\nsecond line\nthird"
        let r = try run(path, ["--model", "deep"], stdin: prompt,
                        env: ["SWARM_SIM_DURATION": "0.3", "SWARM_SIM_BURSTS": "3", "SWARM_SIM_EXIT": "3"])
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "thinking about: Refactor the parser so that empty input no longer crashes it [model deep]")
        #expect(lines.filter { $0.hasPrefix("step ") }.count == 3)
        #expect(lines.last == "done (3 prompt lines, 3 bursts, 300 ms)")
        #expect(r.code == 3)
        #expect(r.seconds >= 0.25 && r.seconds < 20)

        let byEnv = try run(path, [], stdin: "hi\n", env: ["SWARM_MODEL": "fast", "SWARM_SIM_DURATION": "0.05", "SWARM_SIM_BURSTS": "0"])
        #expect(byEnv.out.hasPrefix("thinking about: hi [model fast]\n") && byEnv.code == 0)
        #expect(byEnv.out.hasSuffix("done (1 prompt lines, 0 bursts, 50 ms)\n"))
    }

    @Test func runtimeAndClusterFragmentAgree() throws {
        let path = "/opt/bench/swarm-synthetic-agent.sh"
        let runtime = SyntheticAgent.runtime(scriptPath: path)
        #expect(runtime.name == "synthetic" && runtime.defaultModel == "fast" && runtime.promptOnStdin)
        #expect(try runtime.argv(model: nil, prompt: "p", id: "t1", contextFile: nil, workDir: "/w").get()
            == ["/bin/sh", path, "--model", "fast"])
        #expect(runtime.health == HealthCheckSpec(command: ["/bin/sh", path, "--version"], expect: "swarm-synthetic-agent"))
        let json = "{\"runtimes\": {\(SyntheticAgent.clusterJSONFragment(scriptPath: path))}}"
        let file = try ClusterFile.parse(Data(json.utf8))
        #expect(file.runtimes["synthetic"] == runtime)
    }
}

@Suite struct BenchFiguresTests {
    @Test func peakConcurrencyFromIntervals() {
        #expect(AgentFigures.peakConcurrency([]) == 0)
        #expect(AgentFigures.peakConcurrency([(0, 10), (10, 20), (20, 30)]) == 1)  // touching: not overlapping
        #expect(AgentFigures.peakConcurrency([(0, 10), (5, 15), (9, 20), (15, 16)]) == 3)
        #expect(AgentFigures.peakConcurrency([(0, nil), (100, 200), (300, 400)]) == 2)  // still running
    }

    @Test func runFiguresFromFabricatedInfos() {
        let infos = [
            fabricatedInfo("a", submitMs: 1_000, startUs: 1_010_000, endUs: 2_010_000, model: "fast"),
            fabricatedInfo("b", submitMs: 1_000, startUs: 1_020_000, endUs: 3_000_000, model: "fast", attempts: 2),
            fabricatedInfo("c", state: .failed, submitMs: 1_000, startUs: 1_030_000, endUs: 1_500_000, model: "fast"),
            fabricatedInfo("d", state: .queued, submitMs: 1_000, startUs: nil, endUs: nil, model: "fast"),
        ]
        let f = AgentFigures.runFigures(label: "model fast", infos: infos, submitTimeMs: 1_000, concurrency: 4)
        #expect(f.label == "model fast" && f.tasks == 4 && f.concurrency == 4)
        #expect(f.succeeded == 2 && f.failed == 1 && f.lost == 1 && f.duplicated == 1)
        #expect(f.wallSeconds == 2 && f.throughput == 2)
        #expect(f.submitToStart?.count == 3 && f.submitToStart?.p50 == 20 && f.submitToStart?.max == 30)
        #expect(f.startToFirstOutput?.p50 == 2)
        #expect(f.runTime?.max == 1980 && f.submitToPlaced?.p50 == 1)
    }

    @Test func modelsAreGroupedAndLimitsChecked() {
        let plans = (0..<4).map { AgentTaskPlan(index: $0, seconds: 1, bursts: 3, model: ["fast", "deep"][$0 % 2]) }
        let infos = plans.map { fabricatedInfo("t\($0.index)", submitMs: 0, startUs: 0, endUs: 1, model: $0.model) }
        let groups = ModelsWorkload.groups(plans: plans, infos: infos, models: ["fast", "balanced", "deep"])
        #expect(groups.map(\.0) == ["fast", "deep"] && groups.map(\.1.count) == [2, 2])
        #expect(ModelsWorkload.limitProblem(model: "deep", limit: 2, peak: 2) == nil)
        #expect(ModelsWorkload.limitProblem(model: "deep", limit: nil, peak: 9) == nil)
        #expect(ModelsWorkload.limitProblem(model: "deep", limit: 2, peak: 3) == "model deep: 3 runs at once, over its limit of 2")
    }
}

@Suite struct IsolationAnalysisTests {
    static let pad = IsolationAnalysis.pad

    @Test func appendLinesIntactInterleavedMissingAndTorn() {
        let good = ["a:0:0", "a:1:0", "a:0:1", "a:1:1", "a:1:2", "a:0:2"].map { "\($0):\(Self.pad)\n" }.joined()
        let f = IsolationAnalysis.analyzeAppend(good, tasks: 2, linesPerTask: 3)
        #expect(f.intact == 6 && f.missing == 0 && f.malformed == 0 && f.duplicates == 0)
        #expect(f.perTask == [0: 3, 1: 3] && f.interleaved)
        let ordered = ["a:0:0", "a:0:1", "a:1:0", "a:1:1"].map { "\($0):\(Self.pad)\n" }.joined()
        #expect(!IsolationAnalysis.analyzeAppend(ordered, tasks: 2, linesPerTask: 2).interleaved)
        // A line cut by another, one line lost, one twice.
        let torn = "a:0:0:\(Self.pad)\na:0:1:abcdea:1:0:\(Self.pad)\na:1:0:\(Self.pad)\n"
        let t = IsolationAnalysis.analyzeAppend(torn, tasks: 2, linesPerTask: 2)
        #expect(t.intact == 1 + 1 && t.malformed == 1 && t.duplicates == 0 && t.missing == 2)
        let twice = IsolationAnalysis.analyzeAppend("a:0:0:\(Self.pad)\na:0:0:\(Self.pad)\n", tasks: 1, linesPerTask: 1)
        #expect(twice.intact == 1 && twice.duplicates == 1 && twice.missing == 0)
        let surprises = IsolationAnalysis.surprises(append: t, identity: .init(), tasks: 0)
        #expect(surprises == ["O_APPEND file: 2 lines lost, 1 malformed, 0 duplicated"])
    }

    @Test func recordIntactTornOrEmpty() {
        func record(_ writer: Int, _ chunks: Range<Int>) -> String {
            chunks.map { "r:\(writer):\($0):\(IsolationAnalysis.fill)\n" }.joined()
        }
        #expect(IsolationAnalysis.analyzeRecord([], chunks: 4) == .empty)
        #expect(IsolationAnalysis.analyzeRecord(Array(record(2, 0..<4).utf8), chunks: 4) == .intact(writer: 2))
        let mixed = record(3, 0..<2) + record(1, 2..<4)
        #expect(IsolationAnalysis.analyzeRecord(Array(mixed.utf8), chunks: 4) == .torn(writers: [1, 3], badLines: 0, nulBytes: 0))
        let holed = Array(record(1, 0..<2).utf8) + [0, 0, 0] + Array(record(1, 3..<4).utf8)
        #expect(IsolationAnalysis.analyzeRecord(holed, chunks: 4) == .torn(writers: [1], badLines: 1, nulBytes: 3))
        #expect(IsolationAnalysis.analyzeRecord(Array(record(1, 0..<3).utf8), chunks: 4) == .torn(writers: [1], badLines: 0, nulBytes: 0))
    }

    @Test func observationsAndSurprises() throws {
        func text(_ i: Int, workDir: String, own: String = "100/100") -> String {
            "ISO index=\(i)\nISO id=t\(i)\nISO cwd=\(workDir)\nISO workdir=\(workDir)\nISO pid=\(100 + i)\n" +
                "ISO pgid=\(100 + i)\nISO own=\(own)\nISO cgroup=0::/w\nISO vmem=unlimited\n"
        }
        let o = try #require(IsolationAnalysis.parseObservation("noise\n" + text(3, workDir: "/w/t3", own: "97/100")))
        #expect(o.index == 3 && o.taskId == "t3" && o.workDir == "/w/t3" && o.ownIntact == 97 && o.ownTotal == 100)
        #expect(IsolationAnalysis.parseObservation("ISO cwd=/x\n") == nil)

        let fine = (0..<3).compactMap { IsolationAnalysis.parseObservation(text($0, workDir: "/w/t\($0)")) }
        let a = IsolationAnalysis.analyzeIdentities(fine, ownLines: 100)
        #expect(a.reported == 3 && a.distinctWorkDirs == 3 && a.cwdIsWorkDir == 3 && a.distinctIds == 3)
        #expect(a.groupLeaders == 3 && a.ownIntact == 3 && a.distinctCgroups == 1 && a.vmemUnlimited == 3)
        #expect(IsolationAnalysis.surprises(append: .init(), identity: a, tasks: 3).isEmpty)

        let shared = [text(0, workDir: "/w"), text(1, workDir: "/w", own: "50/120")].compactMap(IsolationAnalysis.parseObservation)
        let b = IsolationAnalysis.analyzeIdentities(shared, ownLines: 100)
        #expect(b.distinctWorkDirs == 1 && b.ownCorrupted == [1])
        let s = IsolationAnalysis.surprises(append: .init(), identity: b, tasks: 3)
        #expect(s.count == 3)
        #expect(s.contains("1 of 3 tasks did not report"))
        #expect(s.contains("tasks shared work directories: 1 distinct for 2 tasks"))
    }
}

/// The workloads' reports, built from fabricated runs (no cluster).
@Suite struct BenchWorkloadRunTests {
    /// Agents that started 5 ms after submit and ran 20 ms longer than intended, printing
    /// every burst.
    static func agents(_ specs: [TaskSpec], startUs: (Int, TaskSpec) -> Int64 = { _, _ in 1_000_005_000 }) -> [TaskInfo] {
        specs.enumerated().map { i, spec in
            let seconds = Double(spec.env?["SWARM_SIM_DURATION"] ?? "0") ?? 0
            let bursts = Int(spec.env?["SWARM_SIM_BURSTS"] ?? "0") ?? 0
            let start = startUs(i, spec)
            return fabricatedInfo("t\(i)", submitMs: 1_000_000, startUs: start, endUs: start + Int64(seconds * 1e6) + 20_000,
                                  model: spec.model, bursts: bursts + 2)
        }
    }

    @Test func agentWithoutRuntimeIsSkipped() throws {
        let context = try FakeBenchContext()
        context.agentRuntime = nil
        for workload in [AgentWorkload() as Workload, ModelsWorkload()] {
            let report = try workload.run(context)
            #expect(report.notes == ["skipped: no healthy synthetic runtime"] && report.passed && report.runs.isEmpty)
        }
        #expect(context.batches.isEmpty)
    }

    @Test func agentReportFromFabricatedRuns() throws {
        let context = try FakeBenchContext()
        context.fabricate = { specs, _ in Self.agents(specs) }
        let report = try AgentWorkload().run(context)
        #expect(context.batches.count == 2 && context.batches.allSatisfy { $0.specs.count == 20 && $0.concurrency == 8 })
        #expect(context.batches[0].specs == context.batches[1].specs)
        // Every write a burst: the bursts table checks the worker saw each one.
        #expect(context.batches[0].specs.allSatisfy { $0.burstGap == 0 })
        for spec in context.batches[0].specs {
            #expect(spec.problem() == nil && spec.runtime == "synthetic" && spec.model == "fast" && spec.command.isEmpty)
            #expect((0.5...2).contains(Double(spec.env?["SWARM_SIM_DURATION"] ?? "") ?? -1))
            #expect((3...8).contains(Int(spec.env?["SWARM_SIM_BURSTS"] ?? "") ?? -1))
            #expect(spec.prompt?.hasPrefix("Task ") == true && (spec.timeout ?? 0) >= 60)
        }
        #expect(report.name == "agent" && report.passed && report.runs.map(\.label) == ["run 1", "run 2"])
        #expect(report.runs.allSatisfy { $0.succeeded == 20 && $0.lost == 0 })
        #expect(report.summary.submitToStartP50 == Spread(median: 5, min: 5, max: 5, runs: 2))
        #expect(report.summary.startToFirstOutputP99?.median == 2)
        let overhead = try #require(report.tables.first { $0.title.hasPrefix("run time vs intended") })
        #expect(overhead.rows[2] == ["overhead (run time - intended)", "40", "20.0", "20.0", "20.0", "20.0"])
        let bursts = try #require(report.tables.first { $0.title == "output bursts seen per task" })
        #expect(bursts.rows.allSatisfy { Int($0[4]) == Int($0[0])! + 2 && $0[6] == "0" })
        #expect(bursts.rows.reduce(0) { $0 + Int($1[1])! } == 40)
        #expect(report.notes.count == 1 && report.notes[0].hasPrefix("health-check figures unavailable"))
        let progress = try #require(context.progress as? RecordingProgress)
        #expect(progress.calls.first == "begin agent: run 1/2 20" && progress.calls.filter { $0 == "end" }.count == 2)
    }

    @Test func aFailedAgentFailsTheWorkload() throws {
        let context = try FakeBenchContext()
        context.options.repeats = 1
        context.fabricate = { specs, _ in
            var infos = Self.agents(specs)
            infos[3].state = .timedOut
            return infos
        }
        let report = try AgentWorkload().run(context)
        #expect(!report.passed && report.notes.contains("run 1: 1 failed, 0 lost, 0 ran more than once"))
    }

    @Test func modelsReportPerModelAndCheckTheLimit() throws {
        for respectLimit in [true, false] {
            let context = try FakeBenchContext()
            context.modelLimits = ["deep": 2]
            context.fabricate = { specs, _ in
                // Deep runs two at a time (each under 10 s), or all at once.
                var deepSeen = 0
                return Self.agents(specs) { _, spec in
                    guard spec.model == "deep", respectLimit else { return 1_000_005_000 }
                    deepSeen += 1
                    return 1_000_005_000 + Int64((deepSeen - 1) / 2) * 10_000_000
                }
            }
            let report = try ModelsWorkload().run(context)
            #expect(context.batches.count == 1 && context.batches[0].specs.count == 20)
            let specs = context.batches[0].specs
            func seconds(_ model: String) -> [Double] {
                specs.filter { $0.model == model }.map { Double($0.env?["SWARM_SIM_DURATION"] ?? "") ?? -1 }
            }
            #expect(seconds("fast").count == 7 && seconds("balanced").count == 7 && seconds("deep").count == 6)
            #expect(seconds("fast").allSatisfy { (0.5...2).contains($0) } && seconds("deep").allSatisfy { (2...8).contains($0) })
            #expect(report.runs.map(\.label) == ["model fast", "model balanced", "model deep"])
            #expect(report.runs.map(\.tasks) == [7, 7, 6] && report.runs[2].concurrency == 2)
            let table = try #require(report.tables.first { $0.title == "effect of model limits" })
            let deep = try #require(table.rows.first { $0[0] == "deep" })
            #expect(deep[3] == "2" && deep[4] == (respectLimit ? "2" : "6"))
            #expect(table.rows.first { $0[0] == "fast" }?[3] == "none")
            #expect(report.passed == respectLimit)
            #expect(report.notes.contains("model deep: 6 runs at once, over its limit of 2") == !respectLimit)
        }
    }

    /// Writes what `tasks` isolation tasks would leave behind, with `workDir(i)` as each one's.
    static func fabricateIsolation(_ specs: [TaskSpec], lostLine: Bool, workDir: @escaping (Int) -> String) -> [TaskInfo] {
        let args = specs[0].command
        let (append, record, lines, chunks) = (args[5], args[6], Int(args[8])!, Int(args[9])!)
        var text = ""
        for j in 0..<lines { for i in specs.indices where !(lostLine && i == 1 && j == 7) { text += "a:\(i):\(j):\(IsolationAnalysis.pad)\n" } }
        _ = FileManager.default.createFile(atPath: append, contents: Data(text.utf8))
        let rec = (0..<chunks).map { "r:4:\($0):\(IsolationAnalysis.fill)\n" }.joined()
        _ = FileManager.default.createFile(atPath: record, contents: Data(rec.utf8))
        return specs.indices.map { i in
            let out = "ISO index=\(i)\nISO id=t\(i)\nISO cwd=\(workDir(i))\nISO workdir=\(workDir(i))\nISO pid=\(50 + i)\n" +
                "ISO pgid=\(50 + i)\nISO own=100/100\nISO cgroup=0::/\nISO vmem=unlimited\n"
            return fabricatedInfo("t\(i)", submitMs: 1, startUs: 2_000, endUs: 3_000, output: out)
        }
    }

    @Test func isolationReportFromFabricatedFiles() throws {
        let context = try FakeBenchContext()
        context.fabricate = { specs, _ in Self.fabricateIsolation(specs, lostLine: false) { "/work/t\($0)" } }
        let report = try IsolationWorkload().run(context)
        #expect(context.batches.count == 1 && context.batches[0].specs.count == 10)
        #expect(report.passed && report.notes.isEmpty)
        let table = try #require(report.tables.first { $0.title == "what is and is not isolated" })
        #expect(table.rows.count == 7)
        #expect(table.rows[0][1] == "isolated" && table.rows[2][1] == "isolated")
        #expect(table.rows[3][2].hasPrefix("2000 of 2000 lines intact, 0 missing"))
        #expect(table.rows[4][2] == "intact (task 4's, the last writer)")

        let broken = try FakeBenchContext()
        broken.fabricate = { specs, _ in Self.fabricateIsolation(specs, lostLine: true) { $0 < 2 ? "/work/shared" : "/work/t\($0)" } }
        let bad = try IsolationWorkload().run(broken)
        #expect(!bad.passed)
        #expect(bad.notes == ["tasks shared work directories: 9 distinct for 10 tasks",
                              "O_APPEND file: 1 lines lost, 0 malformed, 0 duplicated"])
    }

    @Test func isolationScriptRunForReal() throws {
        // runBatch runs each command itself, at once, each in its own directory.
        let context = try FakeBenchContext()
        context.fabricate = { specs, context in
            let processes = specs.enumerated().map { i, spec -> Process in
                let dir = "\(context.root)/work/t\(i)"
                try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let p = Process()
                p.executableURL = URL(fileURLWithPath: spec.command[0])
                p.arguments = Array(spec.command.dropFirst())
                p.currentDirectoryURL = URL(fileURLWithPath: dir)
                p.environment = ["PATH": "/usr/bin:/bin", "SWARM_TASK_ID": "t\(i)", "SWARM_WORK_DIR": dir]
                p.standardOutput = FileHandle.nullDevice
                try? p.run()
                return p
            }
            return processes.enumerated().map { i, p in
                p.waitUntilExit()
                return fabricatedInfo("t\(i)", state: p.terminationStatus == 0 ? .succeeded : .failed, submitMs: 1, startUs: 2_000, endUs: 3_000)
            }
        }
        let report = try IsolationWorkload().run(context)
        #expect(report.passed, "\(report.notes)")
        let table = try #require(report.tables.first)
        #expect(table.rows[0][2].hasPrefix("10 distinct work dirs for 10 tasks (cwd = $SWARM_WORK_DIR in 10); own file read back whole in 10"))
        #expect(table.rows[3][2].hasPrefix("2000 of 2000 lines intact, 0 missing, 0 malformed"))
    }

    /// `dag`: a layer's gap runs from the previous layer's last end to its own first start (or
    /// first placement); a boundary missing a time is left out.
    @Test func dagGapsRunFromALayersLastEndToTheNextFirstStart() {
        func task(_ id: String, start: Int64?, end: Int64?, placed: Int64?) -> TaskInfo {
            var info = TaskInfo(id: id, state: .succeeded, command: ["true"], submittedAt: 0, placedAt: placed)
            info.metrics.startedAtUs = start
            info.metrics.exitedAtUs = end
            return info
        }
        let infos = [task("a0", start: 1_000, end: 5_000, placed: 0), task("a1", start: 2_000, end: 9_000, placed: 0),
                     task("b0", start: 12_500, end: 20_000, placed: 10), task("b1", start: 11_000, end: 21_000, placed: 11),
                     task("c0", start: nil, end: nil, placed: nil)]
        let layers = [["a0", "a1"], ["b0", "b1"], ["c0"]]
        #expect(DagWorkload.layerGapsMs(infos, layers: layers) == [2])
        #expect(DagWorkload.layerGapsMs(infos, layers: layers, toPlacement: true) == [1])
        #expect(DagWorkload.shape(BenchOptions()) == (100, 100))
    }
}
