import CoreMetrics
import Prometheus

/// One metric family this process may expose: its name (Prometheus conventions: `swarm_`
/// prefix, `_total` on counters, base units such as `_seconds` and `_bytes`), its HELP text
/// and, for a histogram, its buckets (seconds).
public struct MetricFamily: Sendable {
    public enum Kind: Sendable { case counter, gauge, histogram }
    public let name: String
    public let kind: Kind
    public let help: String
    public let buckets: [Double]

    public init(_ name: String, _ kind: Kind, _ help: String, buckets: [Double] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.buckets = buckets
    }
}

/// A process's own metrics: swift-metrics handles (`Counter`, `Gauge`, `Timer`) backed by a
/// `PrometheusCollectorRegistry` that this object owns, rendered in the Prometheus text format
/// by swift-prometheus. Not the global `MetricsSystem`: a test process runs several schedulers
/// and workers at once, and each must count only its own (and bootstrap can happen only
/// once). Every name must be in the catalogue given at init, so each family gets its HELP
/// line (promtool wants one) and a name typo fails at once instead of exposing a new series.
/// Handles are made once and kept by the caller: the hot path only increments.
public final class MetricsRegistry: Sendable {
    public let prometheus: PrometheusCollectorRegistry
    private let factory: CatalogFactory

    public init(catalog: [MetricFamily]) {
        let prometheus = PrometheusCollectorRegistry()
        self.prometheus = prometheus
        var families: [String: MetricFamily] = [:]
        for family in catalog {
            precondition(families[family.name] == nil, "metric \(family.name) listed twice")
            families[family.name] = family
        }
        factory = CatalogFactory(registry: prometheus, families: families)
    }

    /// The counter `name` with `labels` (made once; keep it).
    public func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        check(name, .counter)
        return CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
    }

    /// The counter `name` with `labels`, counting fractions (CPU seconds). Made once; keep it.
    public func floatingPointCounter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.FloatingPointCounter {
        check(name, .counter)
        return CoreMetrics.FloatingPointCounter(label: name, dimensions: labels, factory: factory)
    }

    /// The gauge `name` with `labels` (made once; keep it).
    public func gauge(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Gauge {
        check(name, .gauge)
        return CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
    }

    /// The histogram `name` with `labels`, fed durations (made once; keep it).
    public func timer(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Timer {
        check(name, .histogram)
        return CoreMetrics.Timer(label: name, dimensions: labels, factory: factory)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    public func render() -> [UInt8] { prometheus.emitToBuffer() }

    /// The `Content-Type` of `render()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private func check(_ name: String, _ kind: MetricFamily.Kind) {
        guard let family = factory.families[name], family.kind == kind else {
            preconditionFailure("metric \(name) is not in the catalogue as a \(kind)")
        }
    }
}

/// swift-metrics' factory over one registry, giving each family the HELP text and buckets
/// of the catalogue (the stock `PrometheusMetricsFactory` has no HELP text).
private struct CatalogFactory: MetricsFactory, Sendable {
    let registry: PrometheusCollectorRegistry
    let families: [String: MetricFamily]

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: families[label]?.help ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions,
                                           buckets: families[label]?.buckets ?? [])
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = (families[label]?.buckets ?? []).map { Duration.nanoseconds(Int64($0 * 1e9)) }
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
