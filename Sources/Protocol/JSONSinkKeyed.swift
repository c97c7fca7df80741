/// The containers of `FastJSONEncoder`: each writes into the sink at its own depth.

struct JSONSinkKeyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: JSONSink
    /// The position of this container's object in the sink's open containers.
    let index: Int
    var codingPath: [any CodingKey] { [] }

    @inline(__always) private func key(_ key: Key) { sink.beginElement(index, key: key.stringValue) }

    mutating func encodeNil(forKey k: Key) throws { key(k); sink.writeNull() }
    mutating func encode(_ value: Bool, forKey k: Key) throws { key(k); sink.writeBool(value) }
    mutating func encode(_ value: String, forKey k: Key) throws { key(k); sink.writeString(value) }
    mutating func encode(_ value: Double, forKey k: Key) throws { key(k); try sink.writeDouble(value) }
    mutating func encode(_ value: Float, forKey k: Key) throws { key(k); try sink.writeDouble(Double(value)) }
    mutating func encode(_ value: Int, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int8, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int16, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int32, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int64, forKey k: Key) throws { key(k); sink.writeInteger(value) }
    mutating func encode(_ value: UInt, forKey k: Key) throws { key(k); sink.writeUnsigned(UInt64(value)) }
    mutating func encode(_ value: UInt8, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt16, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt32, forKey k: Key) throws { key(k); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt64, forKey k: Key) throws { key(k); sink.writeUnsigned(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey k: Key) throws {
        key(k)
        try sink.encodeValue(value, depth: index + 1)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                        forKey k: Key) -> KeyedEncodingContainer<NestedKey> {
        key(k)
        sink.open(object: true, depth: index + 1)
        return KeyedEncodingContainer(JSONSinkKeyed<NestedKey>(sink: sink, index: index + 1))
    }

    mutating func nestedUnkeyedContainer(forKey k: Key) -> any UnkeyedEncodingContainer {
        key(k)
        sink.open(object: false, depth: index + 1)
        return JSONSinkUnkeyed(sink: sink, index: index + 1)
    }

    mutating func superEncoder() -> any Encoder {
        sink.beginElement(index, key: "super")
        return JSONSinkEncoder(sink: sink, depth: index + 1)
    }

    mutating func superEncoder(forKey k: Key) -> any Encoder {
        key(k)
        return JSONSinkEncoder(sink: sink, depth: index + 1)
    }
}

struct JSONSinkUnkeyed: UnkeyedEncodingContainer {
    let sink: JSONSink
    let index: Int
    private(set) var count = 0
    var codingPath: [any CodingKey] { [] }

    init(sink: JSONSink, index: Int) { self.sink = sink; self.index = index }

    @inline(__always) private mutating func next() {
        sink.beginElement(index, key: nil)
        count += 1
    }

    mutating func encodeNil() throws { next(); sink.writeNull() }
    mutating func encode(_ value: Bool) throws { next(); sink.writeBool(value) }
    mutating func encode(_ value: String) throws { next(); sink.writeString(value) }
    mutating func encode(_ value: Double) throws { next(); try sink.writeDouble(value) }
    mutating func encode(_ value: Float) throws { next(); try sink.writeDouble(Double(value)) }
    mutating func encode(_ value: Int) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int8) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int16) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int32) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int64) throws { next(); sink.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { next(); sink.writeUnsigned(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt16) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt32) throws { next(); sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt64) throws { next(); sink.writeUnsigned(value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        next()
        try sink.encodeValue(value, depth: index + 1)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next()
        sink.open(object: true, depth: index + 1)
        return KeyedEncodingContainer(JSONSinkKeyed<NestedKey>(sink: sink, index: index + 1))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        next()
        sink.open(object: false, depth: index + 1)
        return JSONSinkUnkeyed(sink: sink, index: index + 1)
    }

    mutating func superEncoder() -> any Encoder {
        next()
        return JSONSinkEncoder(sink: sink, depth: index + 1)
    }
}

struct JSONSinkSingle: SingleValueEncodingContainer {
    let sink: JSONSink
    let depth: Int
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { sink.writeNull() }
    mutating func encode(_ value: Bool) throws { sink.writeBool(value) }
    mutating func encode(_ value: String) throws { sink.writeString(value) }
    mutating func encode(_ value: Double) throws { try sink.writeDouble(value) }
    mutating func encode(_ value: Float) throws { try sink.writeDouble(Double(value)) }
    mutating func encode(_ value: Int) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int8) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int16) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int32) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: Int64) throws { sink.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { sink.writeUnsigned(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt16) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt32) throws { sink.writeInteger(Int64(value)) }
    mutating func encode(_ value: UInt64) throws { sink.writeUnsigned(value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        if sink.writePrimitive(value) { return }
        try value.encode(to: JSONSinkEncoder(sink: sink, depth: depth))
    }
}
