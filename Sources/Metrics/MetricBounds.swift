/// Numbers the metrics keep to.
public enum MetricBounds {
    /// Distinct values one label (a model, a runtime) gets its own series for; the rest are
    /// counted under `LabelCache.overflowValue`. Model and runtime names come from clients and
    /// workers: without it they could grow a scrape (and the scheduler's memory) without bound.
    public static let labelValues = 256
}
