import ArgumentParser
import Foundation
import SwarmBench
import SwarmClient

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Stress-test a cluster (a local one by default) and write a performance report.",
        discussion: """
            Workloads: spawn, dashboard, parallel, agent, isolation, models, scale, workspace, dag, or all (the default), run
            in that order; soak (issue 14: N tasks through a durable scheduler, sampling memory, descriptors and disk)
            runs only when named, after the others; so does tls (issue 16: spawn and parallel-wide on a plaintext
            cluster and on the same cluster with a token, i.e. TLS 1.3 on loopback, interleaved; and the handshake
            time per connection).
            Writes report.json (schema swarm-bench/1), report.md and report.html under --out/<time>/ (and
            --out/latest). Exits 1 if any task was lost or duplicated or a workload failed its own checks.
            """)

    @Argument(help: "Workloads to run: spawn, dashboard, parallel, agent, isolation, models, scale, workspace, dag, soak, tls or all (all but soak and tls).")
    var workloads: [String] = ["all"]
    @Option(help: ArgumentHelp("Bench an existing cluster at HOST:PORT instead of starting a local one.", valueName: "HOST:PORT"))
    var scheduler: String?
    @Option(help: ArgumentHelp("File holding the cluster token, with --scheduler (default: $SWARM_TOKEN).", valueName: "FILE"))
    var tokenFile: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Workers of the local cluster.", valueName: "N"))
    var localWorkers = 2
    @Option(parsing: .unconditional, help: ArgumentHelp("Slots per local worker (default: sized for each workload).", valueName: "N"))
    var slots: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Repetitions of each measured batch (swarm and baselines interleaved).", valueName: "N"))
    var repeats = 3
    @Flag(help: "Small batches, one repetition: a quick look (the size-bound targets are shown, not judged).")
    var quick = false
    @Option(parsing: .unconditional, help: ArgumentHelp("spawn: tasks per run (default 2000); soak: tasks in all (default 1000000, 100000 with --quick).", valueName: "N"))
    var tasks: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("spawn: run at this one concurrency (slots of the local cluster, and xargs -P) instead of at 4, 16 and 64; also the dashboard's.", valueName: "N"))
    var concurrency: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("parallel: tasks, all at once.", valueName: "N"))
    var parallelTasks = 100
    @Option(parsing: .unconditional, help: ArgumentHelp("parallel: seconds each task sleeps.", valueName: "SECONDS"))
    var parallelSleep = 10.0
    @Option(parsing: .unconditional, help: ArgumentHelp("parallel, second shape: tasks (0 skips it).", valueName: "N"))
    var wideTasks = 1000
    @Option(parsing: .unconditional, help: ArgumentHelp("parallel, second shape: seconds each task sleeps.", valueName: "SECONDS"))
    var wideSleep = 2.0
    @Option(parsing: .unconditional, help: ArgumentHelp("agent and models: synthetic agents per run.", valueName: "N"))
    var agentTasks = 200
    @Option(help: ArgumentHelp("agent: duration distribution: uniform:MIN-MAX, fixed:S or lognormal:MEDIAN,SIGMA (seconds).", valueName: "DIST"))
    var agentDuration = "uniform:0.5-2"
    @Option(parsing: .unconditional, help: ArgumentHelp("models: concurrency limit of the 'deep' model on the local cluster.", valueName: "N"))
    var modelLimit = 4
    @Option(parsing: .unconditional, help: ArgumentHelp("isolation: concurrent writers.", valueName: "N"))
    var isolationTasks = 50
    @Option(help: ArgumentHelp("scale: comma-separated concurrency steps.", valueName: "N,..."))
    var scaleSteps = "5,10,20,50,100,200,500,1000,2000,5000,10000"
    @Option(parsing: .unconditional, help: ArgumentHelp("scale: seconds each agent runs.", valueName: "SECONDS"))
    var scaleSleep = 5.0
    @Option(parsing: .unconditional, help: ArgumentHelp("workspace: MiB of the input uploaded and downloaded (--quick: at most 32).", valueName: "MIB"))
    var inputMib = 256
    @Option(parsing: .unconditional, help: ArgumentHelp("workspace: tasks of the fan-out sharing one input (--quick: at most 100).", valueName: "N"))
    var fanoutTasks = 1000
    @Option(parsing: .unconditional, help: ArgumentHelp("workspace: MiB of the fan-out's shared input (--quick: at most 8).", valueName: "MIB"))
    var fanoutInputMib = 50
    @Option(parsing: .unconditional, help: ArgumentHelp("workspace: concurrent --repo tasks (--quick: at most 20).", valueName: "N"))
    var worktreeTasks = 100
    @Option(parsing: .unconditional, help: ArgumentHelp("workspace: files in the benchmark repository.", valueName: "N"))
    var repoFiles = 5000
    @Option(parsing: .unconditional, help: ArgumentHelp("workspace: tasks writing 10 artifacts of 1 MiB each (--quick: at most 10).", valueName: "N"))
    var artifactTasks = 50
    @Flag(help: "Local cluster: the scheduler's state is durable (SQLite, fsynced), as `swarm scheduler` runs. The default; kept for scripts.")
    var durable = false
    @Flag(help: "Local cluster: the scheduler keeps its state in memory (as `swarm scheduler --in-memory`: no database, no fsync).")
    var inMemory = false
    @Option(parsing: .unconditional, help: ArgumentHelp("Local cluster: assignments sent ahead to a busy worker (the scheduler's `prefetch`, 0 off); default: the scheduler's.", valueName: "N"))
    var prefetch: Int?
    @Option(help: ArgumentHelp("Directory for the reports (a time-stamped directory per run, and 'latest').", valueName: "DIR"))
    var out = "bench-results"
    @Flag(help: "Also exit 1 when a target is missed.")
    var strict = false
    @Option(help: ArgumentHelp("Only write the synthetic agent script into DIR and print its cluster.json runtime entry (for workers of an existing cluster), then exit.", valueName: "DIR"))
    var writeAgent: String?

    func validate() throws {
        let known = Set(BenchOptions.allWorkloads + BenchOptions.namedOnlyWorkloads + ["all"])
        if let bad = workloads.first(where: { !known.contains($0) }) {
            throw ValidationError("unknown workload '\(bad)' (choose from \((BenchOptions.allWorkloads + BenchOptions.namedOnlyWorkloads).joined(separator: ", ")) or all)")
        }
        if let prefetch, !(0...64).contains(prefetch) { throw ValidationError("--prefetch must be 0 to 64, got \(prefetch)") }
        if durable && inMemory { throw ValidationError("--durable and --in-memory exclude each other (durable is the default)") }
        guard (1...64).contains(localWorkers) else { throw ValidationError("--local-workers must be 1 to 64") }
        if let slots, !(1...100_000).contains(slots) { throw ValidationError("--slots must be 1 to 100000") }
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be 1 to 100") }
        if let tasks, !(1...100_000_000).contains(tasks) { throw ValidationError("--tasks must be 1 to 100000000, got \(tasks)") }
        if let tasks, tasks > 1_000_000, workloads.contains(where: { $0 != "soak" }) {
            throw ValidationError("--tasks must be 1 to 1000000 for spawn, got \(tasks)")
        }
        for (name, value) in [("--concurrency", concurrency ?? 64), ("--parallel-tasks", parallelTasks),
                              ("--agent-tasks", agentTasks), ("--isolation-tasks", isolationTasks), ("--model-limit", modelLimit),
                              ("--fanout-tasks", fanoutTasks), ("--worktree-tasks", worktreeTasks), ("--artifact-tasks", artifactTasks)] {
            guard (1...1_000_000).contains(value) else { throw ValidationError("\(name) must be 1 to 1000000, got \(value)") }
        }
        // The packed input must fit the scheduler's default per-task input limit (256 MiB).
        for (name, value) in [("--input-mib", inputMib), ("--fanout-input-mib", fanoutInputMib)] {
            guard (1...256).contains(value) else { throw ValidationError("\(name) must be 1 to 256, got \(value)") }
        }
        guard (1...200_000).contains(repoFiles) else { throw ValidationError("--repo-files must be 1 to 200000, got \(repoFiles)") }
        guard (0...1_000_000).contains(wideTasks) else { throw ValidationError("--wide-tasks must be 0 to 1000000") }
        for (name, value) in [("--parallel-sleep", parallelSleep), ("--wide-sleep", wideSleep), ("--scale-sleep", scaleSleep)] {
            guard value > 0, value <= 3600 else { throw ValidationError("\(name) must be more than 0 and at most 3600 seconds") }
        }
        guard !parsedSteps.isEmpty else { throw ValidationError("--scale-steps wants numbers from 1 to 1000000 separated by commas, got '\(scaleSteps)'") }
        do { _ = try DurationDistribution(parsing: agentDuration) } catch {
            throw ValidationError("--agent-duration: \(error)")
        }
        if let scheduler, parseHostPort(scheduler) == nil { throw ValidationError("--scheduler wants HOST:PORT, got '\(scheduler)'") }
    }

    private var parsedSteps: [Int] {
        let parts = scaleSteps.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ (1...1_000_000).contains($0 ?? 0) }) else { return [] }
        return parts.compactMap { $0 }.sorted()
    }

    func run() throws {
        if let dir = writeAgent {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let path = try SyntheticAgent.write(to: dir)
                printLine("wrote \(path); put this under \"runtimes\" in the workers' cluster.json:")
                printLine(SyntheticAgent.clusterJSONFragment(scriptPath: path))
            } catch {
                printError("cannot write the synthetic agent into \(dir): \(error)")
                throw ExitCode(1)
            }
            return
        }
        var options = BenchOptions()
        options.workloads = workloads.contains("all") ? BenchOptions.allWorkloads + workloads.filter { BenchOptions.namedOnlyWorkloads.contains($0) } : workloads
        options.repeats = quick ? 1 : repeats
        options.quick = quick
        options.spawnTasks = tasks ?? 2000
        options.soakTasks = tasks
        if let concurrency {
            options.spawnConcurrency = concurrency
            options.spawnLevels = [concurrency]
        }
        options.parallelTasks = parallelTasks
        options.parallelSleepSeconds = parallelSleep
        options.parallelWideTasks = wideTasks
        options.parallelWideSleepSeconds = wideSleep
        options.agentTasks = agentTasks
        options.agentDuration = agentDuration
        options.modelLimit = modelLimit
        options.isolationTasks = isolationTasks
        options.scaleSteps = parsedSteps
        options.scaleSleepSeconds = scaleSleep
        options.workspaceInputMiB = inputMib
        options.workspaceFanoutTasks = fanoutTasks
        options.workspaceFanoutInputMiB = fanoutInputMib
        options.workspaceWorktreeTasks = worktreeTasks
        options.workspaceRepoFiles = repoFiles
        options.workspaceArtifactTasks = artifactTasks
        options.outputDirectory = out

        var config = BenchRunner.Config()
        config.options = options
        config.scheduler = scheduler
        config.localWorkers = localWorkers
        config.slotsPerWorker = slots
        config.durable = !inMemory
        config.prefetch = prefetch
        config.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        config.commandLine = (["swarm"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        if scheduler != nil {
            do { config.token = try loadClusterToken(file: tokenFile) } catch {
                printError("\(error)")
                throw ExitCode(2)
            }
        }
        let outcome: BenchRunner.Outcome
        do { outcome = try BenchRunner(config, progress: TerminalProgress()).run() } catch {
            printError("bench: \(error)")
            throw ExitCode(1)
        }
        printLine(TerminalSummary.render(outcome.report))
        printLine("reports: " + outcome.files.joined(separator: "  "))
        if !outcome.report.passed {
            let failing = outcome.report.workloads.filter { !$0.passed }
            printError("bench failed: \(outcome.report.lostTasks) lost, \(outcome.report.duplicatedTasks) duplicated task(s); "
                + "workloads failing their checks: \(failing.map(\.name).joined(separator: ", "))")
            for workload in failing {
                for note in workload.notes { printError("  \(workload.name): \(note)") }
            }
            throw ExitCode(1)
        }
        if strict && outcome.report.targets.contains(where: { $0.met == false }) {
            printError("bench: a target was missed (--strict)")
            throw ExitCode(1)
        }
    }
}
