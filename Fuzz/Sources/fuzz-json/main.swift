import Foundation
import FuzzSupport
@testable import SwarmProtocol

// `FastJSONDecoder` against Foundation's `JSONDecoder`, on the real types: a whole message
// (`MessageCodec.Probe`, what every frame is read as), a `TaskSpec` (the scheduler's store) and
// a bare `JSONValue` (a task's `context`). For each, on any bytes:
// - both accept, with equal values; or both refuse; or only Foundation accepts (the fast one
//   refuses what it is unsure of, and `MessageCodec` then asks Foundation);
// - never different values, and never a fast accept that Foundation refuses, with two documented
//   exceptions: a `JSONValue` number Foundation cannot hold (past Double's range, `1e400`, or
//   rounding to zero, `1e-400`): `JSONValue` keeps every number's text exactly through the fast
//   decoder, while through Foundation it is read as an Int64 or a Double, which is also why
//   numbers are compared by value, not by text (`1.0` and `1`, `-0` and `0`); and a zero
//   literal Foundation refuses by mistake (`0e5`, see `foundationZeroQuirk`), where the
//   input with that literal written `0.0` must give Foundation the fast decoder's value.
// `MessageCodec.decode` (fast, then Foundation) must not crash either.

/// Numbers as the nearest double (`1.0`, `1`, `1e0`; `-0` and `0`; `9007199254740993` and `9007199254740992`),
/// the rest as is. Typed integer fields are exact in both decoders, so only `JSONValue` numbers
/// (Int64 or Double through Foundation, literal text through the fast decoder) differ here.
func normalized(_ value: JSONValue) -> JSONValue {
    switch value {
    case .number(let n):
        // `-0` too: Foundation reads it as the integer 0; `JSONValue` keeps the sign.
        return .number(JSONNumber(n.double == 0 ? 0 : n.double) ?? JSONNumber(validated: n.text))
    case .array(let items): return .array(items.map(normalized))
    case .object(let fields): return .object(fields.mapValues(normalized))
    default: return value
    }
}

/// True when Foundation refuses this literal as a Double (see swift-foundation's JSON scanner:
/// not finite, or zero from digits that are not all zero).
func foundationCannotHold(_ n: JSONNumber) -> Bool {
    if n.int64 != nil { return false }
    let d = n.double
    if !d.isFinite { return true }
    let mantissa = n.text.prefix { $0 != "e" && $0 != "E" }
    return d == 0 && mantissa.contains { ("1"..."9").contains($0) }
}

/// `bytes` with every zero literal (`0e5`; not `1e-400`, which rounds to zero) written `0.0`
/// (`-0.0`), strings left alone. swift-foundation (Swift 6.3) refuses some zero literals: when a literal reads as
/// zero it looks for a non-zero mantissa digit, 4 bytes at a time from the front, but the last
/// 1-3 bytes from the back, so in `0e5`, `0E1` or `0.000e5` it meets the exponent's digit first.
func foundationZeroQuirk(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0, inString = false
    while i < bytes.count {
        let c = bytes[i]
        if inString {
            out.append(c)
            if c == UInt8(ascii: "\\"), i + 1 < bytes.count { out.append(bytes[i + 1]); i += 1 }
            if c == UInt8(ascii: "\"") { inString = false }
            i += 1
            continue
        }
        if c == UInt8(ascii: "\"") { inString = true }
        guard c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) else { out.append(c); i += 1; continue }
        var j = i
        while j < bytes.count, "0123456789+-.eE".utf8.contains(bytes[j]) { j += 1 }
        let token = Array(bytes[i..<j])
        let literal = String(decoding: token, as: UTF8.self)
        if Double(literal) == 0 && JSONNumber.isZeroLiteral(literal) {
            out += Array((c == UInt8(ascii: "-") ? "-0.0" : "0.0").utf8)
        } else {
            out += token
        }
        i = j
    }
    return out
}

func containsUnholdableNumber(_ value: JSONValue) -> Bool {
    switch value {
    case .number(let n): return foundationCannotHold(n)
    case .array(let items): return items.contains(where: containsUnholdableNumber)
    case .object(let fields): return fields.values.contains(where: containsUnholdableNumber)
    default: return false
    }
}

/// The value as JSON, read back as a `JSONValue` (so two values compare field by field).
func tree(_ bytes: [UInt8]) -> JSONValue {
    do { return try JSONValue.parse(String(decoding: bytes, as: UTF8.self)) } catch {
        Fuzz.fail("FastJSONEncoder wrote JSON that JSONValue.parse refuses: \(String(decoding: bytes, as: UTF8.self))")
    }
}

func differential<T: Decodable, V: Equatable>(_ type: T.Type, _ bytes: [UInt8], _ name: String,
                                               value: (T) -> V, encode: (V) -> [UInt8]) {
    let fast = try? FastJSONDecoder().decode(T.self, from: bytes)
    guard let fast else { return }
    let fastValue = value(fast)
    let text = String(decoding: bytes.prefix(2000), as: UTF8.self)
    let foundation: T
    do { foundation = try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
        if containsUnholdableNumber(tree(encode(fastValue))) { return }
        let patched = foundationZeroQuirk(bytes)
        guard patched != bytes, let again = try? JSONDecoder().decode(T.self, from: Data(patched)) else {
            Fuzz.fail("\(name): the fast decoder accepts what Foundation refuses (\(error)): \(text)")
        }
        foundation = again
    }
    let foundationValue = value(foundation)
    if fastValue == foundationValue { return }
    let a = normalized(tree(encode(fastValue))), b = normalized(tree(encode(foundationValue)))
    Fuzz.check(a == b, "\(name): different values\n fast:       \(a.serialized)\n foundation: \(b.serialized)\n input: \(text)")
}

let encoder = FastJSONEncoder()

Fuzz.run { data in
    let bytes = Array(data)
    differential(MessageCodec.Probe.self, bytes, "Message", value: \.message, encode: MessageCodec.encode)
    differential(TaskSpec.self, bytes, "TaskSpec", value: { $0 }, encode: { try! encoder.encode($0) })
    differential(JSONValue.self, bytes, "JSONValue", value: { $0 }, encode: { try! encoder.encode($0) })
    // What every peer's frame goes through: must not crash, whatever it decides.
    _ = try? MessageCodec.decode(bytes)
}
