/// Numbers the metrics keep to.
public enum MetricBounds {
    /// Distinct values one label (a model, a runtime) gets its own series for; the rest are
    /// counted under `LabelCache.overflowValue`. Model and runtime names come from clients and
    /// workers: without it they could grow a scrape (and the scheduler's memory) without bound.
    public static let labelValues = 256
    /// Bytes of one label value from a peer: a longer value is counted under
    /// `LabelCache.overflowValue`. Runtime names in health reports are the worker's own
    /// config keys, checked nowhere else: without it 256 runtime names of a megabyte each
    /// would make every scrape 256 MB. Task model names are at most 128 bytes (`TaskSpec`),
    /// runtime names a task can name 64.
    public static let labelValueBytes = 128
}
