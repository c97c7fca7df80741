/// Compact JSON for `Encodable` values, written straight into a byte buffer: what
/// Foundation's `JSONEncoder` with `.withoutEscapingSlashes` writes (keys in the order they
/// are encoded, not sorted), several times faster. Readers must not depend on key order.
///
/// Containers are written as they are used: a container asked for again on the same encoder
/// (a payload's fields beside the envelope's `type`) continues the same object, and a nested
/// container stays open until its parent writes its next element or ends.
/// Non-finite doubles throw `EncodingError.invalidValue`, as with Foundation.
public struct FastJSONEncoder: Sendable {
    public init() {}

    /// The JSON bytes of `value`.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = JSONSink()
        try sink.encodeValue(value, depth: 0)
        sink.closeAll()
        return sink.bytes
    }

    /// Appends the JSON bytes of `value` to `bytes`.
    public func encode<T: Encodable>(_ value: T, appendingTo bytes: inout [UInt8]) throws {
        let sink = JSONSink()
        swap(&sink.bytes, &bytes)
        defer { swap(&sink.bytes, &bytes) }
        try sink.encodeValue(value, depth: 0)
        sink.closeAll()
    }
}

/// The buffer and the containers open in it (innermost last).
final class JSONSink {
    /// `name` and a string value (null when nil), as an element of the object open at `depth`.
    func field(_ depth: Int, _ name: String, _ value: String?) {
        beginElement(depth, key: name)
        if let value { writeString(value) } else { writeNull() }
    }

    /// `name` and an integer value (null when nil), as an element of the object open at `depth`.
    func field(_ depth: Int, _ name: String, _ value: Int64?) {
        beginElement(depth, key: name)
        if let value { writeInteger(value) } else { writeNull() }
    }

    // Unchecked: a sink lives for one `encode` on one thread and no access to these overlaps
    // another. Checked, every append paid the runtime's `swift_beginAccess`/`swift_endAccess`
    // (several per field, ~60 fields a store row): ~4% of the durable scheduler's samples
    // under `swarm bench spawn` (perf, issue 17).
    @exclusivity(unchecked) var bytes: [UInt8] = []
    /// Per open container: whether it is an object, and whether it has an element yet.
    @exclusivity(unchecked) var isObject: [Bool] = []
    @exclusivity(unchecked) var hasElement: [Bool] = []

    init() { bytes.reserveCapacity(512) }

    /// Closes containers open deeper than `depth` (nested ones whose parent moved on).
    @inline(__always) func close(above depth: Int) {
        while isObject.count > depth {
            bytes.append(isObject.removeLast() ? UInt8(ascii: "}") : UInt8(ascii: "]"))
            hasElement.removeLast()
        }
    }

    func closeAll() { close(above: 0) }

    /// Opens a container for the value at `depth` (continuing an object already open there).
    func open(object: Bool, depth: Int) {
        if isObject.count > depth, object, isObject[depth] {
            close(above: depth + 1)
            return
        }
        close(above: depth)
        bytes.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
        isObject.append(object)
        hasElement.append(false)
    }

    /// Starts an element of the container at `index`: a comma, and the key in an object.
    @inline(__always) func beginElement(_ index: Int, key: String?) {
        close(above: index + 1)
        if hasElement[index] { bytes.append(UInt8(ascii: ",")) } else { hasElement[index] = true }
        if let key {
            writeString(key)
            bytes.append(UInt8(ascii: ":"))
        }
    }

    /// Writes `value` as the value at `depth` (its key or comma written already).
    func encodeValue<T: Encodable>(_ value: T, depth: Int) throws {
        if writePrimitive(value) { return }
        let mark = bytes.count
        try value.encode(to: JSONSinkEncoder(sink: self, depth: depth))
        if bytes.count == mark { bytes.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")]) }
        close(above: depth)
    }

    /// Writes the common leaf types without going through `Encodable`.
    @inline(__always) func writePrimitive<T: Encodable>(_ value: T) -> Bool {
        // Type identity, not dynamic casts: a pointer comparison per case.
        if T.self == String.self { writeString(unsafeBitCast(value, to: String.self)) }
        else if T.self == Int.self { writeInteger(Int64(unsafeBitCast(value, to: Int.self))) }
        else if T.self == Int64.self { writeInteger(unsafeBitCast(value, to: Int64.self)) }
        else if T.self == Bool.self { writeBool(unsafeBitCast(value, to: Bool.self)) }
        else if T.self == String?.self {
            if let s = unsafeBitCast(value, to: String?.self) { writeString(s) } else { writeNull() }
        } else if T.self == Int?.self {
            if let n = unsafeBitCast(value, to: Int?.self) { writeInteger(Int64(n)) } else { writeNull() }
        } else if T.self == Int64?.self {
            if let n = unsafeBitCast(value, to: Int64?.self) { writeInteger(n) } else { writeNull() }
        } else { return false }
        return true
    }

    func writeNull() { bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]) }

    func writeBool(_ b: Bool) {
        if b { bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65]) } else { bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65]) }
    }

    func writeInteger(_ n: Int64) {
        if n >= 0 && n < 10 { bytes.append(UInt8(ascii: "0") &+ UInt8(n)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // up to 20 digits + sign: 24 bytes
        var magnitude = n.magnitude
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                count += 1
                raw[24 - count] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if n < 0 { count += 1; raw[24 - count] = UInt8(ascii: "-") }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }

    func writeUnsigned(_ n: UInt64) {
        if n <= UInt64(Int64.max) { writeInteger(Int64(n)) } else { bytes.append(contentsOf: Array(String(n).utf8)) }
    }

    /// The shortest text that reads back as the same double (`Double.description`), with an
    /// integral value written without its `.0`.
    func writeDouble(_ d: Double) throws {
        guard d.isFinite else {
            throw EncodingError.invalidValue(d, .init(codingPath: [], debugDescription: "Unable to encode \(d) directly in JSON."))
        }
        if d == d.rounded(), abs(d) < 1e15 { writeInteger(Int64(d)); return }
        bytes.append(contentsOf: Array(d.description.utf8))
    }

    /// A quoted string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`.
    func writeString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var start = 0
            for i in 0..<utf8.count {
                let c = utf8[i]
                guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
                if start < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i])) }
                start = i + 1
                switch c {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
                case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
                }
            }
            if start < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// The `Encoder` handed to a value at one depth of the output.
struct JSONSinkEncoder: Encoder {
    let sink: JSONSink
    let depth: Int
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        sink.open(object: true, depth: depth)
        return KeyedEncodingContainer(JSONSinkKeyed<Key>(sink: sink, index: depth))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        sink.open(object: false, depth: depth)
        return JSONSinkUnkeyed(sink: sink, index: depth)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { JSONSinkSingle(sink: sink, depth: depth) }
}
