import Foundation
import Testing
import SwarmProtocol
@testable import SwarmNode

/// Item 12: multi-byte characters split across pipe reads stay whole in everything made from
/// the output (the stream to the scheduler, the log file, the result's tail).
@Suite struct UTF8CarryTests {
    /// 1, 2, 3 and 4-byte characters.
    static let sample = "a€é𝄞z€€\n" + String(repeating: "€", count: 20)

    /// Cuts `bytes` at the given offsets, feeds the pieces through one carry, returns what
    /// came out per piece (plus the finish).
    func drip(_ bytes: [UInt8], cuts: [Int]) -> [[UInt8]] {
        var carry = UTF8Carry()
        var out: [[UInt8]] = []
        var start = 0
        for cut in cuts + [bytes.count] {
            out.append(carry.take(Array(bytes[start..<cut])))
            start = cut
        }
        out.append(carry.finish())
        return out
    }

    @Test func everySplitPointGivesWholeCharacters() {
        let bytes = Array(Self.sample.utf8)
        for cut in 0...bytes.count {
            let pieces = drip(bytes, cuts: [cut])
            for piece in pieces {
                // Each piece on its own is valid UTF-8: decoding it adds no U+FFFD.
                #expect(String(validating: piece, as: UTF8.self) != nil, "cut at \(cut)")
            }
            #expect(pieces.flatMap { $0 } == bytes)
        }
    }

    @Test func dripFedOneByteAtATimeEuroComesBackWhole() {
        let bytes = Array(String(repeating: "€", count: 1_000).utf8)
        let pieces = drip(bytes, cuts: Array(1..<bytes.count))
        #expect(pieces.map { String(decoding: $0, as: UTF8.self) }.joined() == String(repeating: "€", count: 1_000))
        // At most 3 bytes are ever held back.
        var carry = UTF8Carry()
        for byte in bytes {
            _ = carry.take([byte])
            #expect(carry.heldCount <= 2)
        }
    }

    @Test func everyPairOfSplitPointsOverEuros() {
        let bytes = Array("€€€€".utf8)
        for a in 0...bytes.count {
            for b in a...bytes.count {
                let pieces = drip(bytes, cuts: [a, b])
                #expect(pieces.allSatisfy { String(validating: $0, as: UTF8.self) != nil }, "cuts \(a), \(b)")
                #expect(pieces.flatMap { $0 } == bytes)
            }
        }
    }

    @Test func bytesThatAreNotUTF8PassThrough() {
        var carry = UTF8Carry()
        // Stray continuation bytes and a lone lead byte followed by ASCII: nothing is held.
        #expect(carry.take([0x80, 0x80, 0x80, 0x80]) == [0x80, 0x80, 0x80, 0x80])
        #expect(carry.take([0xE2, 0x41]) == [0xE2, 0x41])
        // An incomplete character at the very end comes out at the finish.
        #expect(carry.take([0x41, 0xE2, 0x82]) == [0x41])
        #expect(carry.finish() == [0xE2, 0x82])
        #expect(carry.finish().isEmpty)
    }

    @Test func boundaryMovesBackOnlyOverAContinuation() {
        let bytes = Array("a€b".utf8)  // a E2 82 AC b
        #expect((0...5).map { UTF8Carry.boundary(bytes, atOrBefore: $0) } == [0, 1, 1, 1, 4, 5])
        let junk: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x80]
        #expect(UTF8Carry.boundary(junk, atOrBefore: 4) == 4)
    }

    // MARK: The worker's log file

    func logLines(maxLine: Int, _ chunks: [[UInt8]]) throws -> [String] {
        let path = NSTemporaryDirectory() + "utf8log-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(path) }
        let log = try TaskLog(path: path, maxLine: maxLine, maxBytes: 1 << 20)
        for chunk in chunks { chunk.withUnsafeBytes { log.output(.stdout, $0, at: 0) } }
        log.flush(.stdout, at: 0)
        log.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let text = try #require(String(validating: Array(data), as: UTF8.self), "the log is not valid UTF-8")
        return text.split(separator: "\n").map { String($0.split(separator: " ", maxSplits: 2).last ?? "") }
    }

    /// A long line of "€" cut at `maxLine` (not a multiple of 3): each cut line is whole.
    @Test func longLinesAreCutBetweenCharacters() throws {
        for maxLine in [4, 5, 16, 100] {
            let euros = String(repeating: "€", count: 300)
            let lines = try logLines(maxLine: maxLine, [Array(euros.utf8)])
            #expect(lines.joined() == euros, "maxLine \(maxLine)")
            #expect(lines.allSatisfy { $0.utf8.count <= maxLine + 2 })
        }
    }

    // MARK: The stream to the scheduler

    @Test func relayPiecesAreWholeCharacters() {
        var relay = OutputRelay(limits: .init(perRunBytes: 1 << 20, totalBytes: 1 << 20, pieceBytes: 100))
        let run = RunRef(id: "t", attempt: 1)
        let euros = String(repeating: "€", count: 1_000)
        relay.add(run, .stdout, Array(euros.utf8), at: 1)
        var text = ""
        while let piece = relay.next() {
            #expect(piece.bytes.count <= 100)
            text += String(decoding: piece.bytes, as: UTF8.self)
        }
        #expect(text == euros)
    }
}

/// Item 4: the worker's pending output toward the scheduler is bounded, drops whole chunks
/// with a marker that counts them, and keeps each run's order.
@Suite struct OutputRelayTests {
    let a = RunRef(id: "a", attempt: 1)
    let b = RunRef(id: "b", attempt: 1)

    /// The run's stream as text, with markers.
    func stream(_ pieces: [OutputRelay.Piece]) -> String {
        pieces.map { String(decoding: $0.bytes, as: UTF8.self) }.joined()
    }

    /// Sum of the counts in drop markers of `text`, and `text` without the markers.
    static func dropped(_ text: String) -> (count: Int, rest: String) {
        let pattern = /\[swarm: (\d+) bytes of output dropped here:[^\]\n]*\]\n/
        let count = text.matches(of: pattern).reduce(0) { $0 + (Int($1.1) ?? 0) }
        return (count, text.replacing(pattern, with: ""))
    }

    @Test func overflowDropsWholeChunksWithACountingMarkerInPlace() {
        var relay = OutputRelay(limits: .init(perRunBytes: 10, totalBytes: 100, pieceBytes: 4))
        relay.add(a, .stdout, Array("12345678".utf8), at: 1)
        relay.add(a, .stdout, Array("abcdef".utf8), at: 2)    // 8 + 6 > 10: dropped
        relay.add(a, .stdout, Array("ghi".utf8), at: 3)       // dropped too (11 > 10)
        relay.add(a, .stdout, Array("zz".utf8), at: 4)        // fits: the marker goes before it
        #expect(relay.queuedBytes == 11)   // with the newline before the marker
        #expect(relay.droppedBytes == 9)
        var pieces: [OutputRelay.Piece] = []
        while let piece = relay.next() { pieces.append(piece) }
        // stdout was inside a line: a newline ends it before the marker.
        #expect(stream(pieces) == "12345678\n" + String(decoding: OutputRelay.marker(9), as: UTF8.self) + "zz")
        #expect(pieces.first { $0.bytes == OutputRelay.marker(9) }?.stream == .stderr)
        #expect(pieces.allSatisfy { $0.bytes.count <= 4 || $0.stream == .stderr })
        #expect(relay.isEmpty)
        #expect(relay.queuedBytes == 0)
    }

    @Test func aDropAtTheEndIsMarkedWhenTheRunIsDrained() {
        var relay = OutputRelay(limits: .init(perRunBytes: 4, totalBytes: 100, pieceBytes: 64))
        relay.add(a, .stdout, Array("abcd".utf8), at: 1)
        relay.add(a, .stderr, Array("lost".utf8), at: 2)
        let pieces = relay.drain(a)
        #expect(stream(pieces) == "abcd\n" + String(decoding: OutputRelay.marker(4), as: UTF8.self))
        #expect(!relay.hasQueued(a))
        #expect(relay.isEmpty)
    }

    @Test func theTotalCapBindsAcrossRunsAndRunsTakeTurns() {
        var relay = OutputRelay(limits: .init(perRunBytes: 100, totalBytes: 12, pieceBytes: 2))
        relay.add(a, .stdout, Array("aaaaaaaa".utf8), at: 1)
        relay.add(b, .stdout, Array("bbbb".utf8), at: 1)
        relay.add(b, .stdout, Array("BB".utf8), at: 2)  // 14 > 12 in all: dropped
        #expect(relay.droppedBytes == 2)
        var order: [String] = []
        while let piece = relay.next() { order.append(piece.run.id) }
        // In turn while both have output, then the rest of `a`; b's drop is marked at its end
        // (after a newline: "bbbb" was an unfinished line).
        #expect(order == ["a", "b", "a", "b", "a", "b", "a", "b"])
    }

    @Test func streamsKeepTheirOrderAndLabels() {
        var relay = OutputRelay()
        relay.add(a, .stdout, Array("out1 ".utf8), at: 1)
        relay.add(a, .stdout, Array("out2 ".utf8), at: 2)
        relay.add(a, .stderr, Array("err ".utf8), at: 3)
        relay.add(a, .stdout, Array("out3".utf8), at: 4)
        let pieces = relay.drain(a)
        #expect(pieces.map(\.stream) == [.stdout, .stderr, .stdout])
        #expect(stream(pieces) == "out1 out2 err out3")
        #expect(pieces.map(\.at) == [1, 3, 4])
    }

    /// A long random feed against caps: what comes out plus what the markers count is
    /// exactly what went in, in order.
    @Test func bytesAddUpUnderRandomPressure() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var relay = OutputRelay(limits: .init(perRunBytes: 300, totalBytes: 500, pieceBytes: 50))
            var sent = [a: "", b: ""]
            var got = [a: [OutputRelay.Piece](), b: []]
            for i in 0..<400 {
                let run = Bool.random(using: &rng) ? a : b
                let line = "\(run.id)\(i)" + String(repeating: "-", count: Int.random(in: 0...40, using: &rng)) + "\n"
                relay.add(run, .stdout, Array(line.utf8), at: Int64(i))
                sent[run]! += line
                // The link takes a few pieces now and then.
                for _ in 0..<Int.random(in: 0...2, using: &rng) {
                    if let piece = relay.next() { got[piece.run]!.append(piece) }
                }
            }
            for run in [a, b] {
                got[run]! += relay.drain(run)
                let (count, rest) = Self.dropped(stream(got[run]!))
                #expect(count + rest.utf8.count == sent[run]!.utf8.count)
                // What arrived is the sent lines in order, with whole lines missing only.
                let sentLines = sent[run]!.split(separator: "\n")
                var index = sentLines.startIndex
                for line in rest.split(separator: "\n") {
                    while index < sentLines.endIndex, sentLines[index] != line { index += 1 }
                    #expect(index < sentLines.endIndex, "\(line) out of order")
                }
            }
            #expect(relay.isEmpty)
        }
    }
}
