import Testing
@testable import SwarmProtocol

/// Pure tests of the `blobChunk` pairing: frames in (fed a byte at a time), messages out.
@Suite struct MessageAssemblerTests {
    static let sha = BlobHash.of(Array(0..<200).map { UInt8($0) })

    static func chunk(offset: Int64 = 0, total: Int64 = 200, data: [UInt8]) -> Message.BlobChunk {
        .init(requestId: 7, sha256: sha, offset: offset, total: total, data: data)
    }

    /// Decodes `bytes` fed one byte at a time; returns the messages and the error ending it.
    static func dripFeed(_ bytes: [UInt8]) -> (messages: [Message], error: MessageAssembler.Failure?) {
        var decoder = FrameDecoder()
        var assembler = MessageAssembler()
        var out: [Message] = []
        for byte in bytes {
            decoder.feed([byte])
            do {
                while let payload = try decoder.next() {
                    if case .message(let m) = try assembler.receive(payload) { out.append(m) }
                }
            } catch let error as MessageAssembler.Failure {
                return (out, error)
            } catch {
                return (out, .chunk(ChunkError("\(error)")))
            }
        }
        return (out, nil)
    }

    @Test func chunksAndMessagesSurviveADripFeed() {
        let data = Array(0..<200).map { UInt8($0) }
        var stream = MessageCodec.frame(.blobGet(.init(requestId: 1, sha256: Self.sha)))
        stream += MessageAssembler.frames(Self.chunk(data: Array(data[0..<120])))
        // A chunk's raw frame may look like JSON, or like a frame header: it is data all the same.
        let jsonLooking = Array(#"{"type":"blobStored","requestId":7,"sha256":"x"}"#.utf8)
        stream += MessageAssembler.frames(Self.chunk(offset: 120, total: 120 + Int64(jsonLooking.count), data: jsonLooking))
        stream += MessageCodec.frame(.blobStored(.init(requestId: 7, sha256: Self.sha)))
        let (messages, error) = Self.dripFeed(stream)
        #expect(error == nil)
        #expect(messages.count == 4)
        guard messages.count == 4, case .blobChunk(let first) = messages[1], case .blobChunk(let second) = messages[2] else { return }
        #expect(first.data == Array(data[0..<120]) && first.length == 120 && first.offset == 0)
        #expect(second.data == jsonLooking)
        #expect(messages[3] == .blobStored(.init(requestId: 7, sha256: Self.sha)))
    }

    @Test func anEmptyBlobsChunkHasNoRawFrame() {
        let empty = BlobHash.of([])
        let frames = MessageAssembler.frames(.init(requestId: 1, sha256: empty, offset: 0, total: 0, data: []))
        let (messages, error) = Self.dripFeed(frames + MessageCodec.frame(.blobGet(.init(requestId: 2, sha256: empty))))
        #expect(error == nil)
        #expect(messages.count == 2)
    }

    /// The chunk header's JSON with `length` set to what the test wants, whatever the data.
    static func header(offset: Int64 = 0, length: Int, total: Int64 = 200, sha: String = sha) -> [UInt8] {
        var c = Message.BlobChunk(requestId: 7, sha256: sha, offset: offset, total: total, data: [])
        c.length = length
        return MessageCodec.frame(.blobChunk(c))
    }

    @Test func aRawFrameOfAnotherLengthIsRefused() {
        let (messages, error) = Self.dripFeed(Self.header(length: 10) + Frame.encode([UInt8](repeating: 1, count: 11)))
        #expect(messages.isEmpty)
        guard case .chunk(let problem)? = error else { Issue.record("no chunk error: \(String(describing: error))"); return }
        #expect(problem.description.contains("11 bytes") && problem.description.contains("10"))
    }

    @Test func aHeaderFollowedByAnotherMessageIsRefused() {
        // The next frame is taken as the data: a JSON message there is a raw frame of the wrong length.
        let (_, error) = Self.dripFeed(Self.header(length: 100) + MessageCodec.frame(.blobGet(.init(requestId: 1, sha256: Self.sha))))
        guard case .chunk? = error else { Issue.record("expected a chunk error"); return }
    }

    @Test(arguments: [
        (Int64(0), BlobLimits.chunkBytes + 1, Int64(1 << 30), "length"),
        (Int64(-1), 10, Int64(200), "offset"),
        (Int64(195), 10, Int64(200), "outside"),
        (Int64(0), -5, Int64(200), "length"),
        (Int64(0), 10, Int64(Bounds.bytes.upperBound) + 1, "total"),
        (Int64(0), 0, Int64(200), "0 bytes"),
    ])
    func headersOutOfBoundsAreRefusedBeforeAnyData(offset: Int64, length: Int, total: Int64, word: String) {
        let (messages, error) = Self.dripFeed(Self.header(offset: offset, length: length, total: total))
        #expect(messages.isEmpty)
        guard case .chunk(let problem)? = error else { Issue.record("no chunk error for \(offset)/\(length)/\(total)"); return }
        #expect(problem.description.contains(word))
    }

    @Test func theEdgesAreAccepted() {
        // A full 1 MiB chunk ending exactly at the total.
        let data = [UInt8](repeating: 3, count: BlobLimits.chunkBytes)
        let total = Int64(5 * BlobLimits.chunkBytes)
        var assembler = MessageAssembler()
        var decoder = FrameDecoder()
        decoder.feed(MessageAssembler.frames(.init(requestId: 1, sha256: Self.sha, offset: total - Int64(data.count), total: total, data: data)))
        var got: [Message] = []
        while let payload = try? decoder.next() { if case .message(let m)? = try? assembler.receive(payload) { got.append(m) } }
        #expect(got.count == 1)
    }

    @Test func aBadHashInAHeaderIsRefused() {
        let (_, error) = Self.dripFeed(Self.header(length: 10, sha: "ABC"))
        guard case .chunk(let problem)? = error else { Issue.record("expected a chunk error"); return }
        #expect(problem.description.contains("hash"))
    }

    @Test func afterAFailureEveryPayloadIsRefused() {
        var assembler = MessageAssembler()
        var decoder = FrameDecoder()
        decoder.feed(Self.header(length: 10) + Frame.encode([1]) + MessageCodec.frame(.blobGet(.init(requestId: 1, sha256: Self.sha))))
        var errors = 0
        while let payload = try? decoder.next() { if (try? assembler.receive(payload)) == nil { errors += 1 } }
        #expect(errors == 2)
    }

    @Test func anUndecodablePayloadIsReportedAsSuch() {
        var assembler = MessageAssembler()
        #expect(throws: MessageAssembler.Failure.self) { try assembler.receive(Array("nope".utf8)) }
        // Not a chunk problem: the caller may go on, and the next message is read.
        let next = try? assembler.receive(MessageCodec.encode(.blobGet(.init(requestId: 1, sha256: Self.sha))))
        #expect(next == .message(.blobGet(.init(requestId: 1, sha256: Self.sha))))
    }
}
