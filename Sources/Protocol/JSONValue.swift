import Foundation

/// Any JSON value, kept as given: a task's `context` travels from client to agent untouched.
/// Numbers keep their literal text (`JSONNumber`), so `9007199254740993`, `1.0`, `-0` and
/// `1e400` reach the agent as written, not as the nearest double. Object keys are not kept in
/// order (JSON objects are unordered); text written from a value has its keys sorted.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Exact through `FastJSONDecoder` (and so through `MessageCodec` and `parse`); through
    /// Foundation's decoder a number is read as an Int64 when it is one, else as a Double.
    public init(from decoder: Decoder) throws {
        if let node = (decoder as? JSONNodeDecoder)?.node {
            self = JSONValue(node)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Int64.self) { self = .number(JSONNumber(n)) }
        else if let d = try? c.decode(Double.self), let n = JSONNumber(d) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value") }
    }

    /// Exact through `FastJSONEncoder` (numbers are written as their literal text). Through
    /// other encoders a number goes as an Int64 when its text is one, else as a Double (and
    /// fails when that is not finite, e.g. `1e400`).
    public func encode(to encoder: Encoder) throws {
        if let sink = (encoder as? JSONSinkEncoder)?.sink {
            write(to: sink, indent: nil)
            return
        }
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if let exact = n.int64 { try c.encode(exact) } else { try c.encode(n.double) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Compact JSON text with sorted keys (stable, so its length is too).
    public var serialized: String {
        let sink = JSONSink()
        write(to: sink, indent: nil)
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    /// Pretty JSON text for files an agent reads (two spaces per level, `"key" : value`).
    public var pretty: String {
        let sink = JSONSink()
        write(to: sink, indent: 0)
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    /// Parses JSON text (any value at the top level; a leading byte order mark is skipped).
    /// Throws `JSONValueError` for anything that is not one RFC 8259 JSON value.
    public static func parse(_ text: String) throws -> JSONValue {
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        do {
            let node = try bytes.withUnsafeBufferPointer { buffer in
                var parser = JSONParser(buffer)
                return try parser.parseDocument()
            }
            return JSONValue(node)
        } catch let error as FastJSONError {
            throw JSONValueError(offset: error.offset)
        }
    }

    init(_ node: JSONNode) {
        switch node {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let n): self = .number(JSONNumber(n))
        case .number(let text): self = .number(JSONNumber(validated: text))
        case .string(let s): self = .string(s)
        case .array(let values): self = .array(values.map(JSONValue.init))
        case let .object(keys, values):
            var object: [String: JSONValue] = [:]
            object.reserveCapacity(keys.count)
            // Keys are unique: the parser keeps the first of a repeated key, as Foundation does.
            for (key, value) in zip(keys, values) { object[key] = JSONValue(value) }
            self = .object(object)
        }
    }

    /// Writes the value into `sink`: compact when `indent` is nil, else pretty, starting at
    /// that many levels.
    func write(to sink: JSONSink, indent: Int?) {
        switch self {
        case .null: sink.writeNull()
        case .bool(let b): sink.writeBool(b)
        case .number(let n): sink.bytes.append(contentsOf: n.text.utf8)
        case .string(let s): sink.writeString(s)
        case .array(let values):
            writeContainer(sink, open: "[", close: "]", count: values.count, indent: indent) { i, level in
                values[i].write(to: sink, indent: level)
            }
        case .object(let object):
            let keys = object.keys.sorted()
            writeContainer(sink, open: "{", close: "}", count: keys.count, indent: indent) { i, level in
                sink.writeString(keys[i])
                sink.bytes.append(contentsOf: indent == nil ? [UInt8(ascii: ":")] : Array(" : ".utf8))
                object[keys[i]]!.write(to: sink, indent: level)
            }
        }
    }

    private func writeContainer(_ sink: JSONSink, open: Unicode.Scalar, close: Unicode.Scalar, count: Int,
                                indent: Int?, element: (Int, Int?) -> Void) {
        sink.bytes.append(UInt8(ascii: open))
        for i in 0..<count {
            if i > 0 { sink.bytes.append(UInt8(ascii: ",")) }
            if let indent { newline(sink, indent + 1) }
            element(i, indent.map { $0 + 1 })
        }
        if let indent, count > 0 { newline(sink, indent) }
        sink.bytes.append(UInt8(ascii: close))
    }

    private func newline(_ sink: JSONSink, _ level: Int) {
        sink.bytes.append(0x0A)
        sink.bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * level))
    }
}

/// A JSON number as its literal text (RFC 8259 grammar), e.g. `1.0`, `-0`, `1e400`,
/// `9007199254740993`. Two numbers are equal when their text is.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The literal, exactly as it was read or made.
    public let text: String

    /// Nil unless `text` is one JSON number and nothing else.
    public init?(text: String) {
        guard Self.isValid(Array(text.utf8)) else { return nil }
        self.text = text
    }

    init(validated text: String) { self.text = text }

    public init(_ value: Int64) { text = String(value) }

    /// The shortest text that reads back as `value` (`1.0` stays `1.0`); nil when not finite.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        text = value.description
    }

    public init(integerLiteral value: Int64) { self.init(value) }
    public init(floatLiteral value: Double) { self.init(validated: value.isFinite ? value.description : "0") }

    /// The nearest double (infinite for a literal past Double's range, e.g. `1e400`).
    public var double: Double { Double(text) ?? .nan }

    /// The value as an Int64 when the text is an integer literal in Int64's range
    /// (`1.0` and `1e3` are not: their text is kept, and read with `double`).
    public var int64: Int64? { Int64(text) }

    public var description: String { text }

    /// True when the digits before any exponent are all zeros (`0`, `-0.000`, `0e99`): the
    /// only literals that may read as a zero double.
    static func isZeroLiteral(_ text: String) -> Bool {
        for byte in text.utf8 {
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { break }
            if byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") { return false }
        }
        return true
    }

    /// RFC 8259: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func isValid(_ b: [UInt8]) -> Bool {
        var i = 0
        func digits() -> Int {
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            return i - start
        }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        let n = digits()
        guard n > 0, !(n > 1 && b[intStart] == 0x30) else { return false }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { return false }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return i == b.count
    }
}

/// Text that is not one JSON value; `offset` is the byte where reading stopped.
public struct JSONValueError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public var description: String { "not valid JSON (at byte \(offset))" }
}
