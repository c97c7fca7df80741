import Foundation

/// `report.html`: the Markdown report's content as one self-contained page (inline CSS, no
/// scripts, no external resources) with inline SVG figures: the submit→start latency
/// distribution per workload, throughput and efficiency against concurrency (the `scale`
/// ramp) and swarm's throughput against xargs and GNU parallel. A figure whose data is
/// missing is replaced by a short note.
public enum HTMLReport {
    /// Renders `report` as a complete HTML5 document.
    public static func render(_ report: BenchReport) -> String {
        let document = ReportDocument(report)
        var sections = document.sections
        let figures = DocSection(id: "figures", title: "Figures", blocks: [])
        sections.insert(figures, at: sections.isEmpty ? 0 : 1)

        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(ReportFormat.html(document.title))</title>
        <style>\(style)</style>
        </head>
        <body>
        <main>
        <h1>\(ReportFormat.html(document.title))</h1>
        <p class="abstract">\(ReportFormat.html(document.abstract))</p>

        """
        html += "<nav><ol>\n"
        for section in sections {
            html += "<li><a href=\"#\(ReportFormat.html(section.id))\">\(ReportFormat.html(section.title))</a></li>\n"
        }
        html += "</ol></nav>\n"
        for section in sections {
            html += "<section id=\"\(ReportFormat.html(section.id))\">\n<h2>\(ReportFormat.html(section.title))</h2>\n"
            html += section.id == "figures" ? self.figures(report) : section.blocks.map(render).joined()
            html += "</section>\n"
        }
        return html + "</main>\n</body>\n</html>\n"
    }

    private static func render(_ block: DocBlock) -> String {
        switch block {
        case .paragraph(let text):
            return "<p>\(ReportFormat.html(text))</p>\n"
        case .callout(let text, let ok):
            let css = ok.map { $0 ? "callout ok" : "callout bad" } ?? "callout"
            return "<p class=\"\(css)\"><strong>\(ReportFormat.html(text))</strong></p>\n"
        case .heading(let text):
            return "<h3>\(ReportFormat.html(text))</h3>\n"
        case .bullets(let items):
            return "<ul>\n" + items.map { "<li>\(ReportFormat.html($0))</li>\n" }.joined() + "</ul>\n"
        case .code(let text):
            return "<pre><code>\(ReportFormat.html(text))</code></pre>\n"
        case .table(let table):
            return tableHTML(table)
        }
    }

    private static func tableHTML(_ table: DocTable) -> String {
        func cells(_ values: [String], tag: String, code: Set<Int>) -> String {
            values.enumerated().map { index, value in
                let css = table.numeric.contains(index) ? " class=\"num\"" : ""
                let content = code.contains(index) ? "<code>\(ReportFormat.html(value))</code>" : ReportFormat.html(value)
                return "<\(tag)\(css)>\(content)</\(tag)>"
            }.joined()
        }
        var html = "<div class=\"scroll\"><table>\n<thead><tr>\(cells(table.header, tag: "th", code: []))</tr></thead>\n<tbody>\n"
        for row in table.rows {
            html += "<tr>\(cells(row, tag: "td", code: table.code))</tr>\n"
        }
        return html + "</tbody>\n</table></div>\n"
    }

    /// The four figures, each an SVG or a note saying why it is missing.
    private static func figures(_ report: BenchReport) -> String {
        var html = ""
        func figure(_ svg: String?, caption: String, missing: String) {
            if let svg {
                html += "<figure>\n\(svg)<figcaption>\(ReportFormat.html(caption))</figcaption>\n</figure>\n"
            } else {
                html += "<p class=\"note\">\(ReportFormat.html(missing))</p>\n"
            }
        }

        let latency = report.workloads.compactMap { workload -> ChartSeries? in
            guard let cdf = ReportFigures.medianThroughputRun(workload.runs)?.submitToStart?.cdf, cdf.count > 1 else {
                return nil
            }
            let last = Double(cdf.count - 1)
            return ChartSeries(name: workload.name, points: cdf.enumerated().map { (x: $1, y: Double($0) / last * 100) })
        }
        let values = latency.flatMap { $0.points.map(\.x) }.filter { $0 > 0 }
        let logLatency = (values.max() ?? 1) / (values.min() ?? 1) > 20
        figure(SVGChart.lineChart(title: "Submit→start latency distribution", xLabel: "latency, ms"
                                      + (logLatency ? " (log scale)" : ""),
                                  yLabel: "percentile", series: latency, logX: logLatency, yDomain: 0...100),
               caption: "Figure 1. Cumulative distribution of the time from the scheduler accepting a task to "
                   + "a worker spawning it, for each workload's median-throughput run.",
               missing: "Figure 1 (latency distribution) is omitted: no run recorded submit→start latencies.")

        let scale = report.workloads.first { $0.name == "scale" }
        let steps = (scale?.runs ?? []).sorted { $0.concurrency < $1.concurrency }
        var throughput = [ChartSeries(name: "swarm", points: steps.map { (x: Double($0.concurrency), y: $0.throughput) })]
        var efficiency = [ChartSeries(name: "swarm", points: steps.compactMap { run in
            run.efficiency.map { (x: Double(run.concurrency), y: $0) }
        })]
        for baseline in scale?.baselines ?? [] where baseline.available && !baseline.runs.isEmpty {
            let runs = baseline.runs.sorted { $0.concurrency < $1.concurrency }
            throughput.append(ChartSeries(name: baseline.tool, points: runs.map { (x: Double($0.concurrency), y: $0.throughput) }))
            efficiency.append(ChartSeries(name: baseline.tool, points: runs.compactMap { run in
                run.efficiency.map { (x: Double(run.concurrency), y: $0) }
            }))
        }
        figure(SVGChart.lineChart(title: "Throughput against concurrency", xLabel: "concurrency (log scale)",
                                  yLabel: "tasks/s", series: throughput, logX: true),
               caption: "Figure 2. Tasks completed per second at each step of the scale ramp.",
               missing: "Figure 2 (throughput against concurrency) is omitted: the scale workload did not run.")
        let topEfficiency = efficiency.flatMap { $0.points.map(\.y) }.filter(\.isFinite).max() ?? 1
        figure(SVGChart.lineChart(title: "Efficiency against concurrency", xLabel: "concurrency (log scale)",
                                  yLabel: "efficiency (1 = ideal)", series: efficiency, logX: true,
                                  yDomain: 0...max(1, topEfficiency)),
               caption: "Figure 3. Ideal wall time over measured wall time at each step of the scale ramp.",
               missing: "Figure 3 (efficiency against concurrency) is omitted: no scale step recorded an efficiency.")

        var bars: [String] = []
        // Every spawn level (spawn-p4, spawn-p16, spawn-cli, spawn), then parallel.
        for workload in report.workloads where workload.name.hasPrefix("spawn") || workload.name == "parallel" {
            guard !workload.baselines.isEmpty,
                  let svg = SVGChart.barChart(title: "\(workload.name): throughput", yLabel: "tasks/s, median",
                                              bars: ReportFigures.throughputComparison(workload)) else { continue }
            bars.append(svg)
        }
        figure(bars.isEmpty ? nil : "<div class=\"row\">\n" + bars.joined() + "</div>\n",
               caption: "Figure 4. Median throughput of swarm, xargs -P and GNU parallel on the same commands "
                   + "(n/a: the tool is not installed).",
               missing: "Figure 4 (swarm against xargs and GNU parallel) is omitted: no baseline was measured.")
        return html
    }

    private static let style = """
    body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;background:#fafafa;margin:0}
    main{max-width:1100px;margin:0 auto;padding:24px;background:#fff}
    h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
    .abstract{font-style:italic;color:#444}
    nav ol{columns:3;font-size:.9em}
    .scroll{overflow-x:auto}
    table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
    th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
    th{background:#f3f3f3}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
    .callout{padding:6px 10px;border-left:4px solid #999;background:#f5f5f5}
    .callout.ok{border-color:#2a7d2a;background:#eef8ee}.callout.bad{border-color:#b22;background:#fbeeee}
    .note{color:#666;font-style:italic}
    pre{background:#f5f5f5;padding:8px;overflow-x:auto}
    figure{margin:1em 0}figcaption{font-size:.9em;color:#555}
    .row{display:flex;flex-wrap:wrap;gap:16px}
    svg.chart{font:11px Helvetica,Arial,sans-serif;max-width:100%;height:auto}
    svg .title{font-size:13px;font-weight:bold}svg .muted{fill:#888}
    """
}
