import Foundation
import Testing
@testable import SwarmNode

/// When a worker takes a task, without a disk (`DiskRoom`).
@Suite struct DiskRoomTests {
    @Test func aWorkerTakesATaskOnlyWithItsReserveFree() {
        let room = DiskRoom(reserveBytes: 1 << 20)
        #expect(room.problem(.init(bytes: 1 << 20, files: 1_000), directory: "/d", worker: "w") == nil)
        let short = room.problem(.init(bytes: (1 << 20) - 1, files: 1_000), directory: "/d", worker: "w")
        #expect(short == "no space left on device in /d on worker w (1023 KiB free; a task needs 1 MiB to start)")
        let none = room.problem(.init(bytes: 0, files: 1_000), directory: "/d", worker: "w")
        #expect(none?.contains("(0 bytes free;") == true)
        let inodes = room.problem(.init(bytes: 1 << 30, files: 3), directory: "/d", worker: "w")
        #expect(inodes == "no space left on device in /d on worker w (3 free inodes; a task needs \(DiskRoom.reserveFiles))")
        // A file system without an inode count, or one that could not be measured, is no reason.
        #expect(room.problem(.init(bytes: 1 << 30, files: nil), directory: "/d", worker: "w") == nil)
        #expect(room.problem(nil, directory: "/d", worker: "w") == nil)
    }

    @Test func aWorkerLogsFillingAndFreeingOnceEach() {
        var room = DiskRoom()
        #expect(room.observe(nil) == nil)
        #expect(room.observe("full") == .filled(problem: "full"))
        #expect(room.observe("still full") == nil)
        #expect(room.full)
        #expect(room.observe(nil) == .freed)
        #expect(room.observe(nil) == nil)
        #expect(!room.full)
    }

    @Test func sizesReadAsPeopleWriteThem() {
        #expect(DiskRoom.bytes(512) == "512 bytes")
        #expect(DiskRoom.bytes(12 * 1024 + 5) == "12 KiB")
        #expect(DiskRoom.bytes(1 << 20) == "1 MiB")
        #expect(DiskRoom.bytes(3 << 19) == "1.5 MiB")
    }
}


/// A real `swarm worker` on a small tmpfs that fills up (issue 12, item 5).
@Suite struct WorkerDiskFullEndToEndTests {
    typealias E = EndToEndTests

    /// A worker's data dir fills up: a task running then still delivers its result (from
    /// memory), tasks assigned meanwhile end `spawn_failed` saying so, the worker stays
    /// connected, and tasks run again once there is room.
    @Test(.enabled(if: TmpfsMount.available, "needs to mount a tmpfs (root)"))
    func workerWithAFullDataDirFailsTasksSayingSoStaysUpAndRecovers() throws {
        let harness = try ProcessHarness()
        let mount = try TmpfsMount(bytes: 8 << 20)
        defer { harness.cleanup(); mount.unmount() }
        let dataDir = mount.path + "/w1"
        let address = try E.startScheduler(harness)
        let worker = try harness.start("worker", ["worker", "--scheduler", address, "--slots", "2", "--name", "w1",
                                                  "--data-dir", dataDir])
        _ = try E.waitForNodes(harness, address, count: 1)

        func submit(_ id: String, _ script: String) throws {
            let r = try harness.run(["submit", "--scheduler", address, "--id", id, "--", "sh", "-c", script, harness.marker])
            #expect(r.status == 0, "submit \(id): \(r.stderr)")
        }
        func ended(_ id: String) throws -> [String: Any] {
            let wait = try harness.run(["wait", "--scheduler", address, "--json", "--timeout", "20", id])
            return try #require((try JSONSerialization.jsonObject(with: Data(wait.stdout.utf8)) as? [[String: Any]])?.first,
                                "wait \(id): \(wait.stderr)")
        }

        try submit("before", "echo before")
        #expect(try ended("before")["state"] as? String == "succeeded")

        // Runs until the disk is full (bounded: 20 s), so its result is written after that.
        // It prints 20 KB first: its result record (output tail included) is larger than what
        // is left of the run journal's last page, so appending it fails on the full disk.
        let go = "\(harness.dir)/go"
        try submit("during", "head -c 20000 /dev/zero | tr '\\0' x; echo; i=0; while [ ! -e \(go) ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo during")
        try E.waitStarted(harness, address, "during")
        try mount.fill()
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        let during = try ended("during")
        #expect(during["state"] as? String == "succeeded")
        #expect((during["output"] as? String)?.contains("during") == true)

        try submit("full", "echo full")
        let full = try ended("full")
        #expect(full["state"] as? String == "spawn_failed")
        let reason = full["reason"] as? String ?? ""
        #expect(reason.hasPrefix("no space left on device in \(dataDir) on worker w1"), "\(reason)")

        let nodes = try E.waitForNodes(harness, address, count: 1)
        #expect(nodes.first?["name"] as? String == "w1")
        #expect(worker.process.isRunning)

        mount.free()
        try submit("after", "echo after")
        let after = try ended("after")
        #expect(after["state"] as? String == "succeeded")
        #expect((after["output"] as? String)?.contains("after") == true)

        let log = (try? String(contentsOfFile: "\(harness.dir)/worker.log", encoding: .utf8)) ?? ""
        #expect(log.contains("result of task during attempt 1 (succeeded) is kept in memory only"), "\(log)")
        #expect(log.components(separatedBy: "tasks assigned here end spawn_failed until there is room").count == 2, "\(log)")
        #expect(log.contains("room again in the data dir of worker w1"), "\(log)")
    }
}
