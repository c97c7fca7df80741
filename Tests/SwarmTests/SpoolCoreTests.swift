import Foundation
import Testing
@testable import SwarmClient
import SwarmProtocol

/// `SpoolCore` with a fake clock: when a request file is taken, what happens to a claimed
/// one, and how the scheduler's answers move it on (issue 18).
@Suite struct SpoolCoreTests {
    static let a = FileStamp(size: 10, mtimeNs: 1_000)
    static let b = FileStamp(size: 20, mtimeNs: 2_000)

    static func claims(_ directives: [SpoolDirective]) -> [String] {
        directives.compactMap { if case .claim(let name, _) = $0 { name } else { nil } }
    }

    static func request(_ id: String = "r1") throws -> SpoolRequest {
        let json = #"{"requestId": "\#(id)", "agentRole": "coder", "task": {"objective": "say hi"}}"#
        return try SpoolRequest.parse(Array(json.utf8), fileName: "\(id).json", mtimeMs: 5, defaults: .init(runtime: "fake"))
    }

    @Test func unchangedFileIsTakenAt500msNot499() {
        var core = SpoolCore()
        #expect(core.handle(.observed("x.json", Self.a), now: 1_000).isEmpty)
        #expect(core.nextDue(now: 1_000) == 1_500)
        #expect(Self.claims(core.handle(.tick, now: 1_499)).isEmpty)
        #expect(Self.claims(core.handle(.observed("x.json", Self.a), now: 1_499)).isEmpty)
        #expect(Self.claims(core.handle(.tick, now: 1_500)) == ["x.json"])
        // Claimed once: not again.
        #expect(Self.claims(core.handle(.tick, now: 3_000)).isEmpty)
    }

    @Test func aChangeRestartsTheQuietPeriod() {
        var core = SpoolCore()
        _ = core.handle(.observed("x.json", Self.a), now: 0)
        _ = core.handle(.observed("x.json", Self.b), now: 400)
        #expect(Self.claims(core.handle(.tick, now: 899)).isEmpty)
        #expect(Self.claims(core.handle(.tick, now: 900)) == ["x.json"])
    }

    @Test func claimAbandonedWhenTheFileChangedStartsOver() {
        var core = SpoolCore()
        _ = core.handle(.observed("x.json", Self.a), now: 0)
        #expect(core.handle(.tick, now: 500) == [.claim("x.json", stamp: Self.a)])
        // The shell found another stamp at the claim: the 500 ms count from now.
        #expect(Self.claims(core.handle(.claimAbandoned("x.json", Self.b), now: 600)).isEmpty)
        #expect(Self.claims(core.handle(.tick, now: 1_099)).isEmpty)
        #expect(Self.claims(core.handle(.tick, now: 1_100)) == ["x.json"])
    }

    @Test func tmpFilesAreNeverTakenAndTheirRenameIsTakenAtOnce() {
        var core = SpoolCore()
        #expect(core.handle(.observed("r.json.tmp", Self.a), now: 0).isEmpty)
        #expect(Self.claims(core.handle(.tick, now: 10_000)).isEmpty)
        // inotify order: the .tmp goes, then the final name appears.
        #expect(core.handle(.observed("r.json.tmp", nil), now: 10_000).isEmpty)
        #expect(Self.claims(core.handle(.observed("r.json", Self.a), now: 10_001)) == ["r.json"])
        // The other order (final first) works too.
        _ = core.handle(.observed("s.json.tmp", Self.a), now: 20_000)
        #expect(Self.claims(core.handle(.observed("s.json", Self.a), now: 20_001)).isEmpty)
        #expect(Self.claims(core.handle(.observed("s.json.tmp", nil), now: 20_002)) == ["s.json"])
    }

    @Test func aRenameOnlyTheRescanSawIsTakenAtOnce() {
        var core = SpoolCore()
        _ = core.handle(.scanned(["t.json.tmp": Self.a], complete: true), now: 0)
        #expect(Self.claims(core.handle(.scanned(["t.json": Self.a], complete: true), now: 1_000)) == ["t.json"])
    }

    @Test func aFinalNameWithoutATmpWaitsTheQuietPeriod() {
        var core = SpoolCore()
        // The .tmp vanished more than renameMemoryMs before the name appeared: no shortcut.
        _ = core.handle(.observed("u.json.tmp", Self.a), now: 0)
        _ = core.handle(.observed("u.json.tmp", nil), now: 1)
        _ = core.handle(.tick, now: 3_000)
        #expect(Self.claims(core.handle(.observed("u.json", Self.a), now: 3_000)).isEmpty)
        #expect(Self.claims(core.handle(.tick, now: 3_500)) == ["u.json"])
    }

    @Test func hiddenFilesAreIgnoredAndVanishedOnesForgotten() {
        var core = SpoolCore()
        _ = core.handle(.observed(".x.swp", Self.a), now: 0)
        _ = core.handle(.observed("gone.json", Self.a), now: 0)
        _ = core.handle(.scanned([:], complete: true), now: 100)
        #expect(Self.claims(core.handle(.tick, now: 5_000)).isEmpty)
    }

    @Test func claimsAreBoundedPerTickAndByRequestsInFlight() {
        var limits = SpoolLimits()
        limits.maxClaimsPerTick = 3
        limits.maxInFlight = 5
        var core = SpoolCore(limits: limits)
        var listing: [String: FileStamp] = [:]
        for i in 0..<10 { listing["f\(i).json"] = Self.a }
        _ = core.handle(.scanned(listing, complete: true), now: 0)
        #expect(Self.claims(core.handle(.tick, now: 500)).count == 3)
        #expect(Self.claims(core.handle(.tick, now: 501)).count == 2)
        // Five reserved: nothing more until one is reported back and finished.
        #expect(Self.claims(core.handle(.tick, now: 502)).isEmpty)
        #expect(core.nextDue(now: 502) == nil)
        // A reservation given back (the file went) makes room for one more at once.
        #expect(Self.claims(core.handle(.claimAbandoned("f0.json", nil), now: 503)).count == 1)
        #expect(Self.claims(core.handle(.tick, now: 504)).isEmpty)
    }

    @Test func requestIsSubmittedWaitedForAndCompleted() throws {
        var core = SpoolCore()
        _ = core.handle(.connected, now: 0)
        let request = try Self.request()
        #expect(core.handle(.read("r1.json", .request(request, resultExists: false), recovered: false), now: 1)
                == [.submit("r1.json", request.spec)])
        #expect(core.handle(.submitted("r1.json"), now: 2) == [.wait("r1.json", id: "r1")])
        var info = TaskInfo(id: "r1", state: .succeeded, command: [], node: "w1", exitCode: 0, attempts: 1,
                            submittedAt: 100, placedAt: 110, startedAt: 130, finishedAt: 1_130, output: "hi\n")
        info.metrics.outputBytes = 3
        let out = core.handle(.ended("r1.json", info), now: 3)
        guard case .complete("r1.json", "r1", let bytes)? = out.first else { Issue.record("no complete: \(out)"); return }
        #expect(bytes == SpoolResult.bytes(for: info, contextChars: 0))
        #expect(core.inFlight == 1)
        _ = core.handle(.completed("r1.json"), now: 4)
        #expect(core.inFlight == 0)
    }

    @Test func badAndReusedRequestsAreRejected() throws {
        var core = SpoolCore()
        _ = core.handle(.connected, now: 0)
        #expect(core.handle(.read("bad.json", .rejected(.init("invalid JSON")), recovered: false), now: 1)
                == [.reject("bad.json", reason: "invalid JSON")])
        let request = try Self.request()
        // Its result exists: a new file reuses the id; after a restart it is its own result.
        let reused = core.handle(.read("a.json", .request(request, resultExists: true), recovered: false), now: 2)
        guard case .reject("a.json", let reason)? = reused.first else { Issue.record("\(reused)"); return }
        #expect(reason.contains("reused id"))
        #expect(core.handle(.read("b.json", .request(request, resultExists: true), recovered: true), now: 3)
                == [.finishExisting("b.json")])
        // Two files in flight with one id: the second is rejected.
        _ = core.handle(.read("c.json", .request(request, resultExists: false), recovered: false), now: 4)
        let second = core.handle(.read("d.json", .request(request, resultExists: false), recovered: false), now: 5)
        guard case .reject("d.json", let why)? = second.first else { Issue.record("\(second)"); return }
        #expect(why.contains("processing/c.json"))
        // The scheduler knows the id with another spec.
        let duplicate = core.handle(.submitFailed("c.json", .duplicateId, "exists"), now: 6)
        guard case .reject("c.json", let dup)? = duplicate.first else { Issue.record("\(duplicate)"); return }
        #expect(dup.hasPrefix("reused id"))
        #expect(core.inFlight == 0)
    }

    @Test func reconnectingSubmitsEverythingUnfinishedAgain() throws {
        var core = SpoolCore()
        let one = try Self.request("r1"), two = try Self.request("r2")
        // Recovered before the connection: held, then submitted once connected.
        #expect(core.handle(.recovering(["r1.json", "r2.json"]), now: 0) == [.read("r1.json"), .read("r2.json")])
        #expect(core.handle(.read("r1.json", .request(one, resultExists: false), recovered: true), now: 1).isEmpty)
        #expect(core.handle(.read("r2.json", .request(two, resultExists: false), recovered: true), now: 1).isEmpty)
        #expect(core.handle(.connected, now: 2) == [.submit("r1.json", one.spec), .submit("r2.json", two.spec)])
        _ = core.handle(.submitted("r1.json"), now: 3)
        _ = core.handle(.disconnected, now: 4)
        #expect(core.handle(.connected, now: 5) == [.submit("r1.json", one.spec), .submit("r2.json", two.spec)])
        // A submit lost with its connection is retried at the next tick.
        _ = core.handle(.submitFailed("r1.json", nil, "lost"), now: 6)
        #expect(core.handle(.tick, now: 7) == [.submit("r1.json", one.spec)])
        // A wait that failed (the scheduler lost the task): submitted again, idempotently.
        _ = core.handle(.submitted("r2.json"), now: 8)
        _ = core.handle(.waitFailed("r2.json", .unknownTask, "unknown"), now: 9)
        #expect(core.handle(.tick, now: 10) == [.submit("r2.json", two.spec)])
    }

    @Test func aFailedResultWriteIsRetried() throws {
        var core = SpoolCore()
        _ = core.handle(.connected, now: 0)
        let request = try Self.request()
        _ = core.handle(.read("r1.json", .request(request, resultExists: false), recovered: false), now: 1)
        _ = core.handle(.submitted("r1.json"), now: 2)
        let info = TaskInfo(id: "r1", state: .failed, command: [], exitCode: 3, attempts: 1, submittedAt: 0, finishedAt: 9)
        let first = core.handle(.ended("r1.json", info), now: 3)
        _ = core.handle(.completeFailed("r1.json"), now: 4)
        #expect(core.handle(.tick, now: 5) == first)
    }
}
