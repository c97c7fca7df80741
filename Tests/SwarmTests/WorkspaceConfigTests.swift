import Foundation
import Testing
import SwarmCluster
import SwarmProtocol
@testable import SwarmNode

/// Issue 11 items 2, 3 and 5 in the configuration: the worker's blob cache and artifact
/// limits in cluster.json, runtimes' default artifacts, `{workDir}` and the prompt's line
/// naming the task's directory.
@Suite struct WorkspaceConfigTests {
    @Test func workerEntriesSetTheBlobCacheAndTheArtifactLimit() throws {
        let json = #"{"workers": {"w1": {"slots": 2, "blobCacheMB": 512, "checkoutSlots": 3, "maxArtifactBytesPerTask": 1048576, "prefetchHold": 2.5}, "w2": {"slots": 1}},"#
            + #" "runtimes": {"agent": {"command": ["agent", "--in", "{workDir}"], "artifacts": ["notes/*.md", "**/*.patch"]}}}"#
        let file = try ClusterFile.parse(Data(json.utf8))
        var w1 = WorkerConfig(name: "w1", slots: 2, dataDir: "/tmp/w1")
        w1.apply(file, worker: "w1")
        #expect(w1.blobCacheBytes == 512 << 20)
        #expect(w1.maxArtifactBytesPerTask == 1 << 20)
        #expect(w1.checkoutSlots == 3)
        #expect(w1.prefetchHoldMs == 2_500)
        var w2 = WorkerConfig(name: "w2", slots: 1, dataDir: "/tmp/w2")
        w2.apply(file, worker: "w2")
        #expect(w2.blobCacheBytes == 2 << 30, "default: 2 GiB")
        #expect(w2.maxArtifactBytesPerTask == BlobLimits.defaultArtifactBytesPerTask)
        #expect(w2.checkoutSlots == nil, "default: one per core, decided by the worker")
        #expect(w2.prefetchHoldMs == 1_000, "default: 1 s")
        #expect(GitWorkspace.defaultCheckoutSlots == max(1, ProcessInfo.processInfo.activeProcessorCount))
        #expect(file.runtimes["agent"]?.artifacts == ["notes/*.md", "**/*.patch"])
    }

    @Test func badWorkspaceKeysAreClearErrors() {
        let bad: [(String, String)] = [
            (#"{"workers": {"a": {"blobCacheMB": 0}}}"#, "blobCacheMB"),
            (#"{"workers": {"a": {"blobCacheMB": 1.5}}}"#, "blobCacheMB"),
            (#"{"workers": {"a": {"maxArtifactBytesPerTask": -1}}}"#, "maxArtifactBytesPerTask"),
            (#"{"workers": {"a": {"checkoutSlots": 0}}}"#, "checkoutSlots"),
            (#"{"workers": {"a": {"checkoutSlots": 1025}}}"#, "checkoutSlots"),
            (#"{"workers": {"a": {"checkoutSlots": 2.5}}}"#, "checkoutSlots"),
            (#"{"workers": {"a": {"prefetchHold": 0}}}"#, "prefetchHold"),
            (#"{"workers": {"a": {"prefetchHold": 86401}}}"#, "prefetchHold"),
            (#"{"workers": {"a": {"prefetchHold": "1"}}}"#, "prefetchHold"),
            (#"{"runtimes": {"c": {"command": ["c"], "artifacts": "*.md"}}}"#, "artifacts"),
            (#"{"runtimes": {"c": {"command": ["c"], "artifacts": ["../up"]}}}"#, ".."),
            (#"{"runtimes": {"c": {"command": ["c"], "artifacts": ["/abs"]}}}"#, "absolute"),
        ]
        for (json, mention) in bad {
            #expect(throws: ConfigError.self) { try ClusterFile.parse(Data(json.utf8)) }
            do { _ = try ClusterFile.parse(Data(json.utf8)) } catch {
                #expect("\(error)".contains(mention), "\(json): \(error)")
            }
        }
    }

    static func plan(_ spec: TaskSpec, runtime: RuntimeDefinition, workDir: String? = nil) throws -> LaunchPlan {
        var config = WorkerConfig(name: "w1", slots: 1, dataDir: "/tmp/wsc")
        config.runtimes = [runtime]
        var spec = spec
        spec.workdir = workDir
        let task = TaskAssignment(id: "t9", attempt: 1, spec: spec)
        let health = HealthMonitor(runtimes: [], nowMs: 0)
        switch LaunchPlan.make(task: task, config: config, baseEnvironment: [:], health: health, logsDir: "/tmp/wsc/logs", clocks: Clocks(monotonic: { 0 }, wall: { 0 })) {
        case .success(let plan): return plan
        case .failure(let problem): throw ConfigError("\(problem)")
        }
    }

    @Test func aRuntimeTaskIsToldWhereItWorksAndGetsTheRuntimesArtifacts() throws {
        var runtime = RuntimeDefinition(name: "agent", command: ["agent", "--dir", "{workDir}", "{prompt}"], promptOnStdin: false)
        runtime.artifacts = ["notes/*.md", "out/*"]
        var spec = TaskSpec(runtime: "agent", prompt: "fix the bug")
        spec.artifacts = ["out/*", "log.txt"]
        let plan = try Self.plan(spec, runtime: runtime)
        #expect(plan.workDir == "/tmp/wsc/work/t9")
        #expect(plan.context.argv == ["agent", "--dir", "/tmp/wsc/work/t9", "fix the bug\n\nYou are working in the directory /tmp/wsc/work/t9.\n"])
        #expect(plan.artifactPatterns == ["out/*", "log.txt", "notes/*.md"], "the task's own, then the runtime's not named already")
        // With a workdir, that is the directory everywhere.
        let shared = try Self.plan(TaskSpec(runtime: "agent", prompt: "p"), runtime: runtime, workDir: "/srv/shared")
        #expect(shared.workDir == "/srv/shared")
        #expect(shared.context.workingDirectory == "/srv/shared")
        #expect(shared.context.argv[2] == "/srv/shared")
        #expect(shared.context.argv[3].hasSuffix("You are working in the directory /srv/shared.\n"))
        #expect(shared.context.environment.contains("SWARM_WORK_DIR=/srv/shared"))
    }

    @Test func aPlainCommandsStdinIsUnchanged() throws {
        var spec = TaskSpec(command: ["cat"])
        spec.prompt = "hello"
        let plan = try Self.plan(spec, runtime: RuntimeDefinition(name: "x", command: ["x"]))
        #expect(plan.context.stdin == "hello\n")
        #expect(plan.artifactPatterns.isEmpty)
    }
}
