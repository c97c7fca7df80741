/// The `Decoder` of `FastJSONDecoder`, over a parsed `JSONNode`. Errors carry no coding path
/// (callers that report them decode again with Foundation).
struct JSONNodeDecoder: Decoder {
    let node: JSONNode
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .object(keys, values) = node else { throw JSONNodeDecoder.mismatch }
        return KeyedDecodingContainer(JSONNodeKeyed<Key>(keys: keys, values: values))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let values) = node else { throw JSONNodeDecoder.mismatch }
        return JSONNodeUnkeyed(values: values)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { JSONNodeSingle(node: node) }

    static let mismatch = FastJSONError(offset: -1)

    @inline(__always) static func integer<T: FixedWidthInteger>(_ node: JSONNode, as type: T.Type) throws -> T {
        guard case .int(let n) = node, let value = T(exactly: n) else { throw mismatch }
        return value
    }

    @inline(__always) static func string(_ node: JSONNode) throws -> String {
        guard case .string(let s) = node else { throw mismatch }
        return s
    }

    /// Refused as Foundation refuses it: past the type's range (`1e400`), or a literal that is
    /// not zero rounding to zero (`1e-400`; swift-foundation's scanner checks for that).
    static func double(_ node: JSONNode) throws -> Double {
        switch node {
        case .int(let n): return Double(n)
        case .number(let text):
            guard let d = Double(text), d.isFinite, d != 0 || JSONNumber.isZeroLiteral(text) else { throw mismatch }
            return d
        default: throw mismatch
        }
    }

    /// As `double`, read straight from the text (through a Double, it could round twice).
    static func float(_ node: JSONNode) throws -> Float {
        switch node {
        case .int(let n): return Float(n)
        case .number(let text):
            guard let f = Float(text), f.isFinite, f != 0 || JSONNumber.isZeroLiteral(text) else { throw mismatch }
            return f
        default: throw mismatch
        }
    }

    static func bool(_ node: JSONNode) throws -> Bool {
        guard case .bool(let b) = node else { throw mismatch }
        return b
    }

    /// Common leaf types straight from the node; others through their `init(from:)`.
    @inline(__always) static func decode<T: Decodable>(_ type: T.Type, from node: JSONNode) throws -> T {
        if T.self == String.self { return unsafeBitCast(try string(node), to: T.self) }
        if T.self == Int.self { return unsafeBitCast(try integer(node, as: Int.self), to: T.self) }
        if T.self == Int64.self { return unsafeBitCast(try integer(node, as: Int64.self), to: T.self) }
        if T.self == Bool.self { return unsafeBitCast(try bool(node), to: T.self) }
        return try T(from: JSONNodeDecoder(node: node))
    }
}

/// An object's fields, and where the last key was found: fields are mostly read in the
/// order they were written, so a lookup usually checks one key.
final class JSONNodeFields {
    let keys: [String]
    let values: [JSONNode]
    var hint = 0

    init(keys: [String], values: [JSONNode]) { self.keys = keys; self.values = values }

    func index(_ name: String) -> Int? {
        let n = keys.count
        var k = hint < n ? hint : 0
        for _ in 0..<n {
            if keys[k] == name { return k }
            k += 1
            if k == n { k = 0 }
        }
        return nil
    }
}

struct JSONNodeKeyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: JSONNodeFields
    var codingPath: [any CodingKey] { [] }

    init(keys: [String], values: [JSONNode]) { fields = JSONNodeFields(keys: keys, values: values) }

    var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }
    private var values: [JSONNode] { fields.values }

    private func index(_ key: Key) -> Int? { fields.index(key.stringValue) }

    private func node(_ key: Key) throws -> JSONNode {
        guard let k = index(key) else { throw JSONNodeDecoder.mismatch }
        fields.hint = k + 1
        return values[k]
    }

    func contains(_ key: Key) -> Bool { index(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let k = index(key) else { throw JSONNodeDecoder.mismatch }
        if case .null = values[k] { return true }
        return false
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try JSONNodeDecoder.bool(node(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try JSONNodeDecoder.string(node(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try JSONNodeDecoder.double(node(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try JSONNodeDecoder.float(node(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try JSONNodeDecoder.integer(node(key), as: type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONNodeDecoder.decode(type, from: node(key))
    }

    /// One lookup instead of the default's three (contains, decodeNil, decode).
    private func optional<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        guard let k = index(key) else { return nil }
        fields.hint = k + 1
        if case .null = values[k] { return nil }
        return try JSONNodeDecoder.decode(type, from: values[k])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try optional(type, key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try optional(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try optional(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try optional(type, key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try optional(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        guard let k = index(key) else { return nil }
        fields.hint = k + 1
        if case .null = values[k] { return nil }
        return try JSONNodeDecoder.double(values[k])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type,
                                                        forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONNodeDecoder(node: node(key)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONNodeDecoder(node: node(key)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw JSONNodeDecoder.mismatch }
    func superDecoder(forKey key: Key) throws -> any Decoder { JSONNodeDecoder(node: try node(key)) }
}

struct JSONNodeUnkeyed: UnkeyedDecodingContainer {
    let values: [JSONNode]
    private(set) var currentIndex = 0
    var codingPath: [any CodingKey] { [] }
    var count: Int? { values.count }
    var isAtEnd: Bool { currentIndex >= values.count }

    init(values: [JSONNode]) { self.values = values }

    private mutating func next() throws -> JSONNode {
        guard currentIndex < values.count else { throw JSONNodeDecoder.mismatch }
        currentIndex += 1
        return values[currentIndex - 1]
    }

    mutating func decodeNil() throws -> Bool {
        guard currentIndex < values.count else { throw JSONNodeDecoder.mismatch }
        if case .null = values[currentIndex] { currentIndex += 1; return true }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try JSONNodeDecoder.bool(next()) }
    mutating func decode(_ type: String.Type) throws -> String { try JSONNodeDecoder.string(next()) }
    mutating func decode(_ type: Double.Type) throws -> Double { try JSONNodeDecoder.double(next()) }
    mutating func decode(_ type: Float.Type) throws -> Float { try JSONNodeDecoder.float(next()) }
    mutating func decode(_ type: Int.Type) throws -> Int { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONNodeDecoder.integer(next(), as: type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONNodeDecoder.decode(type, from: next()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONNodeDecoder(node: next()).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try JSONNodeDecoder(node: next()).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { JSONNodeDecoder(node: try next()) }
}

struct JSONNodeSingle: SingleValueDecodingContainer {
    let node: JSONNode
    var codingPath: [any CodingKey] { [] }

    func decodeNil() -> Bool {
        if case .null = node { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try JSONNodeDecoder.bool(node) }
    func decode(_ type: String.Type) throws -> String { try JSONNodeDecoder.string(node) }
    func decode(_ type: Double.Type) throws -> Double { try JSONNodeDecoder.double(node) }
    func decode(_ type: Float.Type) throws -> Float { try JSONNodeDecoder.float(node) }
    func decode(_ type: Int.Type) throws -> Int { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONNodeDecoder.integer(node, as: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONNodeDecoder.integer(node, as: type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONNodeDecoder.decode(type, from: node) }
}
