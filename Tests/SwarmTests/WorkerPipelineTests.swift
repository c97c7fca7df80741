import Foundation
import Logging
import Testing
import SwarmArchive
import SwarmProtocol
import SwarmTransport
@testable import SwarmNode
@testable import SwarmUV

/// The pipeline in a real worker on a real loop, against a scheduler end on the same loop and
/// a fake blob mover: `--workdir`, artifacts uploaded before the result, a preparing task that
/// holds its slot, is reported as running across a reconnect, and is killed without a spawn.
@Suite(.serialized) struct WorkerPipelineTests {
    final class FakeBlobs: BlobMoving {
        var fetches: [(sha256: String, path: String, done: (String?) -> Void)] = []
        var uploads: [(path: String, sha256: String, size: Int64)] = []
        /// Bytes of each blob the fake serves; nil answers fetches with this problem.
        var content: [String: [UInt8]] = [:]
        var holdFetches = false
        var holdUploads = false
        var uploadProblem: String?

        func fetch(_ sha256: String, size: Int64, to path: String, _ done: @escaping (String?) -> Void) {
            fetches.append((sha256, path, done))
            if !holdFetches { complete(fetches.count - 1) }
        }

        func complete(_ index: Int) {
            let f = fetches[index]
            guard let bytes = content[f.sha256] else { return f.done("unknown blob") }
            FileManager.default.createFile(atPath: f.path, contents: Data(bytes))
            f.done(nil)
        }

        func upload(file path: String, sha256: String, size: Int64, _ done: @escaping (String?) -> Void) {
            uploads.append((path, sha256, size))
            if !holdUploads { done(uploadProblem) }
        }
    }

    final class SchedulerEnd {
        var connection: FramedConnection?
        var registers: [Message.Register] = []
        var heartbeats: [Message.Heartbeat] = []
        var received: [Message] = []

        func accept(_ tcp: UVTCP) {
            let connection = FramedConnection(tcp: tcp)
            self.connection = connection
            connection.onMessage = { [weak self, unowned connection] message in
                switch message {
                case .hello: connection.send(.welcome(.init(server: "fake")))
                case .register(let r):
                    self?.registers.append(r)
                    connection.send(.registered(.init(heartbeatMs: 20)))
                case .heartbeat(let h): self?.heartbeats.append(h)
                default: self?.received.append(message)
                }
            }
            connection.start()
        }

        func result(_ id: String) -> TaskResult? {
            for case .taskFinished(let f) in received where f.result.id == id { return f.result }
            return nil
        }

        var started: [String] { received.compactMap { if case .taskStarted(let s) = $0 { s.id } else { nil } } }
    }

    /// A worker with `fake` blobs connected to a scheduler end; `body` runs, then both stop.
    static func withWorker(slots: Int = 2, configure: (inout WorkerConfig) -> Void = { _ in },
                           _ body: (EventLoop, WorkerAgent, SchedulerEnd, FakeBlobs, String) throws -> Void) throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-pipeline-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = SchedulerEnd()
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        var config = WorkerConfig(name: "w7", slots: slots, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        config.reconnectMinMs = 10
        configure(&config)
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        let blobs = FakeBlobs()
        worker.workspace.blobs = blobs
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        try body(loop, worker, scheduler, blobs, dir)
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
        scheduler.connection?.close(reason: "test over")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    static func assign(_ scheduler: SchedulerEnd, _ id: String, _ spec: TaskSpec) {
        scheduler.connection?.send(.assign(.init(task: TaskAssignment(id: id, attempt: 1, spec: spec))))
    }

    @Test func aMissingWorkdirEndsTheRunSpawnFailedNamingPathAndWorker() throws {
        try Self.withWorker { loop, _, scheduler, _, dir in
            var spec = TaskSpec(command: ["true"])
            spec.workdir = dir + "/nowhere"
            Self.assign(scheduler, "wd1", spec)
            var file = TaskSpec(command: ["true"])
            file.workdir = dir + "/runs/plain-file"
            try Files.makeDirectories(dir + "/runs")
            FileManager.default.createFile(atPath: dir + "/runs/plain-file", contents: Data())
            Self.assign(scheduler, "wd2", file)
            #expect(runLoop(loop) { scheduler.result("wd1") != nil && scheduler.result("wd2") != nil })
            let missing = try #require(scheduler.result("wd1"))
            #expect(missing.state == .spawnFailed)
            #expect(missing.reason == "workdir \(dir)/nowhere does not exist on worker w7")
            #expect(scheduler.result("wd2")?.reason == "workdir \(dir)/runs/plain-file is not a directory on worker w7")
            #expect(scheduler.started.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: dir + "/nowhere"), "a workdir is never made")
        }
    }

    @Test func aTaskRunsInItsWorkdirAndItsArtifactsAreUploadedBeforeTheResult() throws {
        try Self.withWorker { loop, _, scheduler, blobs, dir in
            let shared = dir + "/shared"
            try Files.makeDirectories(shared)
            var spec = TaskSpec(command: ["sh", "-c", "pwd > where.txt; mkdir -p out; printf hello > out/a.bin; ln -s /etc/passwd out/l.bin"])
            spec.workdir = shared
            spec.artifacts = ["*.txt", "out/*.bin"]
            Self.assign(scheduler, "art1", spec)
            #expect(runLoop(loop) { scheduler.result("art1") != nil })
            let result = try #require(scheduler.result("art1"))
            #expect(result.state == .succeeded)
            #expect(try String(contentsOfFile: shared + "/where.txt", encoding: .utf8) == shared + "\n")
            #expect(result.artifacts?.map(\.path) == ["out/a.bin", "where.txt"])
            // Artifacts carry the file's permission bits (main's 1d68bc5); they depend on the umask.
            var first = try #require(result.artifacts?.first)
            #expect(first.mode != nil)
            first.mode = nil
            #expect(first == ArtifactRef(path: "out/a.bin", size: 5, sha256: BlobHash.of(Array("hello".utf8))))
            #expect(result.skippedArtifacts?.map(\.path) == ["out/l.bin"])
            #expect(blobs.uploads.map(\.path).sorted() == [shared + "/out/a.bin", shared + "/where.txt"])
        }
    }

    @Test func aRefusedUploadIsSkippedWithTheReasonAndTheResultStillGoes() throws {
        try Self.withWorker { loop, _, scheduler, blobs, _ in
            blobs.uploadProblem = "scheduler: disk full"
            var spec = TaskSpec(command: ["sh", "-c", "echo x > a.log"])
            spec.artifacts = ["*.log"]
            Self.assign(scheduler, "art2", spec)
            #expect(runLoop(loop) { scheduler.result("art2") != nil })
            let result = try #require(scheduler.result("art2"))
            #expect(result.artifacts == [])
            #expect(result.skippedArtifacts == [SkippedArtifact(path: "a.log", size: 2, reason: "not uploaded: scheduler: disk full")])
        }
    }

    @Test func aPreparingTaskHoldsItsSlotIsReportedRunningAcrossAReconnectAndIsKilledWithoutASpawn() throws {
        try Self.withWorker(slots: 1) { loop, worker, scheduler, blobs, dir in
            blobs.holdFetches = true
            let sha = String(repeating: "e", count: 64)
            var spec = TaskSpec(command: ["sh", "-c", "touch \(dir)/spawned"])
            spec.inputBlobs = [InputRef(dest: "in", sha256: sha, size: 10)]
            Self.assign(scheduler, "prep1", spec)
            #expect(runLoop(loop) { blobs.fetches.count == 1 })
            #expect(worker.busySlots == 1)
            let beats = scheduler.heartbeats.count
            #expect(runLoop(loop) { scheduler.heartbeats.count > beats + 1 })
            #expect(scheduler.heartbeats.last?.running == [RunRef(id: "prep1", attempt: 1)])
            #expect(scheduler.heartbeats.last?.freeSlots == 0)
            // The scheduler goes away and comes back: the register names the preparing task.
            scheduler.connection?.close(reason: "scheduler restart")
            #expect(runLoop(loop) { scheduler.registers.count == 2 })
            #expect(scheduler.registers.last?.running == [RunRef(id: "prep1", attempt: 1)])
            // A second task finds no free slot.
            Self.assign(scheduler, "other", TaskSpec(command: ["true"]))
            #expect(runLoop(loop) { scheduler.received.contains { if case .reject(let r) = $0 { r.id == "other" } else { false } } })
            scheduler.connection?.send(.kill(.init(id: "prep1", attempt: 1, reason: "cancelled by user")))
            #expect(runLoop(loop) { scheduler.result("prep1") != nil })
            let result = try #require(scheduler.result("prep1"))
            #expect(result.state == .cancelled)
            #expect(result.reason == "killed by scheduler: cancelled by user")
            #expect(worker.busySlots == 0)
            // The fetch ends after the kill: nothing is spawned.
            blobs.content[sha] = Array("0123456789".utf8)
            blobs.complete(0)
            for _ in 0..<20 { loop.runNoWait() }
            #expect(!FileManager.default.fileExists(atPath: dir + "/spawned"))
            #expect(scheduler.started.isEmpty)
            #expect(worker.workspace.cache.pinnedBytes == 0)
        }
    }

    @Test func aFailedFetchEndsTheRunSpawnFailedNamingTheInputAndTheWorker() throws {
        try Self.withWorker { loop, _, scheduler, _, _ in
            var spec = TaskSpec(command: ["true"])
            spec.inputBlobs = [InputRef(dest: "build.tar", sha256: String(repeating: "f", count: 64), size: 10)]
            Self.assign(scheduler, "fail1", spec)
            #expect(runLoop(loop) { scheduler.result("fail1") != nil })
            let result = try #require(scheduler.result("fail1"))
            #expect(result.state == .spawnFailed)
            #expect(result.reason == "input build.tar (sha256 ffffffffffff…) could not be fetched from the scheduler to worker w7: unknown blob")
        }
    }

    /// Packs a directory holding `sub/hello.txt`; returns its ref and the blob's bytes.
    static func packedInput(_ dir: String, text: String) throws -> (InputRef, [UInt8]) {
        let source = dir + "/src-\(UInt32.random(in: 0...UInt32.max))"
        try Files.makeDirectories(source + "/sub")
        FileManager.default.createFile(atPath: source + "/sub/hello.txt", contents: Data(text.utf8))
        let packed = try Archive.pack(source: source, to: source + ".pack", maxBytes: 1 << 20)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source + ".pack")))
        return (InputRef(dest: "in", sha256: packed.sha256, size: packed.size), bytes)
    }

    @Test func inputsAreFetchedOnceUnpackedBeforeTheSpawnAndReplaceWhatAnEarlierAttemptLeft() throws {
        try Self.withWorker(slots: 3) { loop, worker, scheduler, blobs, dir in
            let (input, bytes) = try Self.packedInput(dir, text: "hi from the input\n")
            blobs.content[input.sha256] = bytes
            blobs.holdFetches = true
            var spec = TaskSpec(command: ["sh", "-c", "cat in/sub/hello.txt; ls in"])
            spec.inputBlobs = [input]
            Self.assign(scheduler, "in1", spec)
            Self.assign(scheduler, "in2", spec)
            // An earlier attempt of in2 left its own `in` behind, which the input replaces.
            try Files.makeDirectories(dir + "/work/in2/in/stale")
            #expect(runLoop(loop) { worker.workspace.tasks.count == 2 })
            for _ in 0..<10 { loop.runNoWait() }
            #expect(blobs.fetches.count == 1, "one fetch for both tasks")
            #expect(scheduler.started.isEmpty, "nothing runs before its inputs are there")
            blobs.complete(0)
            #expect(runLoop(loop) { scheduler.result("in1") != nil && scheduler.result("in2") != nil })
            for id in ["in1", "in2"] {
                let result = try #require(scheduler.result(id))
                #expect(result.state == .succeeded, "\(id): \(result.reason ?? "")")
                #expect(result.output == "hi from the input\nsub\n")
            }
            #expect(worker.workspace.cache.pinnedBytes == 0)
            #expect(worker.workspace.cache.entries[input.sha256]?.ready == true)
            #expect(FileManager.default.fileExists(atPath: worker.workspace.blobPath(input.sha256)))
            // A later task finds it in the cache: no fetch.
            Self.assign(scheduler, "in3", spec)
            #expect(runLoop(loop) { scheduler.result("in3") != nil })
            #expect(scheduler.result("in3")?.state == .succeeded)
            #expect(blobs.fetches.count == 1)
        }
    }

    /// N tasks of one input keep one copy on the worker: each task's unpacked copy goes once
    /// the scheduler acknowledged its result (the blob stays in the cache), never through a
    /// link the task left, and the task's other files stay.
    @Test func unpackedInputsGoOnceTheResultIsHeldAndNeverThroughALink() throws {
        try Self.withWorker { loop, worker, scheduler, blobs, dir in
            let (input, bytes) = try Self.packedInput(dir, text: "data\n")
            blobs.content[input.sha256] = bytes
            var spec = TaskSpec(command: ["sh", "-c", "echo out > result.txt"])
            spec.inputBlobs = [input]
            Self.assign(scheduler, "cp1", spec)
            var linked = spec
            linked.inputBlobs = [InputRef(dest: "d/in", sha256: input.sha256, size: input.size)]
            linked.command = ["sh", "-c", "mkdir -p \(dir)/elsewhere/in/sub && rm -rf d && ln -s \(dir)/elsewhere d"]
            Self.assign(scheduler, "cp2", linked)
            #expect(runLoop(loop) { scheduler.result("cp1") != nil && scheduler.result("cp2") != nil })
            #expect(FileManager.default.fileExists(atPath: dir + "/work/cp1/in/sub/hello.txt"), "kept until acknowledged")
            for id in ["cp1", "cp2"] { scheduler.connection?.send(.resultAck(.init(id: id, attempt: 1))) }
            #expect(runLoop(loop) { !FileManager.default.fileExists(atPath: dir + "/work/cp1/in") })
            for _ in 0..<20 { loop.runNoWait() }
            #expect(FileManager.default.fileExists(atPath: dir + "/work/cp1/result.txt"))
            #expect(FileManager.default.fileExists(atPath: worker.workspace.blobPath(input.sha256)))
            #expect(FileManager.default.fileExists(atPath: dir + "/elsewhere/in/sub"), "nothing removed through the task's link")
            #expect(worker.workspace.inputCopies.isEmpty)
        }
    }

    /// A worker with `--work-dir` runs every task in one shared directory: an input unpacked
    /// there was replaced under a running task by the next task's unpack and removed by the
    /// first result; a repo task made the (empty) shared directory its worktree and deleted it
    /// on release. Both end `spawn_failed` now, and the shared directory is left alone.
    @Test func aSharedWorkDirRefusesInputsAndRepoTasks() throws {
        let shared = NSTemporaryDirectory() + "shared-workdir-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Files.makeDirectories(shared)
        defer { try? FileManager.default.removeItem(atPath: shared) }
        try Self.withWorker(configure: { $0.workDir = shared }) { loop, _, scheduler, blobs, dir in
            let (input, bytes) = try Self.packedInput(dir, text: "data\n")
            blobs.content[input.sha256] = bytes
            var inputs = TaskSpec(command: ["true"])
            inputs.inputBlobs = [input]
            Self.assign(scheduler, "sh1", inputs)
            var repo = TaskSpec(command: ["true"])
            repo.repo = dir + "/some-repo"
            Self.assign(scheduler, "sh2", repo)
            Self.assign(scheduler, "sh3", TaskSpec(command: ["sh", "-c", "echo plain > plain.txt"]))
            #expect(runLoop(loop) { ["sh1", "sh2", "sh3"].allSatisfy { scheduler.result($0) != nil } })
            let why = "worker w7 runs every task in one shared directory \(shared) (--work-dir): "
            #expect(scheduler.result("sh1")?.state == .spawnFailed)
            #expect(scheduler.result("sh1")?.reason == why + "a task with inputs needs its own directory")
            #expect(scheduler.result("sh2")?.state == .spawnFailed)
            #expect(scheduler.result("sh2")?.reason == why + "a --repo task needs its own directory")
            #expect(scheduler.result("sh3")?.state == .succeeded, "a plain task still runs there")
            #expect(blobs.fetches.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: shared + "/in"))
            #expect(!FileManager.default.fileExists(atPath: shared + "/.git"))
            #expect(FileManager.default.fileExists(atPath: shared + "/plain.txt"))
        }
    }

    @Test func anInputThatCannotBeUnpackedIsASpawnFailureNamingIt() throws {
        try Self.withWorker { loop, _, scheduler, blobs, _ in
            let junk = Array("not an archive".utf8)
            let ref = InputRef(dest: "data", sha256: BlobHash.of(junk), size: Int64(junk.count))
            blobs.content[ref.sha256] = junk
            var spec = TaskSpec(command: ["true"])
            spec.inputBlobs = [ref]
            Self.assign(scheduler, "bad1", spec)
            #expect(runLoop(loop) { scheduler.result("bad1") != nil })
            let result = try #require(scheduler.result("bad1"))
            #expect(result.state == .spawnFailed)
            #expect(result.reason?.hasPrefix("input data (sha256 \(ref.sha256.prefix(12))…) could not be unpacked on worker w7: ") == true)
            #expect(scheduler.started.isEmpty)
        }
    }

    @Test func aStopEndsPreparingTasksLostAndGivesCollectionOnlyAShortWhile() throws {
        let loop = EventLoop()
        let dir = NSTemporaryDirectory() + "worker-pipeline-stop-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try UVTCP(loop: loop)
        try server.bind(SocketAddress(host: "127.0.0.1", port: 0))
        let scheduler = SchedulerEnd()
        try server.listen { _ in scheduler.accept(try! server.accept()) }
        var config = WorkerConfig(name: "w7", slots: 2, dataDir: dir)
        config.schedulerPort = try server.localAddress().port
        config.pipelineLimits.stopCollectMs = 300
        config.supervisor.policy.killGraceMs = 100
        let worker = WorkerAgent(loop: loop, config: config, logger: Logger(label: "test"))
        let blobs = FakeBlobs()
        blobs.holdFetches = true
        blobs.holdUploads = true
        worker.workspace.blobs = blobs
        try worker.start()
        #expect(runLoop(loop) { worker.registered })
        var preparing = TaskSpec(command: ["true"])
        preparing.inputBlobs = [InputRef(dest: "in", sha256: String(repeating: "1", count: 64), size: 3)]
        Self.assign(scheduler, "prep", preparing)
        var running = TaskSpec(command: ["sh", "-c", "echo x > a.out; sleep 30"])
        running.artifacts = ["*.out"]
        Self.assign(scheduler, "run", running)
        // Stopped once the run wrote its artifact (a start alone does not mean the shell got that far).
        #expect(runLoop(loop, timeoutMs: 10_000) {
            blobs.fetches.count == 1 && FileManager.default.contents(atPath: dir + "/work/run/a.out")?.count == 2
        })
        var stopped = false
        worker.stop { stopped = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { stopped })
        #expect(blobs.uploads.map(\.path).last?.hasSuffix("/run/a.out") == true, "the killed run's artifact was offered")
        let prep = try #require(worker.outbox.first { $0.id == "prep" })
        #expect(prep.state == .lost && prep.reason == "worker w7 shut down while the task was being prepared")
        let run = try #require(worker.outbox.first { $0.id == "run" })
        #expect(run.state == .lost)
        #expect(run.skippedArtifacts == [SkippedArtifact(path: "a.out", size: 2, reason: "not uploaded: the worker stopped before collection finished")])
        scheduler.connection?.close(reason: "test over")
        server.close()
        try closeLoopCheckingLeaks(loop)
    }

    @Test func blobsLeftByAnEarlierWorkerAreCheckedBeforeUseAndADamagedOneIsFetchedAgain() throws {
        let scratch = NSTemporaryDirectory() + "worker-pipeline-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Files.makeDirectories(scratch)
        let (good, goodBytes) = try Self.packedInput(scratch, text: "good\n")
        let (bad, badBytes) = try Self.packedInput(scratch, text: "fresh\n")
        func place(_ dataDir: String, _ sha: String, _ bytes: [UInt8]) {
            try? Files.makeDirectories("\(dataDir)/blobs/\(sha.prefix(2))")
            FileManager.default.createFile(atPath: "\(dataDir)/blobs/\(sha.prefix(2))/\(sha)", contents: Data(bytes))
        }
        try Self.withWorker(configure: { config in
            place(config.dataDir, good.sha256, goodBytes)
            var damaged = badBytes
            damaged[damaged.count - 3] ^= 0xFF
            place(config.dataDir, bad.sha256, damaged)
            FileManager.default.createFile(atPath: "\(config.dataDir)/blobs/\(bad.sha256.prefix(2))/\(bad.sha256).part", contents: Data([1]))
        }) { loop, worker, scheduler, blobs, dir in
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/blobs/\(bad.sha256.prefix(2))/\(bad.sha256).part"), "a cut transfer is removed at start")
            #expect(worker.workspace.cache.usedBytes == good.size + bad.size)
            blobs.content[bad.sha256] = badBytes
            var spec = TaskSpec(command: ["sh", "-c", "cat in/sub/hello.txt"])
            spec.inputBlobs = [good]
            Self.assign(scheduler, "c1", spec)
            var fresh = TaskSpec(command: ["sh", "-c", "cat in/sub/hello.txt"])
            fresh.inputBlobs = [bad]
            Self.assign(scheduler, "c2", fresh)
            #expect(runLoop(loop) { scheduler.result("c1") != nil && scheduler.result("c2") != nil })
            #expect(scheduler.result("c1")?.output == "good\n")
            #expect(scheduler.result("c2")?.output == "fresh\n")
            #expect(blobs.fetches.map(\.sha256) == [bad.sha256], "only the damaged blob is fetched")
        }
    }
}
