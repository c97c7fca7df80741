/// The members of one JSON object in a `JSONSink`, written by name: what a hand-written
/// `writeJSON` (`TaskInfo`, `TaskResult`, `RunMetrics`) uses in place of Codable's keyed
/// containers, with the same bytes. The sink writes the comma before every member but the
/// object's first, so members written by several writers on one object (a task's own keys,
/// then its metrics') join as one object.
struct JSONObjectWriter {
    let sink: JSONSink
    /// The object's depth in the sink.
    let depth: Int

    /// A writer for the object already open at `depth`.
    init(_ sink: JSONSink, depth: Int) {
        self.sink = sink
        self.depth = depth
    }

    /// Opens an object at `depth` (or continues the one open there) and returns its writer.
    static func open(_ sink: JSONSink, depth: Int) -> JSONObjectWriter {
        sink.open(object: true, depth: depth)
        return JSONObjectWriter(sink, depth: depth)
    }

    /// The member's key alone: the caller writes its value next.
    func key(_ name: String) { sink.beginElement(depth, key: name) }

    /// A string, or `null`.
    func text(_ name: String, _ value: String?) { sink.field(depth, name, value) }

    /// An integer, or `null`.
    func number(_ name: String, _ value: Int64?) { sink.field(depth, name, value) }

    /// `true`/`false`, or `null`.
    func bool(_ name: String, _ value: Bool?) {
        key(name)
        if let value { sink.writeBool(value) } else { sink.writeNull() }
    }

    /// An array of strings.
    func strings(_ name: String, _ values: [String]) {
        key(name)
        sink.open(object: false, depth: depth + 1)
        for value in values {
            sink.beginElement(depth + 1, key: nil)
            sink.writeString(value)
        }
        sink.close(above: depth + 1)
    }

    /// Any `Encodable` (through its `encode(to:)`), or `null`.
    func value<T: Encodable>(_ name: String, _ value: T?) throws {
        key(name)
        if let value { try sink.encodeValue(value, depth: depth + 1) } else { sink.writeNull() }
    }
}
