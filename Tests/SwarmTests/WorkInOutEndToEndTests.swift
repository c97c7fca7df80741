import Foundation
import Testing
import SwarmProtocol

/// Work in and out of tasks across real `swarm` processes on loopback (issue 11, item 6):
/// a C project built from `--input` sources on three workers whose binaries come back with
/// `swarm fetch`, and fake agents committing in `--repo` worktrees whose branches come back
/// with `swarm fetch --git` into one clone.
@Suite(.serialized) struct WorkInOutEndToEndTests {
    /// A scheduler and `workers` workers of `slots` slots each (named w1, w2, ...); returns
    /// the scheduler's address once all registered.
    static func startCluster(_ harness: ProcessHarness, workers: Int, slots: Int, extra: [String] = []) throws -> String {
        let address = try EndToEndTests.startScheduler(harness, extra: extra)
        for i in 1...workers {
            try harness.start("worker-\(i)", ["worker", "--scheduler", address, "--slots", String(slots), "--name", "w\(i)",
                                              "--data-dir", "\(harness.dir)/w\(i)"])
        }
        _ = try EndToEndTests.waitForNodes(harness, address, count: workers)
        return address
    }

    // MARK: - A C project from --input sources, binaries back through --artifact and fetch

    /// Three .c files, a header and a Makefile; `make VARIANT=N` builds `calc`, which prints N.
    static func writeCProject(at dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let files = [
            "calc.h": "int add(int a, int b);\nint mul(int a, int b);\n",
            "add.c": "#include \"calc.h\"\nint add(int a, int b) { return a + b; }\n",
            "mul.c": "#include \"calc.h\"\nint mul(int a, int b) { return a * b; }\n",
            "main.c": """
                #include <stdio.h>
                #include <stdlib.h>
                #include "calc.h"
                int main(int argc, char **argv) {
                    int a = argc > 1 ? atoi(argv[1]) : 2, b = argc > 2 ? atoi(argv[2]) : 3;
                    printf("variant %d: %d + %d = %d, %d * %d = %d\\n", VARIANT, a, b, add(a, b), a, b, mul(a, b));
                    return 0;
                }

                """,
            "Makefile": """
                VARIANT ?= 0
                calc: main.o add.o mul.o
                \t$(CC) -o calc main.o add.o mul.o
                main.o: main.c calc.h
                \t$(CC) -DVARIANT=$(VARIANT) -c main.c
                add.o: add.c calc.h
                \t$(CC) -c add.c
                mul.o: mul.c calc.h
                \t$(CC) -c mul.c

                """,
        ]
        for (name, text) in files { try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
    }

    @Test func cProjectBuiltFromInputsOnThreeWorkersComesBackAsBinaries() throws {
        let missing = WorkspaceFixtures.missingTools(["cc", "make"])
        guard missing.isEmpty else {
            print("skipped cProjectBuiltFromInputsOnThreeWorkersComesBackAsBinaries: \(missing.joined(separator: ", ")) not on PATH")
            return
        }
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startCluster(harness, workers: 3, slots: 2)
        let project = "\(harness.dir)/project"
        try Self.writeCProject(at: project)

        // One batch (queued at once, so spread over the three workers), one shared input.
        let variants = Array(1...6)
        let lines = try variants.map { n in
            try WorkspaceFixtures.jsonLine([
                "id": "build-\(n)",
                "command": ["sh", "-c", "cd src && make -s VARIANT=\(n) && ./calc 6 7"],
                "inputs": ["\(project):src"],
                "artifacts": ["src/calc"],
            ])
        }
        try lines.joined(separator: "\n").write(toFile: "\(harness.dir)/builds.jsonl", atomically: true, encoding: .utf8)
        let submit = try harness.run(["submit", "--scheduler", address, "--file", "\(harness.dir)/builds.jsonl"])
        #expect(submit.status == 0, "submit: \(submit.stderr)")
        let ids = variants.map { "build-\($0)" }
        let wait = try harness.run(["wait", "--scheduler", address, "--timeout", "60"] + ids, timeout: 90)
        #expect(wait.status == 0, "wait: \(wait.stdout) \(wait.stderr)")

        let nodes = Set(try variants.compactMap { try Self.checkBuild(harness, address, variant: $0) })
        #expect(nodes == ["w1", "w2", "w3"], "the builds ran on \(nodes)")
        // The six tasks' one input is one blob; the rest are the six binaries.
        let held = Set(WorkspaceFixtures.files(under: "\(harness.dir)/state/blobs").map { ($0 as NSString).lastPathComponent })
        let binaries = Set(try ids.compactMap { id in
            ((try WorkspaceFixtures.status(harness, address, id))["artifacts"] as? [[String: Any]])?.first?["sha256"] as? String
        })
        #expect(binaries.count == 6 && held.subtracting(binaries).count == 1, "held: \(held), binaries: \(binaries)")

        // A named PATH fetches that file only; an unknown one is refused before any write.
        let one = try harness.run(["fetch", "--scheduler", address, "build-1", "-o", "\(harness.dir)/one", "src/calc"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(harness.dir)/one/src/calc"))
        let unknown = try harness.run(["fetch", "--scheduler", address, "build-1", "-o", "\(harness.dir)/none", "src/nope"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.hasPrefix("swarm: error:") && unknown.stderr.split(separator: "\n").count == 1, "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(harness.dir)/none/src/nope"))
    }

    /// Build `build-N` succeeded, lists its binary as its one artifact, and `swarm fetch`
    /// brings that binary back with the listed size and hash, runnable here. Returns the node.
    static func checkBuild(_ harness: ProcessHarness, _ address: String, variant n: Int) throws -> String? {
        let id = "build-\(n)"
        let info = try WorkspaceFixtures.status(harness, address, id)
        #expect(info["state"] as? String == "succeeded", "\(id): \(info["reason"] ?? "") \(info["output"] ?? "")")
        #expect((info["output"] as? String)?.contains("variant \(n): 6 + 7 = 13, 6 * 7 = 42") == true)
        let artifacts = info["artifacts"] as? [[String: Any]] ?? []
        #expect(artifacts.map { $0["path"] as? String } == ["src/calc"], "\(id) artifacts: \(artifacts)")
        let listed = try #require(artifacts.first)
        let sha = try #require(listed["sha256"] as? String)
        let size = try #require(listed["size"] as? Int)

        let out = "\(harness.dir)/fetched/\(id)"
        let fetch = try harness.run(["fetch", "--scheduler", address, id, "-o", out])
        #expect(fetch.status == 0, "fetch \(id): \(fetch.stderr)")
        let binary = "\(out)/src/calc"
        #expect(WorkspaceFixtures.sha256(ofFile: binary) == sha)
        let attributes = try FileManager.default.attributesOfItem(atPath: binary)
        #expect((attributes[.size] as? NSNumber)?.intValue == size)
        // The worker's permission bits come back with the bytes: the binary runs as fetched.
        #expect(FileManager.default.isExecutableFile(atPath: binary))
        #expect(try runProgram(binary, ["2", "5"]) == "variant \(n): 2 + 5 = 7, 2 * 5 = 10\n")
        return info["node"] as? String
    }

    /// Runs a program to completion (bounded) and returns its stdout.
    static func runProgram(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = try CapturedRun.run(process, timeout: 30)
        #expect(!output.timedOut, "\(path) did not finish within 30 s")
        return output.stdout
    }

    // MARK: - Fake agents in --repo worktrees, every branch fetched into one clone

    @Test func agentsCommitInRepoWorktreesAndEveryBranchIsFetchedIntoOneClone() throws {
        let missing = WorkspaceFixtures.missingTools(["git"])
        guard missing.isEmpty else {
            print("skipped agentsCommitInRepoWorktreesAndEveryBranchIsFetchedIntoOneClone: git not on PATH")
            return
        }
        let harness = try ProcessHarness()
        defer { harness.cleanup() }
        let address = try Self.startCluster(harness, workers: 2, slots: 1)
        let bare = "\(harness.dir)/origin.git"
        let base = try WorkspaceFixtures.makeBareRepository(at: bare)
        let swarm = { (arguments: [String]) throws -> ProcessHarness.RunResult in
            try harness.run(arguments + ["--scheduler", address])
        }
        let nodes = try GitAgents.run(bare: bare, dir: harness.dir, swarm)
        #expect(nodes == ["w1", "w2"], "the agents ran on \(nodes)")
        try GitAgents.fetchAndMerge(bare: bare, base: base, dir: harness.dir, swarm)
        // Each worktree is removed from its worker once the scheduler holds the result.
        for id in GitAgents.ids {
            var gone = false
            for _ in 0..<1_500 {
                gone = (1...2).allSatisfy { !FileManager.default.fileExists(atPath: "\(harness.dir)/w\($0)/work/\(id)") }
                if gone { break }
                usleep(20_000)
            }
            #expect(gone, "the worktree of \(id) is still on its worker")
        }
    }
}
