/// Metric handles by label value, made on first use and kept: the hot path looks one up and
/// increments it, never building label strings again. At most `limit` distinct values get their
/// own series (label values can come from peers, e.g. model names); the rest share the one for
/// `overflowValue`, so a peer cannot grow the scrape without bound.
public struct LabelCache<Key: Hashable, Handle> {
    private var handles: [Key: Handle] = [:]
    private var overflow: Handle?
    private let limit: Int
    private let make: (Key?) -> Handle

    /// The value distinct label values past `limit` are reported under.
    public static var overflowValue: String { "other" }

    /// `make(nil)` makes the shared overflow handle.
    public init(limit: Int, make: @escaping (Key?) -> Handle) {
        self.limit = limit
        self.make = make
    }

    public var count: Int { handles.count }

    public mutating func handle(_ key: Key) -> Handle {
        if let handle = handles[key] { return handle }
        guard handles.count < limit else {
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
