import Foundation

/// `report.md`: the bench report as a Markdown performance study.
///
/// Title and abstract, then **Summary** (verdict, targets, headline figures, lost and
/// duplicated tasks), one section per workload (description, parameters, runs, the median
/// over runs, baselines, extra tables, notes), **Cluster processes**, **Limitations**,
/// **Machine** and **Reproduce**. Table cells have `|` escaped; missing values show as `–`.
public enum MarkdownReport {
    /// Renders `report` as GitHub-flavoured Markdown, ending with a newline.
    public static func render(_ report: BenchReport) -> String {
        let document = ReportDocument(report)
        var out: [String] = ["# \(ReportFormat.flatten(document.title))", "", document.abstract, ""]
        for section in document.sections {
            out.append("## \(ReportFormat.flatten(section.title))")
            out.append("")
            for block in section.blocks {
                out.append(contentsOf: lines(block))
                out.append("")
            }
        }
        while out.last == "" { out.removeLast() }
        return out.joined(separator: "\n") + "\n"
    }

    private static func lines(_ block: DocBlock) -> [String] {
        switch block {
        case .paragraph(let text):
            return [ReportFormat.flatten(text)]
        case .callout(let text, _):
            return ["**\(ReportFormat.flatten(text))**"]
        case .heading(let text):
            return ["### \(ReportFormat.flatten(text))"]
        case .bullets(let items):
            return items.map { "- \(ReportFormat.flatten($0))" }
        case .code(let text):
            let fence = codeFence(for: text)
            return [fence + "sh", text, fence]
        case .table(let table):
            return tableLines(table)
        }
    }

    /// The table as Markdown rows: header, alignment row, body; one cell per column in each.
    static func tableLines(_ table: DocTable) -> [String] {
        func row(_ cells: [String], code: Set<Int>) -> String {
            let rendered = cells.enumerated().map { index, cell -> String in
                let text = ReportFormat.markdownCell(cell)
                guard code.contains(index), !text.isEmpty else { return text.isEmpty ? " " : text }
                return codeSpan(text)
            }
            return "| " + rendered.joined(separator: " | ") + " |"
        }
        let alignment = table.header.indices.map { table.numeric.contains($0) ? "---:" : "---" }
        return [row(table.header, code: []), "|" + alignment.joined(separator: "|") + "|"]
            + table.rows.map { row($0, code: table.code) }
    }

    /// `text` as inline code, with a backtick run longer than any inside it.
    private static func codeSpan(_ text: String) -> String {
        let ticks = String(repeating: "`", count: longestBacktickRun(text) + 1)
        let pad = text.hasPrefix("`") || text.hasSuffix("`") ? " " : ""
        return ticks + pad + text + pad + ticks
    }

    /// A code fence of at least three backticks, longer than any backtick run in `text`.
    private static func codeFence(for text: String) -> String {
        String(repeating: "`", count: max(3, longestBacktickRun(text) + 1))
    }

    private static func longestBacktickRun(_ text: String) -> Int {
        var longest = 0, current = 0
        for character in text {
            current = character == "`" ? current + 1 : 0
            longest = max(longest, current)
        }
        return longest
    }
}
