/// Metric handles by label value, made on first use and kept: the hot path looks one up and
/// increments it, never building label strings again. At most `limit` distinct values get their
/// own series (label values can come from peers, e.g. model names); the rest share the one for
/// `overflowValue`, so a peer cannot grow the scrape without bound; so does a value longer than
/// `maxValueBytes` (`valueBytes` measures a key: its longest label value).
public struct LabelCache<Key: Hashable, Handle> {
    private var handles: [Key: Handle] = [:]
    private var overflow: Handle?
    private let limit: Int
    private let maxValueBytes: Int
    private let valueBytes: (Key) -> Int
    private let make: (Key?) -> Handle

    /// The value distinct label values past `limit` are reported under.
    public static var overflowValue: String { "other" }

    /// `make(nil)` makes the shared overflow handle.
    public init(limit: Int, maxValueBytes: Int = MetricBounds.labelValueBytes, valueBytes: @escaping (Key) -> Int,
                make: @escaping (Key?) -> Handle) {
        self.limit = limit
        self.maxValueBytes = maxValueBytes
        self.valueBytes = valueBytes
        self.make = make
    }

    public var count: Int { handles.count }

    public mutating func handle(_ key: Key) -> Handle {
        if let handle = handles[key] { return handle }
        guard handles.count < limit, valueBytes(key) <= maxValueBytes else {
            if let overflow { return overflow }
            let handle = make(nil)
            overflow = handle
            return handle
        }
        let handle = make(key)
        handles[key] = handle
        return handle
    }

    /// Every handle made so far, with its key (nil: the overflow one).
    public var all: [(key: Key?, handle: Handle)] {
        handles.map { (Optional($0.key), $0.value) } + (overflow.map { [(nil, $0)] } ?? [])
    }
}

extension LabelCache where Key == String {
    /// A cache of one label, its values measured in UTF-8 bytes.
    public init(limit: Int, maxValueBytes: Int = MetricBounds.labelValueBytes, make: @escaping (Key?) -> Handle) {
        self.init(limit: limit, maxValueBytes: maxValueBytes, valueBytes: { $0.utf8.count }, make: make)
    }
}
