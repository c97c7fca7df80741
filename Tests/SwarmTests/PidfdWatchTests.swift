import Foundation
import Testing
@testable import SwarmUV
#if canImport(Glibc)
import Glibc
#endif

/// The loop's shared pidfd watch (`PidfdWatch`) and the cached `PATH` lookup
/// (`ExecutableCache`) behind `UVProcess.spawn`.
@Suite struct PidfdWatchTests {
    @Test func cacheAnswersWithinItsLifetimeOnly() {
        var cache = ExecutableCache()
        let key = ExecutableCache.Key(file: "true", searchPath: "/usr/bin:/bin")
        #expect(cache.lookup(key, nowMs: 10) == nil)
        cache.store(key, path: "/usr/bin/true", nowMs: 10)
        #expect(cache.lookup(key, nowMs: 10) == "/usr/bin/true")
        #expect(cache.lookup(key, nowMs: 10 + ExecutableCache.ttlMs - 1) == "/usr/bin/true")
        #expect(cache.lookup(key, nowMs: 10 + ExecutableCache.ttlMs) == nil)
        // Another loop's clock read earlier than the store: not trusted either.
        #expect(cache.lookup(key, nowMs: 9) == nil)
        // Another PATH is another key.
        #expect(cache.lookup(.init(file: "true", searchPath: "/bin"), nowMs: 10) == nil)
        cache.forget(key)
        #expect(cache.lookup(key, nowMs: 11) == nil)
    }

    @Test func cacheIsBoundedAndSkipsRelativePaths() {
        var cache = ExecutableCache()
        for i in 0..<ExecutableCache.capacity {
            cache.store(.init(file: "p\(i)", searchPath: "/bin"), path: "/bin/p\(i)", nowMs: 0)
        }
        #expect(cache.count == ExecutableCache.capacity)
        cache.store(.init(file: "one-more", searchPath: "/bin"), path: "/bin/one-more", nowMs: 0)
        #expect(cache.count == 1)
        #expect(ExecutableCache.cacheable("/usr/bin:/bin"))
        #expect(!ExecutableCache.cacheable("/usr/bin::/bin"))   // an empty entry is "."
        #expect(!ExecutableCache.cacheable("bin:/usr/bin"))
    }

    /// A name cached at one path that is then removed is searched again at once: the spawn
    /// finds it where it is now (without the retry it would fail "not found" for a second).
    @Test func aCachedProgramThatMovedIsFoundAgain() throws {
        let loop = EventLoop()
        let base = NSTemporaryDirectory() + "swarm-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let first = base + "/a", second = base + "/b"
        try FileManager.default.createDirectory(atPath: first, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let name = "moved-program-\(getpid())"
        #expect(symlink("/bin/true", "\(second)/\(name)") == 0)
        var options = SpawnOptions(executable: name, arguments: [])
        options.environment = ["PATH=\(first):\(second)"]
        func runOnce() throws -> Int64? {
            var exit: Int64?
            let process = try UVProcess.spawn(loop: loop, options) { status, _ in exit = status }
            #expect(runLoop(loop, timeoutMs: 10_000) { exit != nil })
            process.close()
            return exit
        }
        #expect(try runOnce() == 0)
        #expect(ExecutableLookup.cache.withLock { $0.lookup(.init(file: name, searchPath: "\(first):\(second)"), nowMs: loop.nowMs) }
                == "\(second)/\(name)")
        #expect(unlink("\(second)/\(name)") == 0)
        #expect(symlink("/bin/true", "\(first)/\(name)") == 0)
        #expect(try runOnce() == 0)
        #expect(ExecutableLookup.cache.withLock { $0.lookup(.init(file: name, searchPath: "\(first):\(second)"), nowMs: loop.nowMs) }
                == "\(first)/\(name)")
        // Gone everywhere: not found, and nothing left cached.
        #expect(unlink("\(first)/\(name)") == 0)
        #expect(throws: UVError.notFound) { _ = try runOnce() }
        try closeLoopCheckingLeaks(loop)
    }

    /// A running child keeps the loop alive, as a libuv handle would; once it exited (or was
    /// closed) nothing of the watch does. (`runOnce` blocks while anything referenced is
    /// left, so it returns here only by the child's exit.)
    @Test func aWatchedChildKeepsTheLoopAliveUntilItExits() throws {
        let loop = EventLoop()
        var exit: (Int64, Int32)?
        let process = try UVProcess.spawn(loop: loop, SpawnOptions(executable: "sh", arguments: ["-c", "sleep 0.2; exit 3"])) {
            exit = ($0, $1)
        }
        #expect(loop.runNoWait())  // alive: the child runs
        #expect(runLoop(loop, timeoutMs: 10_000) { exit != nil })
        #expect(exit?.0 == 3 && exit?.1 == 0)
        #expect(loop.pidfdWatch?.watchedCount == 0)
        #expect(!loop.runNoWait())  // nothing keeps it alive any more
        process.close()
        // A closed child is not watched either, even before it exits.
        let sleeper = try UVProcess.spawn(loop: loop, SpawnOptions(executable: "sleep", arguments: ["30"])) { _, _ in }
        #expect(loop.pidfdWatch?.watchedCount == 1)
        #expect(loop.runNoWait())
        try sleeper.signal(SIGKILL)
        sleeper.close()
        #expect(loop.pidfdWatch?.watchedCount == 0)
        #expect(!loop.runNoWait())
        var status: Int32 = 0
        #expect(waitpid(sleeper.pid, &status, 0) == sleeper.pid)
        try closeLoopCheckingLeaks(loop)
    }

    /// Exits that land together are each reported once, through one watch.
    @Test func childrenExitingTogetherAreEachReportedOnce() throws {
        let loop = EventLoop()
        var exits: [Int32: Int] = [:]
        var processes: [UVProcess] = []
        for i in 0..<100 {
            let code = Int64(i % 7)
            let process = try UVProcess.spawn(loop: loop, SpawnOptions(executable: "sh", arguments: ["-c", "exit \(code)"])) {
                status, _ in
                #expect(status == code)
                exits[Int32(code), default: 0] += 1
            }
            processes.append(process)
        }
        #expect(runLoop(loop, timeoutMs: 30_000) { exits.values.reduce(0, +) == 100 })
        #expect(exits.values.reduce(0, +) == 100)
        for process in processes { process.close() }
        #expect(loop.pidfdWatch?.watchedCount == 0)
        try closeLoopCheckingLeaks(loop)
    }

    @Test func aProcessNeverClosedIsReportedAsALeak() throws {
        let loop = EventLoop()
        var exited = false
        let process = try UVProcess.spawn(loop: loop, SpawnOptions(executable: "true", arguments: [])) { _, _ in exited = true }
        #expect(runLoop(loop, timeoutMs: 10_000) { exited })
        for _ in 0..<10 { loop.runNoWait() }
        #expect(throws: LoopCloseError.self) { try loop.close() }
        withExtendedLifetime(process) {}
    }
}
