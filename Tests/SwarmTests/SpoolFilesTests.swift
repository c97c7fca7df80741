import Foundation
import Testing
@testable import SwarmClient

/// The spool's file work: nothing overwritten, nothing read past its bound.
@Suite struct SpoolFilesTests {
    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "swarm-spoolfiles-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/to", withIntermediateDirectories: true)
        return dir
    }

    @Test func aTakenNameGetsASuffixInsteadOfBeingOverwritten() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for text in ["one", "two", "three"] {
            FileManager.default.createFile(atPath: dir + "/x.json", contents: Data(text.utf8))
            _ = try SpoolFiles.move(dir + "/x.json", into: dir + "/to", as: "x.json")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/to").sorted() == ["x.json", "x.json~2", "x.json~3"])
        #expect(try String(contentsOfFile: dir + "/to/x.json", encoding: .utf8) == "one")
        #expect(try String(contentsOfFile: dir + "/to/x.json~3", encoding: .utf8) == "three")
    }

    @Test func anAtomicWriteNeverReplacesAnExistingResult() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try SpoolFiles.writeAtomically(Array("first".utf8), dir: dir, name: "r.json"))
        #expect(try !SpoolFiles.writeAtomically(Array("second".utf8), dir: dir, name: "r.json"))
        #expect(try String(contentsOfFile: dir + "/r.json", encoding: .utf8) == "first")
        // No temporary file is left behind either way.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["r.json", "to"])
    }

    @Test func readsStopPastTheirBoundAndStampsSeeOnlyRegularFiles() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/big", contents: Data(repeating: 0x61, count: 100))
        #expect(try SpoolFiles.read(dir + "/big", max: 99) == nil)
        #expect(try SpoolFiles.read(dir + "/big", max: 100)?.count == 100)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/big")
        #expect(SpoolFiles.stamp(dir + "/big")?.size == 100)
        #expect(SpoolFiles.stamp(dir + "/link") == nil && SpoolFiles.stamp(dir + "/to") == nil)
        let listing = SpoolFiles.list(dir, max: 10)
        #expect(listing.complete && Array(listing.files.keys) == ["big"])
        #expect(SpoolFiles.list(dir, max: 0).complete == false)
    }

    /// Whoever can write in the spool's directory can plant a link at the temporary name a
    /// result is written under (`.NAME.PID.tmp`: the pid is no secret): the write must not
    /// follow it into a file elsewhere.
    @Test func anAtomicWriteNeverWritesThroughALinkPlantedAtItsTemporaryName() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/victim", contents: Data("keep".utf8))
        try FileManager.default.createSymbolicLink(atPath: dir + "/to/.r.json.\(getpid()).tmp", withDestinationPath: dir + "/victim")
        #expect(try SpoolFiles.writeAtomically(Array("result".utf8), dir: dir + "/to", name: "r.json"))
        #expect(try String(contentsOfFile: dir + "/victim", encoding: .utf8) == "keep")
        #expect(try String(contentsOfFile: dir + "/to/r.json", encoding: .utf8) == "result")
    }

    /// A request swapped for a FIFO between its check and its open must not block the spool
    /// (an open of a FIFO waits for a writer): the read fails at once instead.
    @Test func aReadOfAFIFOFailsInsteadOfWaitingForAWriter() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/req.json"
        #expect(mkfifo(fifo, 0o600) == 0)
        let done = DispatchSemaphore(value: 0)
        let outcome = LockedBox<String>("")
        Thread.detachNewThread {
            do { _ = try SpoolFiles.read(fifo, max: 100); outcome.set("read") } catch { outcome.set("failed") }
            done.signal()
        }
        let returned = done.wait(timeout: .now() + 2) == .success
        if !returned {
            // Unblock the read so the thread ends, then fail.
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 2)
        }
        #expect(returned)
        #expect(outcome.get() == "failed")
    }
}

/// A value shared with one background thread.
private final class LockedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ new: T) { lock.lock(); value = new; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
