import Foundation
import Testing
@testable import SwarmProtocol

/// `JSONObjectWriter`, under `TaskInfo`/`TaskResult`/`RunMetrics.writeJSON`: a comma before
/// every member but an object's first, also when a second writer continues the object and
/// after a nested value; `{}` and `[]` when nothing is written.
@Suite struct JSONObjectWriterTests {
    struct Empty: Encodable {
        func encode(to encoder: Encoder) throws {}
    }

    /// What `body` writes into a fresh sink, every container closed.
    static func written(_ body: (JSONSink) throws -> Void) rethrows -> String {
        let sink = JSONSink()
        try body(sink)
        sink.closeAll()
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    @Test func anEmptyObjectAndOneMember() {
        let empty: String = Self.written { _ = JSONObjectWriter.open($0, depth: 0) }
        #expect(empty == "{}")
        let one: String = Self.written { JSONObjectWriter.open($0, depth: 0).number("n", nil) }
        #expect(one == #"{"n":null}"#)
    }

    @Test func commasBetweenMembersNotBeforeTheFirst() throws {
        let text: String = try Self.written { sink in
            let first = JSONObjectWriter.open(sink, depth: 0)
            first.strings("none", [])
            try first.value("empty", Empty())
            first.strings("words", ["a", "b\""])
            try first.value("map", ["k": 1])
            // A second writer on the same object, as `RunMetrics` after a task's own keys.
            let second = JSONObjectWriter(sink, depth: 0)
            second.bool("flag", true)
            second.bool("unset", nil)
            second.text("t", "x")
            second.number("n", -12)
        }
        let expected: String = #"{"none":[],"empty":{},"words":["a","b\""],"map":{"k":1},"#
            + #""flag":true,"unset":null,"t":"x","n":-12}"#
        #expect(text == expected)
    }

    @Test func anObjectInAnArrayKeepsItsNeighbours() {
        let text: String = Self.written { sink in
            sink.open(object: false, depth: 0)
            for i in 0..<3 {
                sink.beginElement(0, key: nil)
                JSONObjectWriter.open(sink, depth: 1).number("i", Int64(i))
            }
        }
        #expect(text == #"[{"i":0},{"i":1},{"i":2}]"#)
    }
}
