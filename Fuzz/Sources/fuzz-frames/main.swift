import FuzzSupport
import SwarmProtocol

// The frame decoder on arbitrary bytes, fed in arbitrary chunks. Input: a byte choosing the
// payload limit, a byte choosing the limit after the first frame (a peer trusted after its
// handshake gets a larger one), a byte for the number of split points, two bytes per split
// point, then the byte stream. Properties:
// - never a crash; a frame is 1...limit bytes;
// - the frames (and the error, if any) are the same whether the stream arrives at once or in
//   the chosen chunks, through either `feed` overload;
// - the frames, encoded again, are exactly the start of the stream; what is left is held
//   (`bufferedByteCount`), and is less than a frame; an error names what the header says;
// - after an error, nothing more is buffered and every `next()` throws the same error.
// The allocation cap (no payload memory before the payload has arrived) is checked by running
// with `-malloc_limit_mb` far below the largest limit (scripts/fuzz.sh).

let limits = [1, 2, 3, 4, 5, 16, 255, 4096, 65_536, Frame.defaultMaxPayload]

struct Outcome: Equatable {
    var frames: [[UInt8]] = []
    var error: FrameError?
    var buffered = 0
}

func decode(_ chunks: [ArraySlice<UInt8>], limit: Int, laterLimit: Int) -> Outcome {
    var decoder = FrameDecoder(maxPayload: limit)
    var outcome = Outcome()
    chunks: for (k, chunk) in chunks.enumerated() {
        if k % 2 == 1 {
            chunk.withUnsafeBytes { decoder.feed($0) }
        } else {
            decoder.feed(chunk)
        }
        do throws(FrameError) {
            while let frame = try decoder.next() {
                outcome.frames.append(frame)
                if outcome.frames.count == 1 { decoder.maxPayload = laterLimit }
            }
        } catch {
            outcome.error = error
            break chunks
        }
    }
    if let error = outcome.error {
        decoder.feed([0, 0, 0, 1, 0x7B])
        Fuzz.check(decoder.bufferedByteCount == 0, "a failed decoder buffered \(decoder.bufferedByteCount) bytes")
        do throws(FrameError) {
            let frame = try decoder.next()
            Fuzz.fail("a failed decoder gave \(String(describing: frame)) instead of \(error)")
        } catch {
            Fuzz.check(error == outcome.error, "a failed decoder threw \(error), first \(outcome.error!)")
        }
    }
    outcome.buffered = decoder.bufferedByteCount
    return outcome
}

func header(_ stream: [UInt8], at offset: Int) -> UInt32? {
    guard stream.count - offset >= Frame.headerSize else { return nil }
    return stream[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
}

/// What the one-shot outcome must look like, from the stream itself.
func checkAgainstStream(_ outcome: Outcome, _ stream: [UInt8], limit: Int, laterLimit: Int) {
    var offset = 0
    for (n, frame) in outcome.frames.enumerated() {
        let cap = n == 0 ? limit : laterLimit
        Fuzz.check(!frame.isEmpty && frame.count <= cap, "frame \(n) has \(frame.count) bytes, limit \(cap)")
        let encoded = Frame.encode(frame)
        Fuzz.check(Array(stream[offset..<min(stream.count, offset + encoded.count)]) == encoded,
                   "frame \(n) is not the stream's bytes at \(offset)")
        offset += encoded.count
    }
    let cap = outcome.frames.isEmpty ? limit : laterLimit
    switch outcome.error {
    case nil:
        Fuzz.check(outcome.buffered == stream.count - offset,
                   "buffered \(outcome.buffered), unread \(stream.count - offset)")
        if let length = header(stream, at: offset) {
            Fuzz.check(length > 0 && Int(length) <= cap && stream.count - offset < 4 + Int(length),
                       "a whole frame (length \(length)) was left unread")
        }
    case .zeroLength?:
        Fuzz.check(header(stream, at: offset) == 0, "zeroLength, but the header at \(offset) is not 0")
    case let .tooLarge(length, reportedLimit)?:
        Fuzz.check(header(stream, at: offset) == length && Int(length) > cap && reportedLimit == cap,
                   "tooLarge(\(length), \(reportedLimit)) for header \(String(describing: header(stream, at: offset))), limit \(cap)")
    }
}

Fuzz.run { data in
    var input = FuzzInput(data)
    let limit = limits[Int(input.byte()) % limits.count]
    let laterLimit = limits[Int(input.byte()) % limits.count]
    let splitCount = Int(input.byte() % 16)
    let points = (0..<splitCount).map { _ in Int(input.uint16()) }
    let stream = input.rest()

    var cuts = points.map { $0 % (stream.count + 1) }.sorted()
    cuts.append(stream.count)
    var chunks: [ArraySlice<UInt8>] = []
    var start = 0
    for cut in cuts {
        chunks.append(stream[start..<cut])
        start = cut
    }

    let oneShot = decode([stream[...]], limit: limit, laterLimit: laterLimit)
    checkAgainstStream(oneShot, stream, limit: limit, laterLimit: laterLimit)
    let chunked = decode(chunks, limit: limit, laterLimit: laterLimit)
    Fuzz.check(chunked == oneShot, "chunks \(cuts) gave \(chunked.frames.count) frames, error \(String(describing: chunked.error)); at once \(oneShot.frames.count), \(String(describing: oneShot.error))")

    // `drain` is `next` until nil: the same frames, or the same error.
    var drainer = FrameDecoder(maxPayload: limit)
    drainer.feed(stream)
    do throws(FrameError) {
        let frames = try drainer.drain()
        Fuzz.check(limit != laterLimit || (oneShot.error == nil && frames == oneShot.frames), "drain differs from next")
    } catch {
        Fuzz.check(limit != laterLimit || error == oneShot.error, "drain threw \(error), next \(String(describing: oneShot.error))")
    }

    // `AssignPeek` reads the first bytes of a payload a worker may not be able to decode.
    for frame in oneShot.frames {
        if let run = AssignPeek.run(in: frame) {
            Fuzz.check(TaskID.problem(with: run.id) == nil && run.attempt >= 0, "AssignPeek gave \(run)")
        }
    }
}
