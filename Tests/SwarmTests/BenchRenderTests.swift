import Foundation
import Testing
@testable import SwarmBench

/// The report renderers on fabricated reports: a complete local one and a remote one with
/// missing data.
@Suite struct BenchRenderTests {
    // MARK: Fixtures

    static func latency(_ base: Double) -> Percentiles {
        Percentiles((1...200).map { base * (1 + Double($0) / 40) })!
    }

    static func run(_ label: String, tasks: Int = 2000, concurrency: Int = 64, throughput: Double,
                    efficiency: Double? = nil, latencyMs: Double? = 0.4) -> RunFigures {
        var run = RunFigures(label: label, tasks: tasks, concurrency: concurrency)
        run.succeeded = tasks
        run.throughput = throughput
        run.wallSeconds = Double(tasks) / throughput
        run.efficiency = efficiency
        run.submitToStart = latencyMs.map(latency)
        run.startToFirstOutput = latencyMs.map { latency($0 * 3) }
        run.overheadCpuUsPerTask = latencyMs.map { _ in 212.5 }
        return run
    }

    static func baseline(_ tool: String, throughput: Double?, ratio: Double? = nil) -> BaselineReport {
        var baseline = BaselineReport(tool: tool, command: "\(tool) -P 64 -n 1 true", available: throughput != nil)
        if let throughput {
            baseline.throughput = Spread([throughput * 0.95, throughput, throughput * 1.05])
            baseline.wallSeconds = Spread([1.1, 1.0, 0.9])
            baseline.swarmThroughputRatio = ratio
        }
        return baseline
    }

    static func workload(_ name: String, runs: [RunFigures]) -> WorkloadReport {
        var workload = WorkloadReport(name: name, title: "The \(name) workload", description: "What \(name) measures.")
        workload.parameters = ["tasks": "2000", "concurrency": "64"]
        workload.runs = runs
        return workload
    }

    static let machine = MachineInfo(hostname: "bench-host", os: "Debian GNU/Linux 12", kernel: "6.1.0",
                                     cpuModel: "Test CPU @ 2.0GHz", cpus: 2, memoryGiB: 7.8,
                                     libuvVersion: "1.44.2", swarmVersion: "0.9.0")

    /// Every workload, baselines, targets met, missed and unmeasured, pipes and markup in text.
    static func fullReport() -> BenchReport {
        var report = BenchReport(startedAt: "2025-11-29T12:00:00Z", commandLine: "swarm bench --repeats 3 --out bench-results",
                                 machine: machine,
                                 cluster: ClusterDescription(mode: "local", scheduler: "127.0.0.1:7400", workers: 2,
                                                             totalSlots: 64, durable: true),
                                 repeats: 3)
        report.durationSeconds = 412
        var spawn = workload("spawn", runs: [run("run 1", throughput: 1960.4), run("run 2", throughput: 1900),
                                             run("run 3", throughput: 2010)])
        spawn.baselines = [baseline("xargs", throughput: 1750, ratio: 1.12), baseline("parallel", throughput: 320, ratio: 6.1)]
        spawn.notes = ["Commands piped: a | b", "Second note"]
        var parallel = workload("parallel", runs: [run("run 1", tasks: 100, concurrency: 100, throughput: 9.8, efficiency: 0.98),
                                                   run("run 2", tasks: 100, concurrency: 100, throughput: 9.7, efficiency: 0.97)])
        parallel.baselines = [baseline("xargs", throughput: 9.9, ratio: 0.99), baseline("parallel", throughput: 9.5, ratio: 1.03)]
        let agent = workload("agent", runs: [run("run 1", tasks: 200, throughput: 45), run("run 2", tasks: 200, throughput: 47)])
        var isolation = workload("isolation", runs: [run("run 1", tasks: 50, throughput: 120)])
        isolation.description = "Checks writers stay apart. <script>alert('x')</script> & \"quotes\""
        isolation.tables = [ReportTable(title: "Files written", columns: ["writer", "file", "result"],
                                        rows: [["w1", "out|1.txt", "ok"], ["w2", "out2.txt"]])]
        var models = workload("models", runs: [run("model fast", tasks: 100, throughput: 30),
                                               run("model deep", tasks: 20, concurrency: 4, throughput: 2.1)])
        models.passed = false
        let steps = [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        var scale = workload("scale", runs: steps.map { c in
            run("concurrency \(c)", tasks: c, concurrency: c, throughput: Double(c) / 5.2,
                efficiency: max(0.5, 0.99 - Double(c) / 40000), latencyMs: 0.3 + Double(c) / 1000)
        })
        scale.parameters = ["sleep": "5"]
        report.workloads = [spawn, parallel, agent, isolation, models, scale]
        report.targets = [
            TargetCheck(name: "spawn throughput", target: ">= 1.0x xargs -P", measured: "1.12x", met: true),
            TargetCheck(name: "submit→start p50", target: "< 0.3 ms | local", measured: "0.42 ms", met: false),
            TargetCheck(name: "remote latency", target: "< 5 ms", measured: "not measured", met: nil),
        ]
        report.processes = [ProcessFigures(name: "scheduler", role: "scheduler", pid: 4242, cpuUserMs: 1234.5,
                                           cpuSystemMs: 321, peakRssMiB: 42.7)]
        report.limitations = ["Two cores: the workers compete with their tasks."]
        report.passed = false
        return report
    }

    /// A remote cluster: no latencies, no process figures, GNU parallel missing, no scale.
    static func remoteReport() -> BenchReport {
        var report = BenchReport(startedAt: "2025-11-29T13:00:00Z", commandLine: "swarm bench --scheduler host:7400",
                                 machine: machine,
                                 cluster: ClusterDescription(mode: "remote", scheduler: "host:7400", workers: 0,
                                                             totalSlots: 0, durable: nil),
                                 repeats: 1)
        var spawn = workload("spawn", runs: [run("run 1", throughput: 0, latencyMs: nil)])
        spawn.baselines = [baseline("xargs", throughput: 1500, ratio: nil), baseline("parallel", throughput: nil)]
        var parallel = workload("parallel", runs: [])
        parallel.baselines = [baseline("parallel", throughput: nil)]
        report.workloads = [spawn, parallel, workload("agent", runs: []), workload("isolation", runs: []),
                            workload("models", runs: [])]
        report.targets = [TargetCheck(name: "spawn throughput", target: ">= 1.0x xargs -P", measured: "–", met: nil)]
        return report
    }

    /// Markdown tables: runs of consecutive lines starting with `|`.
    static func tables(_ markdown: String) -> [[String]] {
        var tables: [[String]] = [], current: [String] = []
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("|") { current.append(line) } else if !current.isEmpty { tables.append(current); current = [] }
        }
        if !current.isEmpty { tables.append(current) }
        return tables
    }

    /// Pipes that separate cells (not escaped with a backslash).
    static func separators(_ row: String) -> Int {
        var count = 0, previous: Character = " "
        for character in row {
            if character == "|" && previous != "\\" { count += 1 }
            previous = character
        }
        return count
    }

    /// Every attribute value in the markup: none may be NaN or infinite.
    static func badAttributes(_ html: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: "=\"([^\"]*)\"")
        let range = NSRange(html.startIndex..., in: html)
        return regex.matches(in: html, range: range).compactMap { match in
            let value = String(html[Range(match.range(at: 1), in: html)!]).lowercased()
            return value.contains("nan") || value.contains("inf") ? value : nil
        }
    }

    // MARK: Formatting

    @Test func numbersAreReadable() {
        #expect(ReportFormat.number(1960.4) == "1,960")
        #expect(ReportFormat.number(12_345_678) == "12,345,678")
        #expect(ReportFormat.number(196.2) == "196")
        #expect(ReportFormat.number(19.62) == "19.6")
        #expect(ReportFormat.number(3.14159) == "3.14")
        #expect(ReportFormat.number(0.4213) == "0.42")
        #expect(ReportFormat.number(0.0042) == "0.004")
        #expect(ReportFormat.number(0) == "0")
        #expect(ReportFormat.number(nil) == "–")
        #expect(ReportFormat.number(.nan) == "–")
        #expect(ReportFormat.int(-1234) == "-1,234")
        #expect(ReportFormat.spread(Spread(median: 1960, min: 1900, max: 2010, runs: 3)) == "1,960 [1,900–2,010]")
        #expect(ReportFormat.ratio(1.123) == "1.12x")
        #expect(ReportFormat.html("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;")
    }

    // MARK: Markdown

    @Test func markdownHasEverySectionAndWorkload() {
        let report = Self.fullReport()
        let markdown = MarkdownReport.render(report)
        #expect(markdown.hasPrefix("# swarm bench: local cluster on bench-host"))
        for heading in ["## Summary", "## Cluster processes", "## Limitations", "## Machine", "## Reproduce"] {
            #expect(markdown.contains("\n\(heading)\n"), "missing \(heading)")
        }
        for workload in report.workloads {
            #expect(markdown.contains("\n## The \(workload.name) workload (\(workload.name))\n"))
        }
        #expect(markdown.contains("```sh\nswarm bench --repeats 3 --out bench-results\n```"))
        #expect(markdown.contains("**Verdict: FAILED: failed checks: models.**"))
        #expect(markdown.contains("- spawn (passed): 1,960 tasks/s [1,900–2,010]"))
        #expect(markdown.contains("- spawn (passed): 1,960 tasks/s [1,900–2,010]; 1.12x xargs; 6.10x parallel; p50"))
        #expect(markdown.contains("- models (FAILED): model fast 30.0 tasks/s, p50 1.40 ms; model deep 2.10 tasks/s"))
        #expect(markdown.contains("Median [min–max] over 3 runs: throughput 1,960 tasks/s [1,900–2,010]; wall 1.02 s [1.00–1.05];"))
        #expect(markdown.contains("### Per model\n") && markdown.contains("### Concurrency steps\n"))
        #expect(markdown.contains("| run 1 | 64 | 2,000 | 2,000 | 0 | 0 | 0 | 1.02 | 1,960 | – |"))
        #expect(markdown.contains("| parallel | `parallel -P 64 -n 1 true` | 320 [304–336] |"))
        #expect(markdown.contains("- Two cores: the workers compete with their tasks."))
        #expect(markdown.contains("| scheduler | scheduler | 4242 | 1,235 | 321 | 42.7 |"))
    }

    @Test func markdownTablesHaveConsistentColumnCounts() {
        for report in [Self.fullReport(), Self.remoteReport()] {
            let tables = Self.tables(MarkdownReport.render(report))
            #expect(tables.count >= 8)
            for table in tables {
                let counts = Set(table.map(Self.separators))
                #expect(counts.count == 1, "ragged table: \(table)")
                #expect(table.count >= 3 || table.count == 2 && table[1].hasPrefix("|---"))
            }
        }
        let runs = Self.tables(MarkdownReport.render(Self.fullReport())).first { $0[0].hasPrefix("| Run |") }
        #expect(runs.map { Self.separators($0[0]) } == 17)
    }

    @Test func markdownEscapesPipesAndMarksTargets() {
        let markdown = MarkdownReport.render(Self.fullReport())
        #expect(markdown.contains("| w1 | out\\|1.txt | ok |"))
        #expect(markdown.contains("| w2 | out2.txt |   |"))
        #expect(markdown.contains("| submit→start p50 | < 0.3 ms \\| local | 0.42 ms | ❌ |"))
        #expect(markdown.contains("| spawn throughput | >= 1.0x xargs -P | 1.12x | ✅ |"))
        #expect(markdown.contains("| remote latency | < 5 ms | not measured | – |"))
        #expect(markdown.contains("- Commands piped: a | b"))
    }

    @Test func markdownRendersMissingDataAsDashes() {
        let markdown = MarkdownReport.render(Self.remoteReport())
        // Zero throughput made the wall time infinite: shown as missing, like the nil latencies.
        #expect(markdown.contains("| run 1 | 64 | 2,000 | 2,000 | 0 | 0 | 0 | – | 0 | – | – | – | – | – | – | – |"))
        #expect(markdown.contains("| parallel | `parallel -P 64 -n 1 true` | not installed |"))
        #expect(markdown.contains("No process figures were collected"))
        #expect(markdown.contains("Median [min–max] over 1 run: throughput 0 tasks/s.\n"))
        #expect(markdown.contains("**Verdict: PASSED"))
        #expect(!markdown.contains("nan") && !markdown.contains("inf"))
    }

    // MARK: HTML

    @Test func htmlEscapesTextAndDrawsEveryChart() {
        let html = HTMLReport.render(Self.fullReport())
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"))
        // CDF, throughput and efficiency against concurrency, and a bar chart for spawn and parallel.
        #expect(html.components(separatedBy: "<svg").count - 1 == 5)
        #expect(!html.contains("omitted"))
        for name in ["spawn", "parallel", "agent", "isolation", "models", "scale"] {
            #expect(html.contains(">\(name)</text>"), "no legend entry for \(name)")
        }
        #expect(html.contains("<title>Throughput against concurrency</title>"))
        #expect(html.contains(">10k</text>"))
        #expect(!html.contains("NaN"))
        #expect(Self.badAttributes(html).isEmpty)
        #expect(!html.contains("http-equiv") && !html.contains("<link") && !html.contains("src="))
    }

    @Test func htmlRendersTheMissingDataReport() {
        let html = HTMLReport.render(Self.remoteReport())
        #expect(html.hasSuffix("</html>\n"))
        #expect(html.contains("Figure 1 (latency distribution) is omitted"))
        #expect(html.contains("Figure 2 (throughput against concurrency) is omitted"))
        #expect(html.contains("Figure 3 (efficiency against concurrency) is omitted"))
        // spawn's bars: swarm at 0 tasks/s, xargs measured, GNU parallel n/a; parallel has no values.
        #expect(html.components(separatedBy: "<svg").count - 1 == 1)
        #expect(html.contains(">n/a</text>"))
        #expect(!html.contains("NaN"))
        #expect(Self.badAttributes(html).isEmpty)
    }

    @Test func chartsSurviveDegenerateData() {
        let flat = ChartSeries(name: "flat", points: [(x: 0, y: 0), (x: 0, y: 0)])
        let zeros = SVGChart.lineChart(title: "t", xLabel: "x", yLabel: "y", series: [flat])
        #expect(zeros != nil)
        #expect(Self.badAttributes(zeros ?? "").isEmpty)
        // On a log axis x = 0 cannot be drawn: nothing left, no chart.
        #expect(SVGChart.lineChart(title: "t", xLabel: "x", yLabel: "y", series: [flat], logX: true) == nil)
        let single = ChartSeries(name: "one", points: [(x: 100, y: .infinity), (x: 100, y: 3)])
        let log = SVGChart.lineChart(title: "t", xLabel: "x", yLabel: "y", series: [single], logX: true)
        #expect(log != nil && Self.badAttributes(log ?? "").isEmpty)
        #expect(SVGChart.barChart(title: "b", yLabel: "y", bars: [("a", nil), ("b", .nan)]) == nil)
        let bars = SVGChart.barChart(title: "b", yLabel: "y", bars: [("a", 0), ("b", nil)])
        #expect(bars != nil && Self.badAttributes(bars ?? "").isEmpty)
        #expect(ChartScale(values: [3, 3], log: true, pixels: (0, 100)).ticks() == [1, 2, 5, 10])
        #expect(ChartScale(values: [0, 7.3], log: false, pixels: (0, 100)).ticks() == [0, 2, 4, 6, 8])
    }

    // MARK: Terminal

    @Test func terminalSummaryFitsOneScreen() {
        var crowded = Self.fullReport()
        crowded.targets += (1...30).map { TargetCheck(name: "target \($0)", target: "< 1", measured: "2", met: false) }
        for report in [Self.fullReport(), Self.remoteReport(), crowded] {
            for width in [100, 60, 40] {
                let lines = TerminalSummary.render(report, width: width).split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.count <= 24)
                #expect(lines.allSatisfy { $0.count <= width }, "too wide at \(width): \(lines)")
            }
        }
        let text = TerminalSummary.render(Self.fullReport())
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("swarm bench FAILED in 6 min 52 s"))
        #expect(lines.contains("  met     spawn throughput: 1.12x (goal >= 1.0x xargs -P)"))
        #expect(lines.contains { $0.hasPrefix("  MISSED  submit→start p50") })
        #expect(lines.contains { $0.hasPrefix("  spawn      ok    1,960 tasks/s, 1.12x xargs, 6.10x parallel, p50 submit→start") })
        #expect(lines.contains { $0.hasPrefix("  models     FAIL  ") })
        #expect(lines.contains { $0.hasPrefix("  scale      ok    11 steps up to concurrency 10,000") })
        let crowdedText = TerminalSummary.render(crowded)
        #expect(crowdedText.contains("more (") && crowdedText.contains("  scale "))
    }

    @Test func progressBarFitsAndShowsTheEnds() {
        let empty = TerminalProgress.bar(phase: "spawn: swarm run 1/3", done: 0, total: 2000, elapsedSeconds: 0, columns: 80)
        #expect(empty.count <= 79)
        #expect(empty.contains(" 0/2,000 0% --/s ETA --"))
        #expect(empty.contains("[....") && !empty.contains("#"))
        let full = TerminalProgress.bar(phase: "spawn: swarm run 1/3", done: 2000, total: 2000, elapsedSeconds: 1.02, columns: 80)
        #expect(full.contains("2,000/2,000 100% 1,961/s ETA 0s"))
        #expect(full.contains("[####") && !full.contains(".]"))
        let half = TerminalProgress.bar(phase: "scale", done: 500, total: 1000, elapsedSeconds: 10, columns: 80)
        #expect(half.contains(" 50% 50.0/s ETA 10s"))
        let long = String(repeating: "very long phase name ", count: 10)
        for columns in [20, 30, 50, 80, 200] {
            let line = TerminalProgress.bar(phase: long, done: 999, total: 1000, elapsedSeconds: 3, columns: columns)
            #expect(line.count <= columns - 1, "\(line.count) > \(columns - 1)")
            #expect(line.contains("99%"))
        }
        #expect(TerminalProgress.clock(65) == "1m05s")
    }

    @Test func progressOffATerminalWritesOneLinePerBeginAndEnd() {
        var written: [String] = []
        let progress = TerminalProgress(isTTY: false, columns: 80) { written.append($0) }
        progress.begin("spawn: swarm run 1/3", total: 2000)
        for done in stride(from: 0, through: 2000, by: 10) { progress.update(done: done) }
        progress.end("2,000 tasks in 1.02 s: 1,960/s")
        progress.begin("spawn: xargs run 1/3", total: 2000)
        progress.update(done: 2000)
        progress.end("done")
        #expect(written == ["spawn: swarm run 1/3: 2,000 tasks\n", "spawn: swarm run 1/3: 2,000 tasks in 1.02 s: 1,960/s\n",
                            "spawn: xargs run 1/3: 2,000 tasks\n", "spawn: xargs run 1/3: done\n"])
    }

    @Test func progressOnATerminalRedrawsAtMostTenTimesASecond() {
        var time = 100.0
        var written: [String] = []
        let progress = TerminalProgress(isTTY: true, columns: 60, clock: { time }, write: { written.append($0) })
        progress.begin("scale", total: 1000)
        for step in 1...64 {  // 64 updates over one second, 1/64 s apart (exact in binary)
            time += 1.0 / 64
            progress.update(done: step * 1000 / 64)
        }
        progress.end("1,000 tasks in 0.5 s")
        let bars = written.dropLast()
        #expect(bars.count == 10)  // begin, then every 7th update (7/64 s >= 0.1 s): 9 redraws
        #expect(bars.allSatisfy { $0.hasPrefix("\r\u{1B}[2K") && !$0.hasSuffix("\n") })
        #expect(bars.allSatisfy { $0.dropFirst(5).count <= 59 })
        #expect(bars.first?.contains("0/1,000 0%") == true)
        #expect(written.last == "\r\u{1B}[2Kscale: 1,000 tasks in 0.5 s\n")
    }
}
