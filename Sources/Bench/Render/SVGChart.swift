import Foundation

/// One line of a line chart.
struct ChartSeries {
    var name: String
    var points: [(x: Double, y: Double)]
}

/// A linear or base-10 logarithmic axis: maps values to pixels and picks tick values.
/// Ranges are never empty and every coordinate it returns is finite.
struct ChartScale {
    private(set) var low: Double
    private(set) var high: Double
    let log: Bool
    let start: Double
    let end: Double

    /// Fits `values` (non-finite ones and, on a log axis, those <= 0 ignored); a linear axis
    /// starts at zero unless `fixed` says otherwise and ends on a round number.
    init(values: [Double], log: Bool, fixed: ClosedRange<Double>? = nil, pixels: (Double, Double)) {
        self.log = log
        start = pixels.0
        end = pixels.1
        let usable = values.filter { $0.isFinite && (!log || $0 > 0) }
        if log {
            let lo = usable.min() ?? 1, hi = usable.max() ?? 10
            low = pow(10, (log10(lo)).rounded(.down))
            high = pow(10, (log10(hi)).rounded(.up))
            if high <= low { high = low * 10 }
        } else {
            low = fixed?.lowerBound ?? min(0, usable.min() ?? 0)
            let top = fixed?.upperBound ?? max(usable.max() ?? 1, low)
            high = top > low ? top : low + 1
            if fixed == nil {
                let step = Self.niceStep((high - low) / 5)
                high = low + ((high - low) / step).rounded(.up) * step
            }
        }
    }

    /// 1, 2 or 5 times a power of ten, near `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw.isFinite, raw > 0 else { return 1 }
        let power = pow(10, log10(raw).rounded(.down))
        let fraction = raw / power
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power
    }

    /// The pixel position of `value` (clamped to the axis).
    func position(_ value: Double) -> Double {
        let clamped = Swift.min(Swift.max(value.isFinite ? value : low, low), high)
        let t = log ? (log10(clamped) - log10(low)) / (log10(high) - log10(low)) : (clamped - low) / (high - low)
        return start + (t.isFinite ? t : 0) * (end - start)
    }

    /// Tick values: round steps (linear), or powers of ten with 2x and 5x over few decades (log).
    func ticks() -> [Double] {
        if log {
            let decades = Int((log10(high) - log10(low)).rounded())
            var ticks: [Double] = []
            for exponent in 0...Swift.max(0, decades) {
                let base = low * pow(10, Double(exponent))
                for factor in decades <= 2 ? [1.0, 2, 5] : [1.0] where base * factor <= high * 1.000001 {
                    ticks.append(base * factor)
                }
            }
            return ticks
        }
        let step = Self.niceStep((high - low) / 5)
        var ticks: [Double] = []
        var value = (low / step).rounded(.up) * step
        while value <= high + step * 1e-9 && ticks.count < 50 {
            ticks.append(value)
            value += step
        }
        return ticks
    }
}

/// Minimal SVG charts for the HTML report: no scripts, no external resources.
enum SVGChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// A coordinate or length for an attribute: always finite, one decimal.
    static func coordinate(_ value: Double) -> String {
        String(format: "%.1f", value.isFinite ? value : 0)
    }

    /// A tick label: `0`, `0.5`, `20`, `1,000`, `10k`.
    static func tickLabel(_ value: Double) -> String {
        guard value.isFinite else { return "" }
        if abs(value) >= 10_000, value.truncatingRemainder(dividingBy: 1000) == 0 {
            return ReportFormat.int(Int(value / 1000)) + "k"
        }
        if value == value.rounded(), abs(value) < 1e15 { return ReportFormat.int(Int(value)) }
        return String(format: "%g", value)
    }

    /// A line chart with axes, grid, ticks, axis labels and a legend; nil when no series has
    /// a point that can be drawn. `logX` uses a base-10 x axis (points with x <= 0 dropped).
    static func lineChart(title: String, xLabel: String, yLabel: String, series: [ChartSeries],
                          logX: Bool = false, yDomain: ClosedRange<Double>? = nil,
                          width: Double = 640, height: Double = 360) -> String? {
        let drawable = series.map { line in
            ChartSeries(name: line.name, points: line.points.filter {
                $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0)
            })
        }.filter { !$0.points.isEmpty }
        guard !drawable.isEmpty else { return nil }
        let left = 64.0, right = width - 150, top = 36.0, bottom = height - 48
        let xs = drawable.flatMap { $0.points.map(\.x) }
        let ys = drawable.flatMap { $0.points.map(\.y) }
        var x = ChartScale(values: xs, log: logX, pixels: (left, right))
        if !logX, xs.min() == xs.max() { x = ChartScale(values: xs + [xs[0] + 1], log: false, pixels: (left, right)) }
        let y = ChartScale(values: ys, log: false, fixed: yDomain, pixels: (bottom, top))

        var svg = open(title: title, width: width, height: height)
        svg += axes(x: x, y: y, left: left, right: right, top: top, bottom: bottom, xLabel: xLabel, yLabel: yLabel)
        for (index, line) in drawable.enumerated() {
            let color = palette[index % palette.count]
            let points = line.points.map { "\(coordinate(x.position($0.x))),\(coordinate(y.position($0.y)))" }
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            if line.points.count <= 30 {
                for point in line.points {
                    svg += "<circle cx=\"\(coordinate(x.position(point.x)))\" cy=\"\(coordinate(y.position(point.y)))\" r=\"3\" fill=\"\(color)\"/>\n"
                }
            }
            let legendY = top + 6 + Double(index) * 18
            svg += "<line x1=\"\(coordinate(right + 12))\" y1=\"\(coordinate(legendY))\" x2=\"\(coordinate(right + 32))\" "
                + "y2=\"\(coordinate(legendY))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
            svg += text(ReportFormat.truncate(line.name, to: 16), x: right + 38, y: legendY + 4, anchor: "start")
        }
        return svg + "</svg>\n"
    }

    /// A bar chart of one value per label (nil: drawn as `n/a`), y from zero; nil when no
    /// label has a value.
    static func barChart(title: String, yLabel: String, bars: [(label: String, value: Double?)],
                         width: Double = 360, height: Double = 280) -> String? {
        let values = bars.compactMap(\.value).filter { $0.isFinite }
        guard !values.isEmpty else { return nil }
        let left = 64.0, right = width - 16, top = 36.0, bottom = height - 48
        let y = ChartScale(values: values, log: false, pixels: (bottom, top))
        var svg = open(title: title, width: width, height: height)
        svg += axes(x: nil, y: y, left: left, right: right, top: top, bottom: bottom, xLabel: "", yLabel: yLabel)
        let slot = (right - left) / Double(max(bars.count, 1))
        for (index, bar) in bars.enumerated() {
            let center = left + slot * (Double(index) + 0.5)
            svg += text(ReportFormat.truncate(bar.label, to: 14), x: center, y: bottom + 18, anchor: "middle")
            guard let value = bar.value, value.isFinite else {
                svg += text("n/a", x: center, y: bottom - 6, anchor: "middle", css: "muted")
                continue
            }
            let barTop = y.position(value)
            svg += "<rect x=\"\(coordinate(center - slot * 0.3))\" y=\"\(coordinate(barTop))\" width=\"\(coordinate(slot * 0.6))\" "
                + "height=\"\(coordinate(max(0, bottom - barTop)))\" fill=\"\(palette[index % palette.count])\"/>\n"
            svg += text(ReportFormat.number(value), x: center, y: barTop - 5, anchor: "middle")
        }
        return svg + "</svg>\n"
    }

    private static func open(title: String, width: Double, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(coordinate(width))\" "
            + "height=\"\(coordinate(height))\" viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\" "
            + "role=\"img\" aria-label=\"\(ReportFormat.html(title))\">\n"
            + "<title>\(ReportFormat.html(title))</title>\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
            + text(title, x: width / 2, y: 20, anchor: "middle", css: "title")
    }

    /// Grid lines, axis lines, tick labels and axis titles; `x` nil for a category axis.
    private static func axes(x: ChartScale?, y: ChartScale, left: Double, right: Double, top: Double,
                             bottom: Double, xLabel: String, yLabel: String) -> String {
        var svg = ""
        for tick in y.ticks() {
            let py = coordinate(y.position(tick))
            svg += "<line x1=\"\(coordinate(left))\" y1=\"\(py)\" x2=\"\(coordinate(right))\" y2=\"\(py)\" stroke=\"#e5e5e5\"/>\n"
            svg += text(tickLabel(tick), x: left - 6, y: y.position(tick) + 4, anchor: "end")
        }
        if let x {
            for tick in x.ticks() {
                let px = coordinate(x.position(tick))
                svg += "<line x1=\"\(px)\" y1=\"\(coordinate(top))\" x2=\"\(px)\" y2=\"\(coordinate(bottom))\" stroke=\"#f0f0f0\"/>\n"
                svg += text(tickLabel(tick), x: x.position(tick), y: bottom + 16, anchor: "middle")
            }
            svg += text(xLabel, x: (left + right) / 2, y: bottom + 36, anchor: "middle")
        }
        svg += "<line x1=\"\(coordinate(left))\" y1=\"\(coordinate(bottom))\" x2=\"\(coordinate(right))\" "
            + "y2=\"\(coordinate(bottom))\" stroke=\"#333\"/>\n"
        svg += "<line x1=\"\(coordinate(left))\" y1=\"\(coordinate(top))\" x2=\"\(coordinate(left))\" "
            + "y2=\"\(coordinate(bottom))\" stroke=\"#333\"/>\n"
        let midY = coordinate((top + bottom) / 2)
        svg += "<text x=\"16\" y=\"\(midY)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(midY))\">"
            + "\(ReportFormat.html(yLabel))</text>\n"
        return svg
    }

    private static func text(_ content: String, x: Double, y: Double, anchor: String, css: String? = nil) -> String {
        let cls = css.map { " class=\"\($0)\"" } ?? ""
        return "<text x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" text-anchor=\"\(anchor)\"\(cls)>"
            + "\(ReportFormat.html(content))</text>\n"
    }
}
