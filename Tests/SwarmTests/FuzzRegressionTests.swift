import Foundation
import Testing
@testable import SwarmProtocol

/// Inputs the fuzz targets (Fuzz/, `scripts/fuzz.sh`) found, kept as plain tests. Each names
/// the target and the property it broke; the fix is in the code these tests exercise.
@Suite struct FuzzRegressionTests {
    /// Both decoders on `text`, as the differential target runs them (nil: refused).
    private func both<T: Decodable>(_ type: T.Type, _ text: String) -> (fast: T?, foundation: T?) {
        let bytes = Array(text.utf8)
        return (try? FastJSONDecoder().decode(T.self, from: bytes), try? JSONDecoder().decode(T.self, from: Data(bytes)))
    }

    /// Numbers by value: a `JSONValue` keeps a number's text through the fast decoder (`2.0`),
    /// Foundation reads an Int64 or a Double (`2`).
    private func byValue(_ value: JSONValue?) -> JSONValue? {
        switch value {
        case .number(let n)?: return .number(JSONNumber(n.double == 0 ? 0 : n.double)!)
        case .array(let items)?: return .array(items.map { byValue($0)! })
        case .object(let fields)?: return .object(fields.mapValues { byValue($0)! })
        default: return value
        }
    }

    /// fuzz-json, "different values": of a repeated key the fast decoder read the last value
    /// into a `JSONValue` and, for typed fields, whichever its field-order hint met first;
    /// Foundation keeps the first. (The first two inputs are the fuzzer's own.)
    @Test(arguments: [
        (#"{"type":"taskOutput","id":"a","attem\n\type":"taskOutput","id":8}"#, #"{"attem\n\type":"taskOutput","id":"a","type":"taskOutput"}"#),
        (#"{"type":"submot","requestId":4,"task":{"id":"t-1","command":["sh","-c","echo hi"],"env":{"A":"1"},"timeout":2.0,"env":{"I":"1"},"timeout":2.0,"labels":{"gpu":"yes"},"priority":-2,"context":{"n":{"a":null,"b":true}}}}"#,
         #"{"requestId":4,"task":{"command":["sh","-c","echo hi"],"context":{"n":{"a":null,"b":true}},"env":{"A":"1"},"id":"t-1","labels":{"gpu":"yes"},"priority":-2,"timeout":2.0},"type":"submot"}"#),
        (#"{"a":1,"b":2,"a":3,"c":{"x":"first","\u0078":"second","K":0,"\u212a":1}}"#, #"{"a":1,"b":2,"c":{"K":0,"x":"first"}}"#),
    ])
    func aRepeatedKeyKeepsItsFirstValueAsInFoundation(_ text: String, _ expected: String) throws {
        let (fast, foundation) = both(JSONValue.self, text)
        #expect(fast?.serialized == expected)
        #expect(byValue(fast) == byValue(foundation))
    }

    @Test func aRepeatedFieldOfAMessageIsReadAsFoundationReadsIt() throws {
        // `version` then `role` move the hint past the first `name`: the old lookup found "b".
        let text = #"{"type":"hello","version":1,"name":"a","role":"worker","name":"b"}"#
        let (fast, foundation) = both(MessageCodec.Probe.self, text)
        #expect(fast?.message == .hello(.init(role: .worker, name: "a")))
        #expect(fast?.message == foundation?.message)
        #expect(try MessageCodec.decode(Array(text.utf8)) == .hello(.init(role: .worker, name: "a")))
        // Past the size where the parser switches from a scan to a set, too.
        let many = (0..<20).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let (a, b) = both([String: Int].self, "{\(many),\"k3\":99,\"k19\":-1}")
        #expect(a?["k3"] == 3 && a?["k19"] == 19 && a == b)
    }

    /// fuzz-json, "the fast decoder accepts what Foundation refuses": a non-zero literal that
    /// rounds to a zero double (`1e-400`) read as 0; Foundation refuses it as not representable.
    @Test func aNumberRoundingToZeroIsRefusedLikeFoundationDoes() throws {
        let tiny = #"{"type":"submit","requestId":1,"task":{"command":["true"],"timeout":1e-400}}"#
        #expect(both(MessageCodec.Probe.self, tiny).fast == nil)
        #expect(throws: MessageError.self) { try MessageCodec.decode(Array(tiny.utf8)) }
        // Zeros written any way, and the smallest subnormal, are read by both, alike.
        for literal in ["0", "-0.0", "0e-400", "0.0e10", "4.9e-324", "-2.4703282292062328e-324"] {
            let (fast, foundation) = both([Double].self, "[\(literal)]")
            #expect(fast != nil && fast == foundation, "\(literal)")
        }
        for literal in ["1e-400", "-1.5e-330", "0.00001e-320"] {
            let (fast, foundation) = both([Double].self, "[\(literal)]")
            #expect(fast == nil && foundation == nil, "\(literal)")
        }
        // A zero with a short exponent is a zero here. Foundation (swift-foundation in Swift
        // 6.3) refuses `0e5`, `0E1` and `0.000e5`: when the last 1-3 bytes of a literal that
        // reads as zero hold a non-zero digit, its check reads them backwards and takes the
        // exponent's digit for the mantissa's. The fuzz target allows for exactly that.
        #expect(try FastJSONDecoder().decode([Double].self, from: Array("[0e5,0E1,0.000e5]".utf8)) == [0, 0, 0])
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode([Float].self, from: Array("[1e-50]".utf8)) }
        #expect(throws: (any Error).self) { try FastJSONDecoder().decode([Float].self, from: Array("[1e39]".utf8)) }
    }
}
