import Testing
import SwarmClient
import SwarmProtocol
@testable import SwarmNode
@testable import SwarmScheduler

/// A dropped-bytes marker starts a line of its own, and `[stderr] ` labels go at line starts
/// per stream, so interleaved partial lines are never glued. Before: while the scheduler was
/// away during a flood, `swarm logs -f` printed `00134600[stderr] [swarm: 327680 bytes of
/// output dropped here…`, and stderr pieces that continued a line were labelled again
/// mid-line (`[stderr] ab[stderr] cd`).
@Suite struct OutputLineStartTests {
    let run = RunRef(id: "t", attempt: 1)
    static let marker = String(decoding: OutputRelay.marker(6), as: UTF8.self)

    /// The relay's pieces for: `first` accepted, 6 bytes dropped, then `after` accepted.
    func relayed(_ first: (OutputChannel, String), _ after: (OutputChannel, String)) -> [OutputRelay.Piece] {
        var relay = OutputRelay(limits: .init(perRunBytes: 8, totalBytes: 100, pieceBytes: 64))
        relay.add(run, first.0, Array(first.1.utf8), at: 1)
        relay.add(run, .stdout, Array("4600\n0".utf8), at: 2)      // over 8: dropped
        relay.add(run, after.0, Array(after.1.utf8), at: 3)
        return relay.drain(run)
    }

    static func text(_ piece: OutputRelay.Piece) -> String { String(decoding: piece.bytes, as: UTF8.self) }

    /// All pieces through the CLI's live view (merged, as `swarm logs -f` prints) and the
    /// scheduler's copy.
    static func merged(_ pieces: [OutputRelay.Piece]) -> (view: String, store: String) {
        var view = LogView()
        var store = LogStore()
        var out = ""
        for piece in pieces {
            let stream = piece.stream == .stderr ? LogChunkStream.stderr : LogChunkStream.stdout
            for (_, text) in view.feed(.init(requestId: 1, id: "t", data: text(piece), done: false, stream: stream)) { out += text }
            store.append(id: "t", attempt: 1, stream: piece.stream.rawValue, data: text(piece))
        }
        for (_, text) in view.finish() { out += text }
        return (out, store.text(id: "t"))
    }

    @Test func aMarkerAfterAPartialStdoutLineStartsItsOwnLine() {
        let pieces = relayed((.stdout, "0013"), (.stdout, "1\n"))
        #expect(pieces.map(\.stream) == [.stdout, .stdout, .stderr, .stdout])
        #expect(pieces.map(Self.text) == ["0013", "\n", Self.marker, "1\n"])
        let expected = "0013\n[stderr] " + Self.marker + "1\n"
        let (view, store) = Self.merged(pieces)
        #expect(view == expected)
        #expect(store == expected)
    }

    @Test func aMarkerAfterAPartialStderrLineStartsItsOwnLine() {
        let pieces = relayed((.stderr, "warn"), (.stderr, "ing\n"))
        #expect(pieces.map(Self.text) == ["warn", "\n" + Self.marker, "ing\n"])
        let expected = "[stderr] warn\n[stderr] " + Self.marker + "[stderr] ing\n"
        #expect(Self.merged(pieces).view == expected && Self.merged(pieces).store == expected)
        // A stream at a line start gets no extra newline.
        let clean = relayed((.stdout, "ok\n"), (.stdout, "go\n"))
        #expect(clean.map(Self.text) == ["ok\n", Self.marker, "go\n"])
    }

    @Test func labelsGoAtLineStartsPerStream() {
        var labeler = StreamLabeler()
        // stderr continuing its own line: one label.
        #expect(labeler.render("ab", .stderr) + labeler.render("cd\n", .stderr) == "[stderr] abcd\n")
        // Interleaved partial lines: each ends before the other stream's piece.
        let pieces: [(String, StreamLabeler.Stream)] = [("out", .stdout), ("err", .stderr), (" more\n", .stdout), ("or\n", .stderr), ("", .stderr)]
        let expected = "out\n[stderr] err\n more\n[stderr] or\n"
        var store = LogStore()
        var view = LogView()
        var live = ""
        for (data, stream) in pieces {
            store.append(id: "t", attempt: 1, stream: stream == .stderr ? "stderr" : "stdout", data: data)
            let chunk = Message.LogChunk(requestId: 1, id: "t", data: data, done: false,
                                         stream: stream == .stderr ? LogChunkStream.stderr : LogChunkStream.stdout)
            for (sink, text) in view.feed(chunk) { #expect(sink == .stdout); live += text }
        }
        #expect(store.text(id: "t") == expected)
        #expect(live == expected)
    }

    /// `logs -f`: the scheduler's copy ends inside a stderr line, the live pieces continue it.
    @Test func liveStderrContinuingTheStoredCopysLineIsNotLabelledAgain() {
        var view = LogView()
        var out = ""
        let chunks = [Message.LogChunk(requestId: 1, id: "t", data: "x\n[stderr] par", done: false),
                      Message.LogChunk(requestId: 1, id: "t", data: "tial\n", done: false, stream: LogChunkStream.stderr),
                      Message.LogChunk(requestId: 1, id: "t", data: "y\n", done: false, stream: LogChunkStream.stdout)]
        for chunk in chunks { for (_, text) in view.feed(chunk) { out += text } }
        #expect(out == "x\n[stderr] partial\ny\n")
    }
}
