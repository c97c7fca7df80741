import Foundation
import Testing
@testable import SwarmProtocol

/// `FastJSONDecoder` reads what Foundation writes, and refuses what it is unsure of.
@Suite struct FastJSONDecoderTests {
    @Test(arguments: FastJSONEncoderTests.samples)
    func readsFoundationsEncoding(_ message: Message) throws {
        let foundation = Array(try JSONEncoder().encode(MessageCodec.Envelope(message: message)))
        let probe = try FastJSONDecoder().decode(MessageCodec.Probe.self, from: foundation)
        #expect(probe.message == message)
    }

    @Test(arguments: FastJSONEncoderTests.samples)
    func readsItsOwnEncoderDirectly(_ message: Message) throws {
        let probe = try FastJSONDecoder().decode(MessageCodec.Probe.self, from: MessageCodec.encode(message))
        #expect(probe.message == message)
    }

    @Test func resultsAndSpecs() throws {
        let result = FastJSONEncoderTests.fullResult
        #expect(try FastJSONDecoder().decode(TaskResult.self, from: Array(JSONEncoder().encode(result))) == result)
        let spec = FastJSONEncoderTests.fullSpec
        #expect(try FastJSONDecoder().decode(TaskSpec.self, from: Array(JSONEncoder().encode(spec))) == spec)
    }

    @Test func valuesAndEscapes() throws {
        let decode = { (text: String) in try FastJSONDecoder().decode(JSONValue.self, from: Array(text.utf8)) }
        #expect(try decode(#" {"a" : [1, -2.5e3, true, null, "x\u00e9\ud83d\udc1d\n\/"] } "#)
            == .object(["a": .array([.number(1), .number(JSONNumber(text: "-2.5e3")!), .bool(true), .null, .string("xé🐝\n/")])]))
        #expect(try FastJSONDecoder().decode([Int64].self, from: Array("[-9223372036854775807,0]".utf8)) == [-9223372036854775807, 0])
        #expect(try FastJSONDecoder().decode([Double].self, from: Array("[0.1,1e-7,3E+20,5]".utf8)) == [0.1, 1e-7, 3e20, 5])
    }

    @Test(arguments: ["01", "1.", "-", "+1", ".5", "[1,]", #"{"a":1,}"#, "[1] x", #""\ud800""#, #""a"#,
                      "\"\u{1}\"", "[1.5]", "[1e2]", "nul", "{1:2}", "[", "", "[99999999999999999999]"])
    func refusesWhatItIsUnsureOf(_ text: String) {
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode([Int].self, from: Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode(String.self, from: [0x22, 0xFF, 0x22]) }
        let deep = Array(String(repeating: "[", count: 600).utf8) + Array(String(repeating: "]", count: 600).utf8)
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode(JSONValue.self, from: deep) }
    }

    @Test func wrongTypesFailOver() {
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode([String: Int].self, from: Array(#"{"a":"1"}"#.utf8)) }
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode([UInt8].self, from: Array("[300]".utf8)) }
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode(TaskResult.self, from: Array(#"{"id":"a"}"#.utf8)) }
    }
}
