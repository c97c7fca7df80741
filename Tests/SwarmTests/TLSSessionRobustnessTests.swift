import Testing
import SwarmProtocol
@testable import SwarmTransport

/// `TLSSession` against hostile or broken input, with no socket: two sessions hand each other
/// bytes in memory. Records split at every byte boundary still decrypt; garbage, oversized
/// records, a tampered record and random bytes end in one thrown `TLSError` with a reason,
/// never a crash and never plaintext; a truncated handshake waits (the shells' deadlines end
/// it: `HTTPSServerTests`, `InProcessSchedulerTests`).
@Suite struct TLSSessionRobustnessTests {
    /// A seeded generator (SplitMix64): the same bytes on every run.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Feeds `bytes` to `session` in pieces of `step` bytes; the replies and the plaintext.
    static func feed(_ session: TLSSession, _ bytes: [UInt8], step: Int = .max) throws -> (reply: [UInt8], plain: [UInt8]) {
        var reply: [UInt8] = [], plain: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + max(1, min(step, bytes.count)))
            reply += try bytes[offset..<end].withUnsafeBytes { try session.receive($0, plain: &plain) }
            offset = end
        }
        return (reply, plain)
    }

    /// A client and a server session with the handshake done, every flight fed `step` bytes at a time.
    static func established(step: Int = .max) throws -> (client: TLSSession, server: TLSSession) {
        let client = try TLSSession(context: try TLSTransportTests.client())
        let server = try TLSSession(context: try TLSTransportTests.server())
        var toServer = try client.start()
        var rounds = 0
        while !(client.isEstablished && server.isEstablished) && rounds < 10 {
            rounds += 1
            let toClient = try feed(server, toServer, step: step).reply
            toServer = try feed(client, toClient, step: step).reply
        }
        #expect(client.isEstablished && server.isEstablished)
        return (client, server)
    }

    @Test func aDripFedHandshakeAndRecordsSplitAtEveryByteStillWork() throws {
        let (client, server) = try Self.established(step: 1)
        let message = Array("one frame's worth of plaintext".utf8)
        let sample = try client.seal(message)
        #expect(try Self.feed(server, sample).plain == message)
        // Every split point of a record: the first part alone gives nothing, both give it whole.
        for split in 0...sample.count {
            let record = try client.seal(message)
            #expect(record.count == sample.count)
            let first = try Self.feed(server, Array(record[..<split]))
            #expect(split == record.count || first.plain.isEmpty)
            let second = try Self.feed(server, Array(record[split...]))
            #expect(first.plain + second.plain == message, "split at \(split)")
        }
        // And one byte at a time, both ways.
        let back = try Self.feed(client, try server.seal(message), step: 1)
        #expect(back.plain == message)
    }

    @Test func garbageOversizedAndTamperedRecordsAreOneErrorEach() throws {
        // A record header claiming more than TLS 1.3 allows (2^14 + 256 bytes of ciphertext).
        do {
            let (_, server) = try Self.established()
            let header: [UInt8] = [0x17, 0x03, 0x03, 0x48, 0x01]
            #expect(throws: TLSError.self) { _ = try Self.feed(server, header + [UInt8](repeating: 0, count: 64)) }
        }
        // An unknown content type.
        do {
            let (_, server) = try Self.established()
            let error = #expect(throws: TLSError.self) { _ = try Self.feed(server, [0x42, 0x03, 0x03, 0x00, 0x10] + [UInt8](repeating: 7, count: 16)) }
            #expect(error?.description.isEmpty == false)
        }
        // A flipped byte: the record does not authenticate, nothing of it comes out.
        do {
            let (client, server) = try Self.established()
            var record = try client.seal(Array("assign: run this".utf8))
            record[record.count - 3] ^= 0x01
            var plain: [UInt8] = []
            let error = #expect(throws: TLSError.self) { _ = try record.withUnsafeBytes { try server.receive($0, plain: &plain) } }
            #expect(plain.isEmpty)
            #expect(error?.description.contains("TLS record rejected") == true)
            // Whatever comes after on that session is refused too: the connection is over.
            #expect(throws: TLSError.self) { _ = try Self.feed(server, try client.seal([1, 2, 3])) }
        }
    }

    @Test func aTruncatedHandshakeWaitsWithoutOutputOrError() throws {
        let client = try TLSSession(context: try TLSTransportTests.client())
        let server = try TLSSession(context: try TLSTransportTests.server())
        let hello = try client.start()
        #expect(hello.count > 10)
        let half = try Self.feed(server, Array(hello[..<(hello.count / 2)]))
        #expect(half.reply.isEmpty && half.plain.isEmpty)
        #expect(!server.isEstablished && !server.handshakeFailed)
        // The rest completes it: nothing was lost by waiting.
        let rest = try Self.feed(server, Array(hello[(hello.count / 2)...]))
        #expect(!rest.reply.isEmpty)
    }

    /// Random bytes into a server's handshake and into an established session's records (500
    /// runs each, seeded): each run ends in a thrown error with a reason, or (a run shorter
    /// than one record) waits; none crashes, none yields plaintext. 17 KiB is more than the
    /// largest record, so a run of that length must have thrown.
    @Test func randomBytesEndInOneErrorAndNeverInPlaintext() throws {
        var random = Seeded(state: 16)
        var thrown = 0
        for run in 0..<1_000 {
            let established = run % 2 == 1
            let session = established ? try Self.established().server : try TLSSession(context: try TLSTransportTests.server())
            let count = run % 10 == 0 ? 17 * 1_024 : Int.random(in: 1...2_048, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Half the runs look like a record at first (so the bytes get past the first check).
            if run % 4 < 2 { bytes.replaceSubrange(0..<min(3, count), with: [established ? 0x17 : 0x16, 0x03, 0x03].prefix(count)) }
            let step = [1, 7, 512, Int.max][run % 4]
            do {
                let out = try Self.feed(session, bytes, step: step)
                #expect(out.plain.isEmpty, "run \(run)")
                #expect(count < 17 * 1_024, "run \(run): \(count) random bytes and no error")
            } catch {
                thrown += 1
                #expect(!"\(error)".isEmpty)
                // Once failed, it stays failed.
                #expect(throws: TLSError.self) { _ = try Self.feed(session, [0x17, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 1, count: 32)) }
            }
        }
        #expect(thrown > 500)
    }
}
