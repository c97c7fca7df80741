import Foundation
import Testing
import Logging
import SwarmClient
@testable import SwarmScheduler
import SwarmProtocol

/// Issue 10, item 9: strangers holding handshake slots cannot lock anyone out.
@Suite struct HandshakeAdmissionTests {
    typealias Admission = HandshakeAdmission<Int>

    static func limits() -> Admission.Limits {
        var limits = Admission.Limits()
        limits.maxPending = 8
        limits.maxPerAddress = 4
        limits.pressureAt = 6
        limits.deadlineMs = 10_000
        limits.pressureDeadlineMs = 2_000
        limits.promptMs = 1_000
        return limits
    }

    @Test func theDefaultsAreTheDocumentedNumbers() {
        let limits = Admission.Limits()
        #expect(limits.maxPending == 1_024 && limits.maxPerAddress == 128 && limits.pressureAt == 512)
        #expect(limits.deadlineMs == 10_000 && limits.pressureDeadlineMs == 2_000 && limits.promptMs == 1_000)
    }

    @Test func oneAddressHoldsAtMostItsCapAndItsOldestStaleHandshakeMakesRoom() {
        var admission = Admission(limits: Self.limits())
        for key in 0..<4 { #expect(admission.accept(key, address: "a", nowMs: 0) == .admit) }
        // At the cap, all younger than promptMs: the newcomer is refused (its own address's doing).
        guard case .refuse(let reason) = admission.accept(4, address: "a", nowMs: 999) else {
            Issue.record("expected a refusal"); return
        }
        #expect(reason.contains("4 connections from a"))
        // At promptMs the oldest may be evicted: the newcomer takes its slot.
        #expect(admission.accept(5, address: "a", nowMs: 1_000) == .admitEvicting(0))
        #expect(admission.pendingCount(address: "a") == 4)
        // Another address is not affected by a's cap.
        #expect(admission.accept(6, address: "b", nowMs: 1_000) == .admit)
    }

    @Test func atTheTotalLimitTheAddressHoldingTheMostGivesUpItsOldest() {
        var admission = Admission(limits: Self.limits())
        for key in 0..<4 { _ = admission.accept(key, address: "crowd", nowMs: UInt64(key)) }
        for key in 4..<7 { _ = admission.accept(key, address: "x\(key)", nowMs: 0) }
        #expect(admission.accept(7, address: "y", nowMs: 10) == .admit)   // 8 of 8
        #expect(admission.pendingCount == 8)
        // Full, every handshake younger than promptMs: nobody may be evicted yet.
        if case .refuse = admission.accept(8, address: "z", nowMs: 999) {} else { Issue.record("expected a refusal") }
        // Once stale, the crowd's oldest goes, not a lone peer's.
        #expect(admission.accept(9, address: "z", nowMs: 1_000) == .admitEvicting(0))
        #expect(admission.pendingCount == 8)
        #expect(admission.pendingCount(address: "crowd") == 3)
    }

    @Test func aPromptPeerIsNeverEvicted() {
        var admission = Admission(limits: Self.limits())
        _ = admission.accept(100, address: "a", nowMs: 5_000)          // the real client
        for key in 0..<7 { _ = admission.accept(key, address: "a\(key % 2)", nowMs: 0) }
        // Strangers keep coming; the client's handshake is young: only strangers are evicted.
        for key in 7..<50 {
            let decision = admission.accept(key, address: "a\(key % 2)", nowMs: 5_999)
            #expect(decision != .admitEvicting(100))
        }
        admission.finished(100)   // done promptly
        #expect(admission.pendingCount <= 8)
    }

    @Test func theDeadlineShrinksUnderPressure() {
        var admission = Admission(limits: Self.limits())
        for key in 0..<5 { _ = admission.accept(key, address: "k\(key)", nowMs: 0) }
        #expect(admission.deadlineMs == 10_000)
        #expect(admission.expired(nowMs: 2_001).isEmpty)
        _ = admission.accept(5, address: "k5", nowMs: 0)   // 6 pending: pressure
        #expect(admission.deadlineMs == 2_000)
        #expect(admission.expired(nowMs: 2_000).isEmpty)
        #expect(Set(admission.expired(nowMs: 2_001)) == Set(0..<6))
        admission.finished(5)
        #expect(admission.deadlineMs == 10_000)
        admission.finished(42)  // unknown: no effect
        #expect(admission.pendingCount == 5)
    }

    /// The issue's reproduction, scaled down: idle connections fill the slots (all from one
    /// address, loopback), yet a real client gets through, and then again after more arrive.
    @Test func aRealClientGetsThroughManyIdleConnections() throws {
        var config = SchedulerConfig()
        config.maxPendingHandshakes = 64
        config.maxPendingHandshakesPerAddress = 16
        config.handshakePressureAt = 32
        let scheduler = InProcessScheduler(config)
        defer { #expect(scheduler.stop() == nil) }
        var idle: [RawSocket] = []
        for _ in 0..<200 { if let socket = try? RawSocket(port: scheduler.port) { idle.append(socket) } }
        usleep(1_100_000)   // the idle ones are now older than promptMs
        var served = 0
        for _ in 0..<5 {
            let client = try SwarmClient(address: scheduler.address, token: nil, name: "real")
            if (try? client.listNodes()) != nil { served += 1 }
        }
        #expect(served == 5)
        let pending = scheduler.onLoop { $0.pendingHandshakes } ?? -1
        #expect(pending <= 16)
        _ = idle
    }
}
