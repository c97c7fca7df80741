/// A strict, fast JSON reader for `Decodable` values: parses the bytes into a small tree and
/// decodes from it. It throws on anything it is not sure Foundation's `JSONDecoder` would
/// read the same way (numbers with fractions or exponents as integers, numbers past Double's
/// range or rounding to zero where a double is wanted, invalid UTF-8, lone surrogates, nesting
/// past 512, trailing bytes), without a useful message: callers that
/// report errors decode again with Foundation on failure, for its exact errors. Of a repeated
/// key it keeps the first value, as Foundation does. Checked against Foundation by the
/// differential fuzz target (Fuzz/Sources/fuzz-json).
public struct FastJSONDecoder: Sendable {
    public init() {}

    /// `T` from the JSON text in `bytes`.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let root = try bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(buffer)
            return try parser.parseDocument()
        }
        return try T(from: JSONNodeDecoder(node: root))
    }
}

/// Anything `FastJSONDecoder` will not read (the caller falls back to Foundation).
struct FastJSONError: Error {
    let offset: Int
}

/// A parsed JSON value. Integer literals that fit an Int64 are kept as integers; every other
/// number as its literal text (validated), read as a double only when a field asks for one.
enum JSONNode {
    case null
    case bool(Bool)
    case int(Int64)
    case number(String)
    case string(String)
    case array([JSONNode])
    case object(keys: [String], values: [JSONNode])
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var i = 0
    var depth = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private func fail() -> FastJSONError { FastJSONError(offset: i) }

    mutating func parseDocument() throws -> JSONNode {
        let node = try parseValue()
        skipSpace()
        guard i == bytes.count else { throw fail() }
        return node
    }

    @inline(__always) mutating func skipSpace() {
        while i < bytes.count {
            let c = bytes[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    mutating func parseValue() throws -> JSONNode {
        skipSpace()
        guard i < bytes.count else { throw fail() }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return try parseNumber()
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw fail() }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw fail() }
        i += n
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= 512 else { throw fail() }
        i += 1
    }

    private mutating func parseObject() throws -> JSONNode {
        try enter()
        var keys: [String] = []
        var values: [JSONNode] = []
        var seen = KeySet()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return .object(keys: keys, values: values) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail() }
            let raw = i + 1
            let key = try parseString()
            let written = UnsafeBufferPointer(rebasing: bytes[raw..<(i - 1)])
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail() }
            i += 1
            let value = try parseValue()
            // A repeated key keeps its first value, as Foundation's JSONDecoder does: fields are
            // then found the same whatever order they are read in (see `JSONNodeFields`).
            if seen.insert(key, written: written, into: keys) {
                keys.append(key)
                values.append(value)
            }
            skipSpace()
            guard i < bytes.count else { throw fail() }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            guard bytes[i] == UInt8(ascii: "}") else { throw fail() }
            i += 1
            depth -= 1
            return .object(keys: keys, values: values)
        }
    }

    private mutating func parseArray() throws -> JSONNode {
        try enter()
        var values: [JSONNode] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return .array(values) }
        while true {
            values.append(try parseValue())
            skipSpace()
            guard i < bytes.count else { throw fail() }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            guard bytes[i] == UInt8(ascii: "]") else { throw fail() }
            i += 1
            depth -= 1
            return .array(values)
        }
    }

    /// A string at `i` (its opening quote); plain runs are copied whole, escapes decoded.
    private mutating func parseString() throws -> String {
        i += 1
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                let text = try validated(UnsafeBufferPointer(rebasing: bytes[start..<i]))
                i += 1
                return text
            }
            if c == UInt8(ascii: "\\") { return try parseEscapedString(from: start) }
            guard c >= 0x20 else { throw fail() }
            i += 1
        }
        throw fail()
    }

    private func validated(_ utf8: UnsafeBufferPointer<UInt8>) throws -> String {
        guard let text = String(validating: utf8, as: UTF8.self) else { throw fail() }
        return text
    }

    private mutating func parseEscapedString(from start: Int) throws -> String {
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<i]))
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return try out.withUnsafeBufferPointer { try validated($0) }
            }
            guard c >= 0x20 else { throw fail() }
            guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw fail() }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw fail() }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail() }
                out.append(contentsOf: UTF8.encode(u)!)
            default: throw fail()
            }
        }
        throw fail()
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail()
            }
            value = value << 4 | UInt32(digit)
            i += 1
        }
        return value
    }

    /// RFC 8259 numbers only: no leading zeros, `+`, bare `.` or hex.
    private mutating func parseNumber() throws -> JSONNode {
        let start = i
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        let intDigits = i - intStart
        guard intDigits > 0, !(intDigits > 1 && bytes[intStart] == 0x30) else { throw fail() }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            let s = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            guard i > s else { throw fail() }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            let s = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            guard i > s else { throw fail() }
        }
        let text = UnsafeBufferPointer(rebasing: bytes[start..<i])
        if integral, intDigits <= 19 {
            // Accumulated negative, so Int64.min fits; an overflow is kept as text.
            var value: Int64 = 0
            var overflow = false
            for k in intStart..<i where !overflow {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (d, o2) = m.subtractingReportingOverflow(Int64(bytes[k] - 0x30))
                value = d
                overflow = o1 || o2
            }
            if !overflow {
                // `-0` keeps its text (an integer 0 would lose the sign).
                if intStart > start { if value != 0 { return .int(value) } } else if value != .min { return .int(-value) }
            }
        }
        // Kept as text: a `JSONValue` keeps it exactly; a field wanting a double reads it then
        // (and refuses one past Double's range); one wanting an integer fails over.
        return .number(String(decoding: text, as: UTF8.self))
    }
}

/// The keys of one object so far, to tell a repeated key (String equality: canonically
/// equivalent keys are one key, as in Foundation's dictionaries). A 256-bit mask of hashes of
/// plain ASCII keys answers "new" for most keys without comparing strings; a key whose bit is
/// taken, or any key after one that is not plain ASCII (which may equal other bytes: U+212A
/// KELVIN SIGN is `K`), is compared with every key. Past 64 keys, a set: a hostile object of
/// many keys costs linear time.
struct KeySet {
    private var mask: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var compareAll = false
    private var large: Set<String>? = nil

    /// Whether `key` (as `written` in the document) is not among `keys`, the keys so far.
    mutating func insert(_ key: String, written: UnsafeBufferPointer<UInt8>, into keys: [String]) -> Bool {
        if keys.count >= 64 {
            if large == nil { large = Set(keys) }
            return large!.insert(key).inserted
        }
        guard let hash = Self.hash(key, written: written) else {
            compareAll = true
            return !keys.contains(key)
        }
        let bit = UInt64(1) << (hash & 63)
        let taken = withUnsafeMutableBytes(of: &mask) { words in
            let word = Int(hash >> 6) * 8
            let old = words.load(fromByteOffset: word, as: UInt64.self)
            words.storeBytes(of: old | bit, toByteOffset: word, as: UInt64.self)
            return old & bit != 0
        }
        return (!taken && !compareAll) || !keys.contains(key)
    }

    /// A hash of a key's bytes, 8 at a time, when they are all ASCII (read from the document
    /// when it has no escapes, else from the decoded key); nil otherwise.
    @inline(__always) private static func hash(_ key: String, written: UnsafeBufferPointer<UInt8>) -> UInt64? {
        // An escape always makes the written form longer than the key.
        if written.count == key.utf8.count { return hash(UnsafeRawBufferPointer(written)) }
        return Array(key.utf8).withUnsafeBytes { hash($0) }
    }

    @inline(__always) private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        let k: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = UInt64(truncatingIfNeeded: bytes.count) &* k
        var high: UInt64 = 0
        var offset = 0
        while offset + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            high |= word
            h = (h ^ word) &* k
            offset += 8
        }
        var tail: UInt64 = 0
        while offset < bytes.count {
            tail = tail << 8 | UInt64(bytes[offset])
            offset += 1
        }
        high |= tail
        h = (h ^ tail) &* k
        return high & 0x8080_8080_8080_8080 == 0 ? h >> 56 : nil
    }
}
