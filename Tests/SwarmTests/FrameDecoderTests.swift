import Testing
@testable import SwarmProtocol

/// Pure tests of `Frame` and `FrameDecoder`: bytes in, payloads out, no sockets.
@Suite struct FrameDecoderTests {
    /// Payloads of different sizes (1 byte, a few bytes, 300 bytes so the length needs two
    /// header bytes, and 70 000 bytes so it needs three), each with distinct content.
    static let payloads: [[UInt8]] = [
        [0x7B],
        Array("{\"type\":\"x\"}".utf8),
        (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) },
        [0x41, 0x42],
        (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 3) },
    ]

    static var stream: [UInt8] { payloads.flatMap { Frame.encode($0) } }

    /// Feeds `chunks` one after the other, draining after each, and returns every payload.
    private func decode(_ chunks: [ArraySlice<UInt8>], maxPayload: Int = Frame.defaultMaxPayload) throws -> [[UInt8]] {
        var decoder = FrameDecoder(maxPayload: maxPayload)
        var out: [[UInt8]] = []
        for chunk in chunks {
            decoder.feed(chunk)
            out += try decoder.drain()
        }
        #expect(decoder.bufferedByteCount == 0)
        return out
    }

    @Test func encodeWritesBigEndianLengthThenPayload() {
        #expect(Frame.encode([0xAA, 0xBB, 0xCC]) == [0, 0, 0, 3, 0xAA, 0xBB, 0xCC])
        let big = [UInt8](repeating: 9, count: 0x01_02_03)
        let encoded = Frame.encode(big)
        #expect(Array(encoded.prefix(4)) == [0x00, 0x01, 0x02, 0x03])
        #expect(encoded.count == 4 + 0x01_02_03)
        #expect(Array(encoded.dropFirst(4)) == big)
    }

    @Test func encodeRoundTripsThroughDecoder() throws {
        let payload = Array("{\"type\":\"listTasks\",\"requestId\":7}".utf8)
        var decoder = FrameDecoder()
        decoder.feed(Frame.encode(payload))
        #expect(try decoder.next() == payload)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func wholeStreamInOneChunkGivesEveryFrameInOrder() throws {
        let frames = try decode([Self.stream[...]])
        #expect(frames == Self.payloads)
    }

    @Test func everySingleSplitPointGivesIdenticalFrames() throws {
        // The big frame makes each split O(n); keep the stream for this test smaller but still
        // covering 1-, 2- and 3-byte lengths and frame boundaries falling inside headers.
        let payloads: [[UInt8]] = [
            [0x01], Array("hello".utf8), (0..<300).map { UInt8(truncatingIfNeeded: $0) }, [0xFE, 0xFF],
        ]
        let stream = payloads.flatMap { Frame.encode($0) }
        #expect(stream.count == 5 + 9 + 304 + 6)
        for split in 0...stream.count {
            let frames = try decode([stream[..<split], stream[split...]])
            #expect(frames == payloads, "split at \(split)")
        }
    }

    @Test func splitPointsAroundTheLargeFrameGiveIdenticalFrames() throws {
        let stream = Self.stream
        // Split points around every frame boundary and inside each header.
        var boundaries: [Int] = [0]
        for p in Self.payloads { boundaries.append(boundaries.last! + 4 + p.count) }
        var splits = Set<Int>()
        for b in boundaries { for d in -5...5 where b + d >= 0 && b + d <= stream.count { splits.insert(b + d) } }
        for split in splits.sorted() {
            let frames = try decode([stream[..<split], stream[split...]])
            #expect(frames == Self.payloads, "split at \(split)")
        }
    }

    @Test func oneByteAtATime() throws {
        let payloads: [[UInt8]] = [[0x10], Array("abcdef".utf8), (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 13) }]
        let stream = payloads.flatMap { Frame.encode($0) }
        var decoder = FrameDecoder()
        var out: [[UInt8]] = []
        var completedAt: [Int] = []
        for (i, byte) in stream.enumerated() {
            decoder.feed([byte])
            while let frame = try decoder.next() {
                out.append(frame)
                completedAt.append(i)
            }
        }
        #expect(out == payloads)
        // Each frame comes out exactly when its last byte arrives.
        #expect(completedAt == [4, 4 + 10, stream.count - 1])
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func manyFramesInOneChunk() throws {
        let payloads = (1...500).map { n in (0..<n % 37 + 1).map { UInt8(truncatingIfNeeded: n &+ $0) } }
        var decoder = FrameDecoder()
        decoder.feed(payloads.flatMap { Frame.encode($0) })
        let frames = try decoder.drain()
        #expect(frames.count == 500)
        #expect(frames == payloads)
        #expect(try decoder.next() == nil)
    }

    @Test func partialFrameIsHeldUntilComplete() throws {
        var decoder = FrameDecoder()
        let frame = Frame.encode(Array("xyz".utf8))
        decoder.feed(frame.prefix(5))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 5)
        decoder.feed(frame.dropFirst(5))
        #expect(try decoder.next() == Array("xyz".utf8))
    }

    @Test func zeroLengthIsRejected() {
        var decoder = FrameDecoder()
        decoder.feed([0, 0, 0, 0])
        #expect(throws: FrameError.zeroLength) { try decoder.next() }
    }

    @Test func zeroLengthAfterAGoodFrameIsRejectedAfterTheGoodFrame() throws {
        var decoder = FrameDecoder()
        decoder.feed(Frame.encode([0x31]) + [0, 0, 0, 0] + Frame.encode([0x32]))
        #expect(try decoder.next() == [0x31])
        #expect(throws: FrameError.zeroLength) { try decoder.next() }
    }

    @Test func hugeLengthIsRejectedFromTheHeaderAlone() {
        var decoder = FrameDecoder()
        decoder.feed([0x80, 0x00, 0x00, 0x00])
        #expect(throws: FrameError.tooLarge(length: 0x8000_0000, limit: Frame.defaultMaxPayload)) {
            try decoder.next()
        }
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func incompleteHeaderIsNotAnErrorYet() throws {
        var decoder = FrameDecoder()
        decoder.feed([0x80, 0x00, 0x00])
        #expect(try decoder.next() == nil)
        decoder.feed([0x00])
        #expect(throws: FrameError.tooLarge(length: 0x8000_0000, limit: Frame.defaultMaxPayload)) {
            try decoder.next()
        }
    }

    @Test func lengthJustAtTheDefaultLimitIsAcceptedAndWaitsForPayload() throws {
        var decoder = FrameDecoder()
        let limit = UInt32(Frame.defaultMaxPayload)
        decoder.feed([UInt8(limit >> 24), UInt8(limit >> 16 & 0xFF), UInt8(limit >> 8 & 0xFF), UInt8(limit & 0xFF)])
        #expect(try decoder.next() == nil)
        var over = FrameDecoder()
        let l = limit + 1
        over.feed([UInt8(l >> 24), UInt8(l >> 16 & 0xFF), UInt8(l >> 8 & 0xFF), UInt8(l & 0xFF)])
        #expect(throws: FrameError.tooLarge(length: l, limit: Frame.defaultMaxPayload)) { try over.next() }
    }

    @Test func decoderStaysFailedAfterAnError() throws {
        var decoder = FrameDecoder()
        decoder.feed([0, 0, 0, 0])
        #expect(throws: FrameError.zeroLength) { try decoder.next() }
        // Good bytes afterwards change nothing: the frame boundary is lost for good.
        decoder.feed(Frame.encode(Array("ok".utf8)))
        #expect(decoder.bufferedByteCount == 0)
        #expect(throws: FrameError.zeroLength) { try decoder.next() }
        #expect(throws: FrameError.zeroLength) { try decoder.drain() }
    }

    @Test func customSmallMaxPayload() throws {
        var decoder = FrameDecoder(maxPayload: 8)
        #expect(decoder.maxPayload == 8)
        decoder.feed(Frame.encode([UInt8](repeating: 1, count: 8)))
        #expect(try decoder.next() == [UInt8](repeating: 1, count: 8))
        decoder.feed([0, 0, 0, 9])
        #expect(throws: FrameError.tooLarge(length: 9, limit: 8)) { try decoder.next() }
        #expect(throws: FrameError.tooLarge(length: 9, limit: 8)) { try decoder.next() }
    }

    @Test func errorDescriptionsNameTheNumbers() {
        #expect(FrameError.tooLarge(length: 9, limit: 8).description == "frame length 9 exceeds the limit of 8 bytes")
        #expect(FrameError.zeroLength.description.contains("0"))
    }

    @Test func rawBufferFeedMatchesArrayFeed() throws {
        let bytes = Frame.encode(Array("raw".utf8)) + Frame.encode([0x00])
        var decoder = FrameDecoder()
        bytes.withUnsafeBytes { decoder.feed($0) }
        #expect(try decoder.drain() == [Array("raw".utf8), [0x00]])
    }
}
